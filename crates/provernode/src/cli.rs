//! Command-line definitions (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use provernode_core::{Abi, Limits};
pub use provernode_node::settings::{AgentArgs, BrokerArgs, RunNode};

#[derive(Parser, Debug)]
#[command(
    name = "provernode",
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
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "PROVERNODE_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// The config file of `run`, `broker` and `agent`: TOML whose keys are their long flags
    /// (a flag or a PROVERNODE_* variable wins over it) [default: /etc/provernode/provernode.toml
    /// if it exists]. `provernode config ROLE` shows each setting's value and source.
    #[arg(long, global = true, value_name = "FILE", env = "PROVERNODE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Also write the log to this file, rotated daily (FILE.YYYY-MM-DD, the last 7 days
    /// kept); `provernode diagnose` puts its last lines in the support bundle.
    #[arg(long, global = true, value_name = "FILE", env = "PROVERNODE_LOG_FILE")]
    pub log_file: Option<PathBuf>,
}

/// The command line: the derived definition, with the version line (commit
/// and backends) and every role flag's PROVERNODE_* variable.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    provernode_node::config::with_env(Cli::command().version(provernode_node::version_line()))
}

/// A role and its flags, for `config`, `doctor` and `diagnose`.
#[derive(Subcommand, Debug)]
pub enum RoleArgs {
    /// The embedded node's settings.
    Run(RunNode),
    /// A broker's settings.
    Broker(BrokerArgs),
    /// An agent's settings.
    Agent(AgentArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The bench's job sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum JobSet {
    Quick,
    Standard,
}

impl JobSet {
    pub fn name(self) -> &'static str {
        match self {
            JobSet::Quick => "quick",
            JobSet::Standard => "standard",
        }
    }
}

/// A task state to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StateFilter {
    Queued,
    Leased,
    Succeeded,
    Failed,
    Cancelled,
    Quarantined,
}

impl From<StateFilter> for provernode_core::TaskState {
    fn from(s: StateFilter) -> Self {
        use provernode_core::TaskState;
        match s {
            StateFilter::Queued => TaskState::Queued,
            StateFilter::Leased => TaskState::Leased,
            StateFilter::Succeeded => TaskState::Succeeded,
            StateFilter::Failed => TaskState::Failed,
            StateFilter::Cancelled => TaskState::Cancelled,
            StateFilter::Quarantined => TaskState::Quarantined,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ProgramsAction {
    /// What a program file is: format (ELF or RISC Zero R0BF), ABI, entry, segments, the
    /// backends' keys (RISC Zero image id, SP1 verifying-key hash with --keys) and the
    /// system calls it can make, with what trace emulates.
    Inspect {
        /// An ELF, or a `.bin` from `cargo risczero build`.
        file: PathBuf,
        /// Also compute keys that need a backend's set-up (SP1's verifying-key hash).
        #[arg(long)]
        keys: bool,
        #[arg(long)]
        json: bool,
    },
    /// Store a program on a node once; tasks then name it by the id this prints
    /// (`provernode submit ID ...`) instead of carrying the ELF.
    Upload {
        /// An ELF, or a `.bin` from `cargo risczero build`.
        file: PathBuf,
        /// A name for lists and messages [default: the file's name].
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeFlags,
    },
    /// The programs stored on a node, with how many tasks run each.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeFlags,
    },
    /// Delete a stored program that no task references.
    Delete {
        id: String,
        #[command(flatten)]
        node: NodeFlags,
    },
}

/// `provernode artifacts ...`.
#[derive(Subcommand, Debug)]
pub enum ArtifactsAction {
    /// Every artifact in the manifest: name, kind, size, SHA-256, the version that wrote it.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Hash both copies of every artifact, rewrite a bad copy from the good one, and report
    /// the artifacts with no good copy (exit status 1 if there is one).
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Rewrite an artifact's primary copy from its backup (the backup is checked first).
    Restore { name: String },
    /// Copy a file into the store as file/NAME, with its backup copy.
    Import {
        file: PathBuf,
        /// Its name in the store, under file/ [default: the file's name].
        #[arg(long)]
        name: Option<String>,
        /// The backend whose tasks need this file: they are not claimed while it has no
        /// good copy.
        #[arg(long = "for", value_name = "BACKEND")]
        for_backend: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the built-in guest programs with their program ids for each ABI, inspect a
    /// program file (`programs inspect FILE`), or manage the programs stored on a node
    /// (`programs upload FILE`, `programs list`, `programs delete ID`).
    Programs {
        #[command(subcommand)]
        action: Option<ProgramsAction>,
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
    /// The node's verified files (stored programs, keys, files a backend needs): list, verify
    /// (and repair from the backup copies), restore, import. Run it on the node's machine.
    Artifacts {
        #[command(subcommand)]
        action: ArtifactsAction,
        /// The node's data directory (an agent's: its --scratch-dir).
        #[arg(
            long,
            env = "PROVERNODE_DATA_DIR",
            default_value = "provernode-data",
            global = true
        )]
        data_dir: PathBuf,
        /// The artifact store [default: artifacts/ in the data directory].
        #[arg(long, value_name = "DIR", global = true)]
        artifacts_dir: Option<PathBuf>,
        /// The backup copies [default: artifacts-backup/ beside the artifacts].
        #[arg(long, value_name = "DIR", global = true)]
        artifacts_backup_dir: Option<PathBuf>,
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
    /// Verify a proof envelope; needs nothing but the file. An aggregate's claims are listed.
    Verify {
        /// The proof envelope file.
        file: PathBuf,
        /// With an aggregate: also verify this proof and check that the aggregate covers its
        /// claim, printing the claim's index and its Merkle inclusion path (repeatable).
        #[arg(long, value_name = "PROOF")]
        claim: Vec<PathBuf>,
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
    /// Prove a fixed program on each backend here and record its proving rate (cycles per
    /// second) in the node's database: tasks that name no timeout get one sized from their
    /// cycles and that rate (3 × cycles / rate + 60 s, never below the default).
    Calibrate(crate::calibrate::CalibrateArgs),
    /// Run the prover node: durable queue, isolated workers, HTTP API.
    Run(RunNode),
    /// Run a cluster broker: the HTTP API (clients and agents) over a shared PostgreSQL
    /// database. Run any number of them; they keep no state of their own.
    Broker(BrokerArgs),
    /// Run a cluster agent: claim work from a broker and prove it in isolated workers.
    Agent(AgentArgs),
    /// Print a role's effective configuration: every setting with its value (secrets
    /// redacted) and where it came from (flag, environment, config file and line, default).
    /// Takes the role's own flags: `provernode config agent --broker URL`.
    Config {
        /// JSON, for scripts.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        role: RoleArgs,
    },
    /// Write a support bundle (tar.gz) for a role: version, git commit and backends, the
    /// effective config and the doctor report, system facts (CPU, memory, disk, cgroup limits,
    /// kernel), the last log lines (--log-file), tasks by state and reason, the latest failed
    /// attempts with their stderr tails, readiness and metrics. Every token and password the
    /// role was given is scrubbed from every file. Takes the role's own flags:
    /// `provernode diagnose run --data-dir /var/lib/provernode`.
    Diagnose {
        /// Where to write the bundle [default: provernode-diagnose-<unix time>.tar.gz].
        #[arg(short, long, global = true)]
        output: Option<PathBuf>,
        /// How many of the latest failed attempts to include.
        #[arg(long, global = true, default_value_t = 50)]
        failed_attempts: u32,
        /// How many of the last log lines to include.
        #[arg(long, global = true, default_value_t = 2000)]
        log_lines: usize,
        #[command(subcommand)]
        role: RoleArgs,
    },
    /// Preflight checks of this machine for a role, each with what was found and the exact
    /// fix: memory cgroup, /dev/shm, memory against each backend's floor, the settings workers get for their backends, disk, permissions
    /// and filesystem, port, tokens, PostgreSQL and migrations (broker), the broker and its
    /// token (agent), backends, open files, clock. Exits non-zero if any check fails; the
    /// roles run the same checks when they start.
    Doctor {
        /// JSON, for scripts.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        role: RoleArgs,
    },
    /// Print a shell completion script: `provernode completions bash >
    /// /etc/bash_completion.d/provernode`.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff): `provernode man > /usr/local/share/man/man1/provernode.1`.
    Man,
    /// Print the HTTP API's OpenAPI document (docs/openapi.json), derived from the code.
    Openapi,
    /// (internal) A worker process; the node starts these itself.
    #[command(hide = true)]
    Worker {
        /// The private request/response directory.
        #[arg(long)]
        dir: PathBuf,
        /// The node that started this worker: the worker dies with it.
        #[arg(long)]
        parent: Option<u32>,
        /// The node's artifact store: keys a backend set up (SP1) are loaded from it instead of
        /// set up again, and saved to it when made.
        #[arg(long, requires = "artifacts_backup_dir")]
        artifacts_dir: Option<PathBuf>,
        /// The artifact store's backup copy.
        #[arg(long, requires = "artifacts_dir")]
        artifacts_backup_dir: Option<PathBuf>,
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
    /// Put a failed or quarantined task back in the queue with a fresh budget of attempts
    /// (its history is kept, and the retry recorded in it).
    Retry {
        id: String,
        #[command(flatten)]
        node: NodeFlags,
    },
    /// Whether a node, broker or agent status port is ready to take work (GET /readyz):
    /// prints each component and exits 1 when not ready. For health checks and scripts.
    Ready {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeFlags,
    },
    /// Cancel a queued or running task.
    Cancel {
        id: String,
        #[command(flatten)]
        node: NodeFlags,
    },
    /// List tasks, newest first, a page at a time.
    Tasks {
        /// Only tasks in this state.
        #[arg(long, value_enum)]
        state: Option<StateFilter>,
        /// Only tasks that ended with this reason (timeout, out_of_memory, crashed(9),
        /// backend_error, guest_panic, invalid_input, lease_lost, cancelled, deadline_passed,
        /// dependency_failed).
        #[arg(long)]
        reason: Option<String>,
        /// Only tasks of this backend.
        #[arg(long)]
        backend: Option<String>,
        /// Only tasks older than this task id: the `more:` line of the previous page.
        #[arg(long, value_name = "ID")]
        before: Option<String>,
        /// Only the parts (segments and joins) of this split task.
        #[arg(long, value_name = "ID", conflicts_with = "parts")]
        parent: Option<String>,
        /// List split tasks' parts too (by default only the tasks clients submitted are listed).
        #[arg(long)]
        parts: bool,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
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
pub struct Submit {
    /// A built-in guest name or its program id, the id of a program stored on the node
    /// (`provernode programs upload`), or the path of a RISC-V ELF (uploaded first, once).
    /// `aggregate` with --of makes one proof of the proofs of other tasks.
    pub program: String,
    /// The backend [default: trace; with --of, the backend of the tasks aggregated].
    #[arg(long, short)]
    pub backend: Option<String>,
    /// Aggregate the proofs of these tasks (one backend, one ABI), in this order: the task
    /// waits until they succeed and fails as `dependency_failed` if one of them does not.
    #[arg(long, num_args = 1.., value_name = "ID", conflicts_with = "batch")]
    pub of: Vec<String>,
    /// Submit one task per line of FILE (each line the input flags of one task, e.g.
    /// `--n 10`; blank lines and lines starting with # are skipped), then one aggregate
    /// over them; prints every id, the aggregate's last.
    #[arg(long, value_name = "FILE")]
    pub batch: Option<PathBuf>,
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
    /// With --wait: give up after this many seconds (the task goes on). Until then the wait
    /// survives the node restarting or being unreachable: it retries [default: no limit].
    #[arg(long, value_name = "SECS", requires = "wait")]
    pub wait_timeout_secs: Option<f64>,
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
    /// The input of an aggregate (`aggregate --of A.proof B.proof`): proof envelopes of one
    /// backend and ABI, verified in this order.
    #[arg(long, num_args = 1.., value_name = "PROOF",
          conflicts_with_all = ["n", "rounds", "seed", "text", "input_file", "input_hex", "input_items", "stdin_file"])]
    pub of: Vec<PathBuf>,
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
    /// Raw input bytes from a file (any program): one SP1 stdin item.
    #[arg(long, help_heading = "Input", conflicts_with_all = ["n", "rounds", "seed", "text", "input_hex"])]
    pub input_file: Option<PathBuf>,
    /// Raw input bytes as hex (any program): one SP1 stdin item.
    #[arg(long, help_heading = "Input", conflicts_with_all = ["n", "rounds", "seed", "text"])]
    pub input_hex: Option<String>,
    /// One input item from a file, repeatable: each is one `SP1Stdin::write`
    /// (one `sp1_zkvm::io::read` in the guest); for RISC Zero the items are
    /// concatenated, as `ExecutorEnv::write` appends.
    #[arg(long = "input-item", value_name = "FILE", help_heading = "Input",
          conflicts_with_all = ["n", "rounds", "seed", "text", "input_file", "input_hex"])]
    pub input_items: Vec<PathBuf>,
    /// An `SP1Stdin` saved with `bincode::serialize(&stdin)` (sp1-sdk 6): all
    /// its items, in order. SP1 programs only.
    #[arg(long, value_name = "FILE", help_heading = "Input",
          conflicts_with_all = ["n", "rounds", "seed", "text", "input_file", "input_hex", "input_items"])]
    pub stdin_file: Option<PathBuf>,
}

impl InputFlags {
    /// The items given by `--input-item` or `--stdin-file`, if either was.
    pub fn items(&self) -> anyhow::Result<Option<Vec<Vec<u8>>>> {
        use anyhow::Context as _;
        if let Some(path) = &self.stdin_file {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the SP1Stdin file {}", path.display()))?;
            let items = provernode_core::input::parse_sp1_stdin(&bytes)
                .with_context(|| format!("--stdin-file {}", path.display()))?;
            return Ok(Some(items));
        }
        if self.input_items.is_empty() {
            return Ok(None);
        }
        self.input_items
            .iter()
            .map(|path| {
                std::fs::read(path).with_context(|| format!("cannot read the input item {}", path.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }
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
    #[arg(long, value_enum, default_value_t = JobSet::Quick)]
    pub jobs: JobSet,
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
    /// Measure batches instead of the job table: N inner proofs (fibonacci n=10, 11, ...) in
    /// the kind the backend's aggregates verify, then one aggregate of them (repeatable, e.g.
    /// `--batch 4 --batch 8`). The inner proofs are made once, for the largest N.
    #[arg(long = "batch", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batches: Vec<u32>,
    /// JSON file of batch rows to merge this run's batches into (and to render).
    #[arg(long, value_name = "FILE")]
    pub batch_results: Option<PathBuf>,
    /// Write the plots (SVG) into this directory: prove time against cycles from --results,
    /// aggregate cost against N from --batch-results (projections hollow).
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Only render --results (and --batch-results) into --markdown and --plots; measure nothing.
    #[arg(long)]
    pub render_only: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks every command's definition (unique names, valid
    /// defaults) only when that command is parsed; check them all here.
    #[test]
    fn every_command_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
