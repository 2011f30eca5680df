//! The node's roles, wired from the library crates: the embedded node
//! (`provernode run`: store, API, sweeper and local agent in one process),
//! the cluster broker (API and sweeper over PostgreSQL) and the cluster
//! agent (slots claiming from a broker); their settings (command-line flags,
//! defined once here), the data directory they hold, and signals.
//!
//! Architecture invariant: wiring only. Queue, HTTP, isolation and proving
//! logic live in their own crates; this one decides what runs, in which
//! order, with which settings.

pub mod artifacts;
mod cluster;
pub mod config;
mod datadir;
pub mod diagnose;
pub mod doctor;
mod embedded;
pub mod settings;
mod signals;
pub mod telemetry;
mod wiring;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use cluster::{agent, broker};
pub use datadir::DataDir;
pub use embedded::{run, start, temporary, RunningNode, QUEUE_FILE};
pub use signals::Signals;

/// The git commit this binary was built from (`-modified` if the tree had
/// changes), or `unknown` outside a git checkout.
pub const GIT_COMMIT: &str = env!("PROVERNODE_GIT_COMMIT");

/// `provernode --version`: the release, the commit and the backends built in.
pub fn version_line() -> String {
    format!(
        "{} (commit {GIT_COMMIT}, backends {})",
        env!("CARGO_PKG_VERSION"),
        provernode_backends::built_in().join(",")
    )
}

/// Why a role could not start or run. Each message is complete: what is
/// wrong, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Config(String),
    #[error("the data directory {path}: {what}: {error}")]
    DataDir {
        path: PathBuf,
        what: String,
        error: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] provernode_store::StoreError),
    #[error("cannot listen on {addr}: {error}; is another node running there?")]
    Listen { addr: SocketAddr, error: std::io::Error },
    #[error(transparent)]
    Client(#[from] provernode_client::ClientError),
    #[error("the artifact store: {0}")]
    Artifacts(String),
}

/// Fault injection for the scenario tests: an agent holds its first verified
/// result this long before reporting it (`PROVERNODE_FAULT_HOLD_FIRST_RESULT_MS`;
/// never set it in production).
fn fault_hold_first_result() -> Option<Duration> {
    std::env::var("PROVERNODE_FAULT_HOLD_FIRST_RESULT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}
