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
        /// Also compute keys that need a backend's set-up (SP1's verifying-key hash: tens of
        /// seconds per program). RISC Zero's image id is always shown when risc0 is built in.
        #[arg(long)]
        keys: bool,
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
    /// Execute, prove and verify every built-in guest on every available backend through a
    /// temporary node (durable queue, isolated workers), and print a table.
    Demo {
        /// Only these backends (repeatable).
        #[arg(long = "backend")]
        backends: Vec<String>,
        /// Worker processes of the temporary node.
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
    /// Prove and verify the same guest inputs on several backends in this process, and
    /// measure cycles, prove and verify time, proof size, peak memory, start-up and set-up.
    /// Results are merged into a JSON file and can be rendered as Markdown.
    Bench(BenchArgs),
    /// Run the prover node: durable queue, isolated workers, HTTP API.
    Run(RunNode),
    /// Run a cluster broker: the HTTP API (clients and agents) over a shared PostgreSQL
    /// database. Run any number of them; they keep no state of their own.
    Broker(BrokerArgs),
    /// Run a cluster agent: claim work from a broker and prove it in isolated workers.
    Agent(AgentArgs),
    /// (internal) A worker process; the node starts these itself.
    #[command(hide = true)]
    Worker {
        /// The private request/response directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Submit a task to a node; prints its id.
    Submit(Submit),
    /// Show a task: state, terminal reason, attempts with their causes.
    Status {
        id: String,
        #[command(flatten)]
        node: NodeFlags,
        #[arg(long)]
        json: bool,
    },
    /// Download a succeeded task's proof envelope.
    Proof {
        id: String,
        /// Where to write it [default: <id>.proof].
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        node: NodeFlags,
    },
    /// Cancel a queued or running task.
    Cancel {
        id: String,
        #[command(flatten)]
        node: NodeFlags,
    },
    /// List tasks, newest first.
    Tasks {
        /// Only tasks in this state (queued, leased, succeeded, failed, cancelled, quarantined).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        node: NodeFlags,
        #[arg(long)]
        json: bool,
    },
}

/// Where the node is.
#[derive(Args, Debug, Clone)]
pub struct NodeFlags {
    /// The node's base URL.
    #[arg(long, env = "PROVERNODE_NODE", default_value = "http://127.0.0.1:7878")]
    pub node: String,
    /// Bearer token (required when the node listens beyond loopback).
    #[arg(long, env = "PROVERNODE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunNode {
    /// Where the queue database and scratch files live.
    #[arg(long, env = "PROVERNODE_DATA_DIR", default_value = "provernode-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub slots: SlotFlags,
    /// Address of the HTTP API. Anything but loopback requires --token.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: std::net::SocketAddr,
    /// Bearer token clients must send.
    #[arg(long, env = "PROVERNODE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// SQLite durability: `full` survives power loss, `normal` survives process crashes.
    #[arg(long, default_value = "full", value_parser = ["full", "normal"])]
    pub sqlite_synchronous: String,
    #[command(flatten)]
    pub tasks: TaskDefaults,
}

#[derive(Args, Debug)]
pub struct BrokerArgs {
    /// The shared PostgreSQL database.
    #[arg(long, env = "PROVERNODE_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Address of the HTTP API. Anything but loopback requires --client-token.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: std::net::SocketAddr,
    /// Tokens clients send (repeatable, or comma-separated in the environment).
    #[arg(
        long = "client-token",
        env = "PROVERNODE_CLIENT_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub client_tokens: Vec<String>,
    /// Tokens agents send (repeatable, or comma-separated in the environment). Required.
    #[arg(
        long = "agent-token",
        env = "PROVERNODE_AGENT_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub agent_tokens: Vec<String>,
    /// Database connections of this broker.
    #[arg(long, default_value_t = 16)]
    pub max_connections: u32,
    /// How often this broker sweeps expired leases and passed deadlines.
    #[arg(long, default_value_t = 1.0)]
    pub sweep_secs: f64,
    #[command(flatten)]
    pub tasks: TaskDefaults,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The broker's base URL.
    #[arg(long, env = "PROVERNODE_BROKER")]
    pub broker: String,
    /// An agent token of the broker.
    #[arg(long, env = "PROVERNODE_AGENT_TOKEN", hide_env_values = true)]
    pub token: String,
    /// This agent's name in lease owners and logs [default: <hostname>-<pid>].
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub slots: SlotFlags,
    /// Only claim tasks whose attempt memory limit fits in this many MiB [default: this machine's memory].
    #[arg(long)]
    pub max_task_memory_mib: Option<u64>,
    /// Where private worker directories go when /dev/shm is not writable.
    #[arg(long, default_value = "provernode-agent-scratch")]
    pub scratch_dir: PathBuf,
}

/// Limits a task gets when it asks for none, and the largest input accepted.
#[derive(Args, Debug, Clone)]
pub struct TaskDefaults {
    /// Default wall-clock limit of one attempt.
    #[arg(long, default_value_t = 600.0)]
    pub default_timeout_secs: f64,
    /// Default memory limit of one attempt's worker process.
    #[arg(long, default_value_t = 4096)]
    pub default_memory_limit_mib: u64,
    /// Default attempts before a task is quarantined.
    #[arg(long, default_value_t = 3)]
    pub default_max_attempts: u32,
    /// Largest task input accepted.
    #[arg(long, default_value_t = 16)]
    pub max_input_mib: usize,
}

/// How a node or agent runs its worker processes.
#[derive(Args, Debug, Clone)]
pub struct SlotFlags {
    /// Worker processes proving at once.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Lease length; the holder heartbeats every third of it.
    #[arg(long, default_value_t = 30.0)]
    pub lease_secs: f64,
    /// How a backend's workers live: BACKEND=fresh (a process per attempt) or
    /// BACKEND=warm (reused, recycled). Repeatable. Default: every backend warm.
    #[arg(long = "worker-mode", value_parser = parse_mode)]
    pub worker_modes: Vec<(String, String)>,
    /// Attempts a warm worker serves before it is replaced.
    #[arg(long, default_value_t = 100)]
    pub warm_max_attempts: u32,
    /// Resident memory past which a warm worker is replaced after its attempt (raised for a
    /// backend to what it needs to prove, e.g. SP1).
    #[arg(long, default_value_t = 2048)]
    pub warm_max_rss_mib: u64,
    /// Most memory, in MiB, that the attempts running at once may be limited to in total: a
    /// slot waits for room before it takes a large task. Default: 90% of this machine's memory.
    #[arg(long)]
    pub memory_budget_mib: Option<u64>,
    /// On SIGTERM, how long running attempts may finish before they are stopped.
    #[arg(long, default_value_t = 30.0)]
    pub drain_secs: f64,
}

fn parse_mode(s: &str) -> Result<(String, String), String> {
    let (backend, mode) = s
        .split_once('=')
        .ok_or_else(|| format!("expected BACKEND=fresh or BACKEND=warm, got {s:?}"))?;
    if mode != "fresh" && mode != "warm" {
        return Err(format!("worker mode {mode:?} is neither fresh nor warm"));
    }
    Ok((backend.to_owned(), mode.to_owned()))
}

#[derive(Args, Debug)]
pub struct Submit {
    /// A built-in guest name or its program id, or the path of a RISC-V ELF.
    pub program: String,
    #[arg(long, short, default_value = "trace")]
    pub backend: String,
    #[arg(long)]
    pub abi: Option<Abi>,
    #[command(flatten)]
    pub input: InputFlags,
    #[arg(long)]
    pub proof_kind: Option<String>,
    /// Higher runs first.
    #[arg(long)]
    pub priority: Option<i32>,
    /// Fail the task if it has not finished this many seconds from now.
    #[arg(long)]
    pub deadline_secs: Option<f64>,
    /// Wall-clock limit of one attempt.
    #[arg(long)]
    pub timeout_secs: Option<f64>,
    /// Memory limit of one attempt's worker process.
    #[arg(long)]
    pub memory_limit_mib: Option<u64>,
    /// Attempts before the task is quarantined.
    #[arg(long)]
    pub max_attempts: Option<u32>,
    #[arg(long)]
    pub max_cycles: Option<u64>,
    #[arg(long)]
    pub max_guest_memory_mib: Option<u64>,
    /// Submitting again with the same key returns the same task.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Wait for the task to end; write its proof (see --output) if it succeeded.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: where to write the proof [default: <id>.proof].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeFlags,
    #[arg(long)]
    pub json: bool,
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
#[derive(Args, Debug, Default, Clone)]
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

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// BACKEND or BACKEND:KIND to measure, in order (repeatable), e.g. `--target trace
    /// --target risc0:composite --target sp1:core`. Default: every available backend, default kind.
    #[arg(long = "target")]
    pub targets: Vec<provernode_bench::Target>,
    /// Job set: `standard` (fibonacci n=10,50,100,10^4,10^5; sha256-chain 10 and 1,000
    /// rounds) or `quick` (fibonacci n=10, sha256-chain 10 rounds).
    #[arg(long, default_value = "quick")]
    pub jobs: String,
    /// Only jobs of this program (repeatable).
    #[arg(long = "program")]
    pub programs: Vec<String>,
    /// Only jobs with this input label, e.g. `n=10` or `rounds=1000` (repeatable).
    #[arg(long = "input")]
    pub inputs: Vec<String>,
    /// Timed verifications per proof (after one untimed).
    #[arg(long, default_value_t = 100)]
    pub verify_runs: u32,
    /// JSON results file to merge this run into (rows with the same backend, kind, program
    /// and input are replaced).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Write the Markdown table of everything in --results (or of this run) into this file,
    /// between its `provernode bench` markers (the rest of the file is kept).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Only render --results into --markdown; measure nothing.
    #[arg(long, requires_all = ["results", "markdown"])]
    pub render_only: bool,
}
