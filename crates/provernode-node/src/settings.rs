//! The settings of each role, as command-line flags (clap). Defined here,
//! once, so the binary only parses them and the roles read them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::NodeError;

/// `provernode run`: the embedded node.
#[derive(Args, Debug, Clone)]
pub struct RunNode {
    /// Where the queue database and scratch files live.
    #[arg(long, env = "PROVERNODE_DATA_DIR", default_value = "provernode-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub slots: SlotFlags,
    /// Address of the HTTP API. Anything but loopback requires --token.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Bearer token clients must send.
    #[arg(long, env = "PROVERNODE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// SQLite durability: `full` survives power loss, `normal` survives process crashes.
    #[arg(long, value_enum, default_value_t = SqliteSync::Full)]
    pub sqlite_synchronous: SqliteSync,
    #[command(flatten)]
    pub tasks: TaskDefaults,
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub artifacts: crate::artifacts::ArtifactFlags,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SqliteSync {
    /// fsync on every commit: survives power loss.
    Full,
    /// Survives any process crash; the last commits may be lost on power loss.
    Normal,
}

/// `provernode broker`.
#[derive(Args, Debug, Clone)]
pub struct BrokerArgs {
    /// The shared PostgreSQL database.
    #[arg(long, env = "PROVERNODE_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Address of the HTTP API. Anything but loopback requires --client-token.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
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
    /// Accept results for backends this broker cannot verify (it is built without them),
    /// trusting the agents' own verification. Off by default: a broker verifies every
    /// proof before storing it, and refuses tasks for backends it cannot verify.
    #[arg(long)]
    pub trust_agents: bool,
    #[command(flatten)]
    pub tasks: TaskDefaults,
    #[command(flatten)]
    pub http: HttpFlags,
}

/// `provernode agent`.
#[derive(Args, Debug, Clone)]
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
    /// The agent's own directory: its lock (one agent per directory), the record of its
    /// workers (killed at the next start if the agent died), and private worker directories
    /// when /dev/shm is not writable.
    #[arg(long, default_value = "provernode-agent-scratch")]
    pub scratch_dir: PathBuf,
    /// Address of this agent's own /healthz, /readyz (workers, broker, each backend warm or
    /// cold) and /metrics, for Prometheus and health checks [default: none]. No token is
    /// asked there: bind it where only monitoring reaches (for example 127.0.0.1:9101).
    #[arg(long, value_name = "ADDR")]
    pub status_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub http: HttpFlags,
    #[command(flatten)]
    pub artifacts: crate::artifacts::ArtifactFlags,
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
    /// Largest task input accepted (a request body may be about twice this, for its encoding).
    #[arg(long, default_value_t = 16)]
    pub max_input_mib: usize,
    /// Largest program file accepted, uploaded (PUT /v1/programs) or inline in a submission.
    #[arg(long, default_value_t = 32)]
    pub max_program_mib: usize,
    /// Most guest memory a trace task may ask for: trace proofs are verified by re-running
    /// the guest in this process (the node's or broker's own), outside any worker's cage.
    #[arg(long, default_value_t = 1024)]
    pub max_trace_guest_memory_mib: u64,
}

/// How the HTTP server protects itself from slow, idle and numerous clients.
#[derive(Args, Debug, Clone)]
pub struct HttpFlags {
    /// Most client connections open at once [default: 1024, or less if the process's
    /// open-file limit is low]. A client beyond them gets 503 at once and is disconnected.
    #[arg(long)]
    pub max_http_connections: Option<usize>,
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection is kept.
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout_secs: f64,
    /// How long a client may take to send a request's body.
    #[arg(long, default_value_t = 60.0)]
    pub body_timeout_secs: f64,
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
    pub worker_modes: Vec<(String, WorkerModeName)>,
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
    /// On SIGTERM, how long running attempts may finish before they are stopped (and
    /// requeued uncharged). A second SIGTERM or Ctrl-C stops them at once.
    #[arg(long, default_value_t = 30.0)]
    pub drain_secs: f64,
    /// Backends whose long proofs are split into parts that any agent proves (segments, then
    /// joins of adjacent ranges): a task whose execution is longer than one segment is split.
    /// RISC Zero splits succinct proofs; trace (dev mode) splits any, to rehearse a cluster.
    /// `--split-backends ''` turns splitting off.
    #[arg(long, value_delimiter = ',', default_value = "risc0")]
    pub split_backends: Vec<String>,
    /// Segment size of a split, as a power of two of cycles (RISC Zero: 14 to 24; each
    /// step up doubles a segment's proving memory and time).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(10..=24))]
    pub split_po2: u32,
}

impl SlotFlags {
    pub fn split_policy(&self) -> provernode_agent::SplitPolicy {
        provernode_agent::SplitPolicy {
            backends: self
                .split_backends
                .iter()
                .filter(|b| !b.is_empty())
                .cloned()
                .collect(),
            segment_po2: self.split_po2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkerModeName {
    Fresh,
    Warm,
}

fn parse_mode(s: &str) -> Result<(String, WorkerModeName), String> {
    let (backend, mode) = s
        .split_once('=')
        .ok_or_else(|| format!("expected BACKEND=fresh or BACKEND=warm, got {s:?}"))?;
    let mode = WorkerModeName::from_str(mode, false)
        .map_err(|_| format!("worker mode {mode:?} is neither fresh nor warm"))?;
    Ok((backend.to_owned(), mode))
}

/// A positive, finite number of seconds, or an error naming the flag.
pub fn secs(s: f64, flag: &str) -> Result<Duration, NodeError> {
    if !(s.is_finite() && s > 0.0 && s < 1e9) {
        return Err(NodeError::Config(format!(
            "{flag} must be a positive number of seconds, got {s}"
        )));
    }
    Ok(Duration::from_secs_f64(s))
}

/// A bearer token as given: absent, or non-blank. A token of spaces would
/// "protect" a public address with nothing.
pub fn token(given: Option<&str>, flag: &str) -> Result<Option<String>, NodeError> {
    match given {
        None | Some("") => Ok(None),
        Some(t) if t.trim().is_empty() => Err(NodeError::Config(format!(
            "{flag} is only whitespace; give a real secret (for example `openssl rand -hex 32`)"
        ))),
        Some(t) if t.trim() != t => Err(NodeError::Config(format!(
            "{flag} starts or ends with whitespace, which clients cannot send in a header; remove it"
        ))),
        Some(t) => Ok(Some(t.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_must_be_positive_and_finite() {
        assert!(secs(0.5, "--x").is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = secs(bad, "--lease-secs").unwrap_err().to_string();
            assert!(e.contains("--lease-secs"), "{e}");
        }
    }

    #[test]
    fn a_blank_token_is_refused_and_an_empty_one_is_none() {
        assert_eq!(token(None, "--token").unwrap(), None);
        assert_eq!(token(Some(""), "--token").unwrap(), None);
        assert!(token(Some("   "), "--token")
            .unwrap_err()
            .to_string()
            .contains("only whitespace"));
        assert!(token(Some(" x"), "--token").is_err());
        assert_eq!(
            token(Some("s3cret"), "--token").unwrap().as_deref(),
            Some("s3cret")
        );
    }

    #[test]
    fn worker_modes_parse_as_backend_and_mode() {
        assert_eq!(
            parse_mode("sp1=warm").unwrap(),
            ("sp1".into(), WorkerModeName::Warm)
        );
        assert!(parse_mode("sp1=lukewarm").unwrap_err().contains("neither"));
        assert!(parse_mode("sp1").is_err());
    }
}
