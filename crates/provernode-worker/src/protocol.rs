//! The files and lines exchanged between a slot and its worker.
//!
//! Control goes over the child's stdin and stdout: `run N` in, then
//! `provernode-worker: started N` (backend warm, program set up: the task's
//! timeout starts here), `provernode-worker: retire` (optional: replace this
//! worker after the attempt), `provernode-worker: cycles N C` (optional:
//! the attempt's cycle count, when the request asks for it so the slot can
//! size the timeout), `provernode-worker: note N TEXT` (optional: something
//! the node logs, such as keys loaded from the artifact store instead of
//! set up) and `provernode-worker: done N` out; data goes through files in
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
    /// Split executions longer than `2^po2` cycles into parts.
    pub split_po2: Option<u32>,
    /// The task named no timeout and a rate is known: once the worker has
    /// counted the attempt's cycles, its timeout becomes the rule's for
    /// them (never shorter than `timeout`, never past `timeout_cap`).
    pub timeout_rule: Option<provernode_core::TimeoutRule>,
    /// The most an attempt may run whatever its cycles (its deadline).
    pub timeout_cap: Option<std::time::Duration>,
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
    /// Split executions longer than `2^po2` cycles into parts (issue 22);
    /// absent: never.
    #[serde(default)]
    pub split_po2: Option<u32>,
    /// Execute first and report the cycle count (`cycles N C` on stdout),
    /// so the slot can size the attempt's timeout from it.
    #[serde(default)]
    pub report_cycles: bool,
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
