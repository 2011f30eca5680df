//! Command-line definitions (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use provernode_core::{Abi, Limits};

#[derive(Parser, Debug)]
#[command(
    name = "provernode",
    version,
    about = "One prover node for many zkVMs: prove the same guest program on trace (dev mode), RISC Zero and SP1.",
    after_help = "Start with `provernode demo`. Built-in guests: `provernode programs`. Backends: `provernode backends`."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Log format on stderr (level from the PROVERNODE_LOG environment variable, e.g. `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the built-in guest programs with their program ids for each ABI.
    Programs {
        /// Include test guests (endless loop, memory hog).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the backends and whether each can run here (and why not).
    Backends {
        #[arg(long)]
        json: bool,
    },
    /// Run a program and count its cycles, without proving.
    Execute(RunArgs),
    /// Run a program, prove the run and write the proof envelope.
    Prove {
        #[command(flatten)]
        run: RunArgs,
        /// Where to write the proof envelope [default: <program>.<abi>.<backend>.proof].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Backend-specific proof kind (trace: execution-record).
        #[arg(long)]
        proof_kind: Option<String>,
    },
    /// Verify a proof envelope; needs nothing but the file.
    Verify {
        /// The proof envelope file.
        file: PathBuf,
        /// Most cycles a re-executing verifier (trace) will spend on one envelope.
        #[arg(long, default_value_t = Limits::DEFAULT_MAX_CYCLES)]
        max_cycles: u64,
        #[arg(long)]
        json: bool,
    },
    /// Execute, prove and verify every built-in guest on every available backend, and print a table.
    Demo {
        /// Only these backends (repeatable).
        #[arg(long = "backend")]
        backends: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A built-in guest name (see `provernode programs`) or the path of a RISC-V ELF.
    pub program: String,
    /// The backend to run on.
    #[arg(long, short, default_value = "trace")]
    pub backend: String,
    /// The guest ABI of a built-in program, for backends that run several (trace). An ELF's own class decides for a path.
    #[arg(long)]
    pub abi: Option<Abi>,
    #[command(flatten)]
    pub input: InputFlags,
    /// Stop the guest after this many cycles.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_CYCLES)]
    pub max_cycles: u64,
    /// Most guest memory in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_MEMORY_BYTES)]
    pub max_memory: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The guest's input: typed flags for built-in guests, or raw bytes.
#[derive(Args, Debug, Default)]
pub struct InputFlags {
    /// fibonacci: the index n.
    #[arg(long, help_heading = "Input")]
    pub n: Option<u32>,
    /// sha256-chain: the number of rounds.
    #[arg(long, help_heading = "Input")]
    pub rounds: Option<u32>,
    /// sha256-chain: the 32-byte seed as 64 hex digits [default: zeros].
    #[arg(long, help_heading = "Input", value_parser = parse_seed)]
    pub seed: Option<[u8; 32]>,
    /// sha256: the text to hash.
    #[arg(long, help_heading = "Input")]
    pub text: Option<String>,
    /// Raw input bytes from a file (any program).
    #[arg(long, help_heading = "Input", conflicts_with_all = ["n", "rounds", "seed", "text", "input_hex"])]
    pub input_file: Option<PathBuf>,
    /// Raw input bytes as hex (any program).
    #[arg(long, help_heading = "Input", conflicts_with_all = ["n", "rounds", "seed", "text"])]
    pub input_hex: Option<String>,
}

fn parse_seed(s: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| format!("expected 64 hex digits (32 bytes), got {s:?}"))?;
    Ok(out)
}
