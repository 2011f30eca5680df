//! The files and lines exchanged between a slot and its worker.
//!
//! Control goes over the child's stdin and stdout: `run N` in, then
//! `provernode-worker: started N` (backend warm, program set up: the task's
//! timeout starts here), `provernode-worker: retire` (optional: replace this
//! worker after the attempt) and `provernode-worker: done N` out; data goes through files in
//! the private directory: `req-N.json`, `req-N.elf`, `req-N.input`, and back
//! `resp-N.json` (written atomically) plus `resp-N.proof`.

use serde::{Deserialize, Serialize};

/// Lines the worker writes on stdout start with this; anything else a
/// backend prints there is ignored.
pub const PROTOCOL_PREFIX: &str = "provernode-worker: ";

/// One attempt, as the agent hands it to a slot.
#[derive(Clone, Debug)]
pub struct AttemptSpec {
    pub task_id: String,
    pub attempt: u32,
    pub backend: String,
    pub program_name: String,
    pub proof_kind: Option<String>,
    pub elf: Vec<u8>,
    pub input: Vec<u8>,
    pub max_cycles: u64,
    pub max_guest_memory_bytes: u64,
    /// Wall-clock limit of this attempt.
    pub timeout: std::time::Duration,
    /// Memory limit of the worker process.
    pub memory_limit_bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    pub task_id: String,
    pub attempt: u32,
    pub backend: String,
    pub program_name: String,
    pub proof_kind: Option<String>,
    pub max_cycles: u64,
    pub max_guest_memory_bytes: u64,
    /// The worker's cage limit, so a backend can size its work to fit
    /// (absent in requests from a node before this field: no limit known).
    #[serde(default)]
    pub prover_memory_bytes: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Response {
    Proved {
        cycles: u64,
    },
    Failed {
        /// A `Cause` name.
        cause: String,
        retryable: bool,
        message: String,
    },
}

pub fn request_json(n: u64) -> String {
    format!("req-{n}.json")
}
pub fn request_elf(n: u64) -> String {
    format!("req-{n}.elf")
}
pub fn request_input(n: u64) -> String {
    format!("req-{n}.input")
}
pub fn response_json(n: u64) -> String {
    format!("resp-{n}.json")
}
pub fn response_proof(n: u64) -> String {
    format!("resp-{n}.proof")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_round_trip_as_json() {
        for r in [
            Response::Proved { cycles: 5 },
            Response::Failed {
                cause: "invalid_input".into(),
                retryable: false,
                message: "bad".into(),
            },
        ] {
            let s = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Response>(&s).unwrap(), r);
        }
    }
}
