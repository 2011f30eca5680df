//! The HTTP API's bodies: every request and response of the client API and
//! the agent API, as serde types. The broker decodes requests and encodes
//! answers with them, the agent's work source and the client do the
//! reverse, and the OpenAPI document (`docs/openapi.json`) is derived from
//! them and their doc comments, so the three cannot drift apart.
//!
//! Architecture invariant: plain data. No I/O, no store or backend types;
//! the broker maps between these and its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable error codes, one per kind of failure a client can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    UnknownProgram,
    UnknownBackend,
    BackendUnavailable,
    InvalidInput,
    PayloadTooLarge,
    Unauthorized,
    NotFound,
    ProofNotReady,
    AlreadyTerminal,
    NotRetryable,
    IdempotencyConflict,
    StoreUnavailable,
    InsufficientStorage,
    StoreDamaged,
    Overloaded,
    MethodNotAllowed,
    ProofRejected,
    ProgramInUse,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::InvalidRequest,
        ErrorCode::UnknownProgram,
        ErrorCode::UnknownBackend,
        ErrorCode::BackendUnavailable,
        ErrorCode::InvalidInput,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::ProofNotReady,
        ErrorCode::AlreadyTerminal,
        ErrorCode::NotRetryable,
        ErrorCode::IdempotencyConflict,
        ErrorCode::StoreUnavailable,
        ErrorCode::InsufficientStorage,
        ErrorCode::StoreDamaged,
        ErrorCode::Overloaded,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ProofRejected,
        ErrorCode::ProgramInUse,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownProgram => "unknown_program",
            ErrorCode::UnknownBackend => "unknown_backend",
            ErrorCode::BackendUnavailable => "backend_unavailable",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ProofNotReady => "proof_not_ready",
            ErrorCode::AlreadyTerminal => "already_terminal",
            ErrorCode::NotRetryable => "not_retryable",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::StoreDamaged => "store_damaged",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ProofRejected => "proof_rejected",
            ErrorCode::ProgramInUse => "program_in_use",
            ErrorCode::Internal => "internal",
        }
    }
}

/// Every error answer: a stable code and a message that says what is wrong
/// and what to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What is wrong and what to do.
    pub message: String,
}

/// Where a task is in its life; `succeeded`, `failed`, `cancelled` and
/// `quarantined` are terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Leased,
    Succeeded,
    Failed,
    Cancelled,
    Quarantined,
}

/// Typed input of a built-in guest (see `provernode programs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypedInput {
    /// fibonacci: the index n.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// sha256-chain: the number of rounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<u32>,
    /// sha256-chain: the 32-byte seed as 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// sha256: the text to hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A task to prove. Give at most one of `input`, `input_hex`,
/// `input_base64` and `input_items_base64`; limits left out get the node's defaults (or the
/// backend's floors, where they are larger).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitTask {
    /// A built-in guest's name, its program id (64 hex digits), or, with
    /// `elf_base64`, the name to give that program. At most 256 characters.
    pub program: String,
    /// `risc0` or `sp1`; for a built-in guest, which build to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abi: Option<String>,
    /// `trace` (default), `risc0` or `sp1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<TypedInput>,
    /// Raw input bytes as hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_hex: Option<String>,
    /// Raw input bytes as base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_base64: Option<String>,
    /// Input items, each base64: for SP1 one `SP1Stdin::write` each (one
    /// `sp1_zkvm::io::read` in the guest; an empty list is no input), for
    /// RISC Zero concatenated as `ExecutorEnv::write` appends them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_items_base64: Option<Vec<String>>,
    /// The program's RISC-V ELF, base64; checked whole at submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elf_base64: Option<String>,
    /// A proof kind of the backend (trace: execution-record; risc0:
    /// composite, succinct; sp1: core, compressed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_kind: Option<String>,
    /// Higher runs first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Unix time in milliseconds after which the task fails as `deadline_passed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<i64>,
    /// Makes this an aggregate: the ids of 1 to 1024 tasks (one backend,
    /// one ABI) whose proofs it verifies, in order. It waits until all
    /// have succeeded; its input is then their proofs, so give no input.
    /// `program` is then `aggregate` (the built-in aggregating guest) or a
    /// program that reads the same claims; backend and abi default to the
    /// dependencies'. If one of them ends without a proof, the aggregate
    /// fails as `dependency_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate_of: Option<Vec<String>>,
    /// Wall-clock limit of one attempt (above 0, at most 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
    /// Memory limit of one attempt's worker process (16 to 4194304).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_mib: Option<u64>,
    /// The task's own failures before it is quarantined (1 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Most guest cycles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cycles: Option<u64>,
    /// Most guest memory: at most the ABI's address space, and for trace at
    /// most the node's `--max-trace-guest-memory-mib`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_guest_memory_mib: Option<u64>,
    /// 1 to 200 visible ASCII characters. The same key with the same
    /// program, input, backend, ABI, proof kind and limits returns the first
    /// task (200); with anything else it is refused (409). Also accepted as
    /// the `Idempotency-Key` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Submitted {
    pub id: String,
    /// True when the idempotency key matched an earlier task, which is returned.
    pub deduplicated: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProgramView {
    pub name: String,
    /// SHA-256 of the ELF.
    pub id: String,
    pub abi: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LimitsView {
    pub timeout_ms: u64,
    pub memory_limit_bytes: u64,
    pub max_attempts: u32,
    pub max_cycles: u64,
    pub max_guest_memory_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeaseView {
    /// Who holds the lease (node or agent, and its worker slot).
    pub owner: String,
    pub expires_ms: Option<i64>,
}

/// A task as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: String,
    pub state: TaskState,
    /// Why a failed, cancelled or quarantined task ended: `timeout`,
    /// `out_of_memory`, `crashed(SIGNAL)`, `invalid_input`, `guest_panic`, `backend_error`,
    /// `lease_lost`, `cancelled`, `deadline_passed` or `dependency_failed`
    /// (a task it depends on ended without a proof; the detail names it).
    pub terminal_reason: Option<String>,
    pub detail: Option<String>,
    pub program: ProgramView,
    pub backend: String,
    pub proof_kind: Option<String>,
    pub input_digest: String,
    pub input_bytes: u64,
    pub priority: i32,
    pub deadline_ms: Option<i64>,
    pub idempotency_key: Option<String>,
    pub limits: LimitsView,
    /// Attempts started so far (claims), however each ended; see failures
    /// and lease_losses for what counts toward quarantine.
    pub attempts: u32,
    /// The task's own retryable failures (timeout, out of memory, crash,
    /// ...), compared with limits.max_attempts: the task is quarantined when
    /// they reach it.
    pub failures: u32,
    /// Attempts whose holder vanished (a node or agent died, or lost touch
    /// past its lease), counted apart from failures with a larger bound:
    /// max(10, 3 * max_attempts). Attempts the node handed back itself
    /// (drain, a worker it could not start) count in neither; their history
    /// outcome is `released`.
    pub lease_losses: u32,
    pub lease: Option<LeaseView>,
    pub public_output_hex: Option<String>,
    /// The public output described, for built-in guests.
    pub output: Option<String>,
    pub cycles: Option<u64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub finished_ms: Option<i64>,
    /// An aggregate's dependencies, in order, with their states, in the
    /// single-task view (`GET /v1/tasks/{id}`); empty for other tasks and
    /// in lists.
    #[serde(default)]
    pub depends_on: Vec<DependencyView>,
    /// A part of a split task: that task's id and the segments this part
    /// covers (one for a segment, more for a join).
    #[serde(default)]
    pub part: Option<PartView>,
    /// A split task's progress, in the single-task view, once its plan was
    /// accepted (its lease owner is then `split`).
    #[serde(default)]
    pub split: Option<SplitView>,
}

/// Where a part sits in its split task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PartView {
    pub parent_id: String,
    /// First segment covered.
    pub lo: u32,
    /// One past the last segment covered.
    pub hi: u32,
}

/// How far a split task's parts have come.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SplitView {
    pub segments: u32,
    /// Segments of 2^segment_po2 cycles: the size the plan used, which a
    /// worker's memory limit may have made smaller than the node's setting.
    pub segment_po2: u32,
    pub segments_proved: u32,
    /// A split of n segments takes n - 1 joins.
    pub joins: u32,
    pub joins_done: u32,
    /// Parts an agent holds now.
    pub parts_running: u32,
}

/// A task an aggregate depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DependencyView {
    pub id: String,
    pub state: TaskState,
}

/// One attempt at a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub attempt: u32,
    pub owner: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    /// `succeeded`, `released`, or a terminal reason; null while running.
    pub outcome: Option<String>,
    pub detail: Option<String>,
    /// The last 4 KiB of the worker's stderr.
    pub stderr_tail: Option<String>,
    /// How long it ran, or has been running (by the server's clock), in milliseconds.
    #[serde(default)]
    pub elapsed_ms: i64,
    /// What it was last reported doing: `proving`, `verifying` or `reporting`.
    #[serde(default)]
    pub phase: Option<String>,
}

/// A task with every attempt's end and cause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskWithAttempts {
    #[serde(flatten)]
    pub task: Task,
    pub attempt_history: Vec<Attempt>,
    /// What operators did to the task outside its attempts (`retried`), oldest first.
    #[serde(default)]
    pub events: Vec<TaskEvent>,
}

/// Something done to a task outside its attempts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskEvent {
    pub at_ms: i64,
    /// `retried`.
    pub kind: String,
    pub detail: String,
}

/// A page of tasks, newest first. A page is cut short when its tasks'
/// names, details and outputs pass 8 MiB.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskList {
    pub tasks: Vec<Task>,
    /// Give as `before` for the next page; null on the last page.
    pub next_before: Option<String>,
}

/// A stored program (`PUT /v1/programs`, `GET /v1/programs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProgramInfo {
    /// SHA-256 of the ELF (or R0BF) file: what tasks name it by.
    pub id: String,
    /// The name it was first stored under.
    pub name: String,
    /// `risc0` or `sp1`.
    pub abi: String,
    pub size_bytes: u64,
    /// When it was first stored (Unix milliseconds).
    pub created_ms: i64,
    /// Tasks that run it.
    pub tasks: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_task_ms: Option<i64>,
    /// True when this request stored it; false when it was stored already.
    #[serde(default)]
    pub created: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProgramList {
    /// Oldest first.
    pub programs: Vec<ProgramInfo>,
}

/// A task put back in the queue by `POST /v1/tasks/{id}/retry`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Retried {
    pub id: String,
    pub state: TaskState,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Cancelled {
    pub id: String,
    pub state: TaskState,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: String,
}

/// Whether the node takes work: its store answers (and, after a full disk,
/// takes writes again), its workers run, and no check is degraded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// `store`, `workers`, and any degraded check or note (for example
    /// `verification` on a broker), each with what was found.
    pub checks: BTreeMap<String, String>,
    /// Each component (`store`, `workers`, `broker` on an agent,
    /// `backend:NAME`), with its status, since when, and its last error.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentView>,
}

/// One component's health.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComponentView {
    /// `ok`, `degraded` (working with less: the node stays ready) or
    /// `failing` (the node is not ready).
    pub status: String,
    /// When the status last changed, milliseconds since the epoch.
    pub since_ms: i64,
    /// What was found now.
    pub detail: String,
    /// The last problem seen (kept after recovery).
    pub last_error: Option<String>,
    /// When the last problem was seen, milliseconds since the epoch.
    pub last_error_ms: Option<i64>,
}

/// The broker's answer to an agent checking its token (`provernode doctor agent`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentCheck {
    /// The broker's provernode version.
    pub version: String,
    /// The broker's clock, milliseconds since the epoch: agents compare theirs.
    pub server_time_ms: i64,
}

/// An agent asks for work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentClaim {
    /// Lease owner: `<agent name>/<slot>`, 1 to 200 characters.
    pub agent: String,
    /// Backends the agent can run (at most 32).
    pub backends: Vec<String>,
    /// Lease length wanted (1,000 ms up to the broker's maximum).
    pub lease_ms: u64,
    /// Only tasks whose attempt memory limit fits in this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<u64>,
}

/// The answer to a claim: a lease, or null when there is no work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClaimAnswer {
    pub lease: Option<LeaseGrant>,
}

/// A claimed task: everything an agent needs to run the attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeaseGrant {
    pub task_id: String,
    pub token: String,
    pub attempt: u32,
    pub expires_ms: i64,
    pub backend: String,
    pub program_name: String,
    pub program_id: String,
    pub abi: String,
    pub proof_kind: Option<String>,
    pub deadline_ms: Option<i64>,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub memory_limit_bytes: u64,
    pub max_cycles: u64,
    pub max_guest_memory_bytes: u64,
    pub elf_base64: String,
    pub input_base64: String,
    /// The task named no timeout: `timeout_ms` is a floor, and the agent
    /// sizes the attempt from its cycles and the rates below.
    #[serde(default)]
    pub timeout_from_rate: bool,
    /// The measured proving rates of the task's backend, by proof kind.
    #[serde(default)]
    pub proving_rates: Vec<RateView>,
}

/// A measured proving rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RateView {
    pub proof_kind: String,
    pub cycles_per_sec: f64,
}

/// An agent keeps its lease alive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentHeartbeat {
    pub task_id: String,
    pub token: String,
    pub lease_ms: u64,
    /// What the attempt is doing now (`proving`, `verifying`, `reporting`),
    /// shown in the task's attempt history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HeartbeatAnswer {
    /// The lease is extended.
    Live { expires_ms: i64 },
    /// The lease is no longer this agent's (expired, cancelled, finished):
    /// stop the attempt.
    Gone { state: TaskState },
}

/// An agent reports a proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentComplete {
    pub task_id: String,
    pub token: String,
    /// The proof envelope file, base64.
    pub envelope_base64: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompleteAnswer {
    /// False for a late or duplicate report, with the reason.
    pub accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An agent reports why an attempt ended without a proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentFail {
    pub task_id: String,
    pub token: String,
    /// A terminal reason (see Task.terminal_reason).
    pub cause: String,
    pub retryable: bool,
    pub detail: String,
    #[serde(default)]
    pub stderr_tail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailOutcome {
    Requeued,
    Failed,
    Quarantined,
    Ignored,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailAnswer {
    pub outcome: FailOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An agent hands a lease back uncharged: the attempt ended for the agent's
/// own reasons (it is stopping, or cannot start workers: descriptors, disk,
/// memory). The task is queued again; the attempt counts toward neither
/// failures nor lease_losses and is recorded as `released` with this detail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRelease {
    pub task_id: String,
    pub token: String,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseOutcome {
    Requeued,
    Ignored,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseAnswer {
    pub outcome: ReleaseOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_serialise_as_their_names() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().to_owned())
            );
        }
    }

    #[test]
    fn heartbeat_answers_are_tagged_by_status() {
        let live: HeartbeatAnswer = serde_json::from_str(r#"{"status":"live","expires_ms":5}"#).unwrap();
        assert_eq!(live, HeartbeatAnswer::Live { expires_ms: 5 });
        let gone = serde_json::to_string(&HeartbeatAnswer::Gone {
            state: TaskState::Cancelled,
        })
        .unwrap();
        assert_eq!(gone, r#"{"status":"gone","state":"cancelled"}"#);
    }

    #[test]
    fn unknown_request_fields_are_refused() {
        assert!(serde_json::from_str::<SubmitTask>(r#"{"program":"x","colour":"red"}"#).is_err());
        assert!(
            serde_json::from_str::<AgentRelease>(r#"{"task_id":"t","token":"k","detail":"d","x":1}"#)
                .is_err()
        );
    }
}
