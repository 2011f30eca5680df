//! The durable task queue.
//!
//! One [`Store`] trait, free of any database's types, implemented on SQLite
//! ([`SqliteStore`], the embedded default) and PostgreSQL ([`PgStore`], the
//! cluster's shared queue, where claims use `FOR UPDATE SKIP LOCKED`). Every transition is a single
//! guarded statement (or a short transaction that starts with one), so
//! claims, heartbeats, results and sweeps are atomic however many workers
//! race:
//!
//! - claiming a task and writing its lease is one `UPDATE ... RETURNING`;
//! - a result is accepted only for the live lease that holds the task, once;
//!   a late or duplicate one is ignored (and logged by the caller);
//! - every lost lease is a counted attempt; after `max_attempts` the task is
//!   quarantined with every attempt's cause.
//!
//! Architecture invariant: the store never spawns processes and never calls
//! a backend; it only records what agents report.

mod diagnostics;
mod generation;
mod health;
mod postgres;
mod programs;
mod rates;
mod retry;
mod rows;
mod split;
mod sqlite;

use async_trait::async_trait;
use provernode_core::{Abi, Cause, Digest, ProgramId, TaskLimits, TaskState};
use uuid::Uuid;

pub use diagnostics::{Diagnostics, FailedAttempt, StateCount};
pub use generation::{Generation, GENERATION_FILE};
pub use postgres::{migration_status, MigrationStatus, PgStore};
pub use programs::{DeleteProgramOutcome, ProgramRecord};
pub use retry::{RetryOutcome, TaskEvent};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};

pub type TaskId = Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database could not write: its disk (or quota) is full. Nothing
    /// of the failed call was stored.
    #[error("no space left for the queue database{}: {error}; nothing was stored: free space on that disk (the node resumes by itself) and retry", location_suffix(location))]
    DiskFull { location: String, error: sqlx::Error },
    /// The database file is damaged (SQLite `SQLITE_CORRUPT`/`SQLITE_NOTADB`,
    /// PostgreSQL `XX001`/`XX002`): retrying cannot help.
    #[error("the queue database{} is damaged: {detail}; stop the node and restore the database from a backup (retrying will not help)", location_suffix(location))]
    DatabaseCorrupt { location: String, detail: String },
    /// The node refuses to start on this database, with what to do.
    #[error("{0}")]
    Refused(String),
    #[error("cannot apply database migrations: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("idempotency key {key:?} was already used for a different task ({existing}: another program, input, backend, ABI, proof kind or limits); use a new key for a new task")]
    IdempotencyConflict { key: String, existing: TaskId },
    /// A task named a program by id without its ELF, and no program of
    /// that id is stored.
    #[error("program {0} is not stored on this node: upload it first (`provernode programs upload FILE`, or PUT /v1/programs with the ELF as the body), or give its ELF")]
    UnknownProgram(ProgramId),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("value out of range for the database: {0}")]
    OutOfRange(&'static str),
}

fn location_suffix(location: &str) -> String {
    if location.is_empty() {
        String::new()
    } else {
        format!(" ({location})")
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match health::classify(&e) {
            health::ErrorKind::DiskFull => StoreError::DiskFull {
                location: String::new(),
                error: e,
            },
            health::ErrorKind::Corrupt => StoreError::DatabaseCorrupt {
                location: String::new(),
                detail: e.to_string(),
            },
            health::ErrorKind::Other => StoreError::Database(e),
        }
    }
}

impl StoreError {
    /// Whether the same call may succeed later without anyone changing the
    /// request (the database is down, busy, or its disk full).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Database(_) | StoreError::DiskFull { .. })
    }
}

/// How many lost leases (holders that vanished: a node or agent died, or
/// was cut off past its lease) quarantine a task: a larger bound than its
/// own failures, so a machine that restarts for its own reasons quarantines
/// nothing, while a task that kills every node that takes it still ends.
pub fn lease_loss_bound(max_attempts: u32) -> u32 {
    max_attempts.saturating_mul(3).max(10)
}

/// A task as submitted.
#[derive(Clone, Debug)]
pub struct NewTask {
    pub program_id: ProgramId,
    pub program_name: String,
    pub abi: Abi,
    /// The program's file, stored once per program id. Empty: the program
    /// is stored already (uploaded), and the task is refused with
    /// [`StoreError::UnknownProgram`] if it is not.
    pub elf: Vec<u8>,
    pub input: Vec<u8>,
    pub backend: String,
    pub proof_kind: Option<String>,
    pub limits: TaskLimits,
    pub priority: i32,
    pub deadline_ms: Option<i64>,
    pub idempotency_key: Option<String>,
    /// Tasks whose proofs this one verifies (an aggregate), in the order
    /// its guest verifies them. It is claimable once all have succeeded;
    /// its `input` is then assembled from their proofs (submit it empty).
    pub depends_on: Vec<TaskId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submitted {
    pub id: TaskId,
    /// True when the idempotency key matched an earlier task, which is returned.
    pub deduplicated: bool,
}

/// A task as stored (without its ELF and input bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    pub id: TaskId,
    pub program_id: ProgramId,
    pub program_name: String,
    pub abi: Abi,
    pub backend: String,
    pub proof_kind: Option<String>,
    pub input_digest: Digest,
    pub input_len: u64,
    pub limits: TaskLimits,
    pub priority: i32,
    pub deadline_ms: Option<i64>,
    pub idempotency_key: Option<String>,
    pub state: TaskState,
    /// The terminal reason of a failed, cancelled or quarantined task.
    pub cause: Option<Cause>,
    pub detail: Option<String>,
    /// Attempts started (claims); numbers the attempts.
    pub attempts: u32,
    /// The task's own retryable failures, compared with `max_attempts`.
    pub failures: u32,
    /// Attempts whose holder vanished, compared with [`lease_loss_bound`].
    pub lease_losses: u32,
    pub lease_owner: Option<String>,
    pub lease_expires_ms: Option<i64>,
    pub public_output: Option<Vec<u8>>,
    pub cycles: Option<u64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub finished_ms: Option<i64>,
    /// A part of a split task (issue 22): the task it is part of.
    pub parent_id: Option<TaskId>,
    /// A part's segments, `lo..hi` (one for a segment, more for a join).
    pub part: Option<(u32, u32)>,
    /// A split task's segment count, once its plan was accepted.
    pub split_segments: Option<u32>,
}

/// A measured proving rate (`provernode calibrate` prints them).
#[derive(Clone, Debug, PartialEq)]
pub struct ProvingRate {
    pub backend: String,
    pub proof_kind: String,
    pub cycles_per_sec: f64,
    /// Attempts averaged (1 for a calibration).
    pub samples: u64,
    /// `attempts` or `calibrate`.
    pub source: String,
    pub updated_ms: i64,
}

/// How far the parts of a split task have come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitProgress {
    pub segments: u32,
    /// The plan's segment size, 2^segment_po2 cycles: what the planning
    /// worker used, which may be smaller than the node's setting when the
    /// worker's memory limit asked for it.
    pub segment_po2: u32,
    pub segments_proved: u32,
    /// A split of n segments takes n - 1 joins.
    pub joins: u32,
    pub joins_done: u32,
    /// Parts held by an agent now.
    pub parts_running: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub owner: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    /// `succeeded` or a cause; `None` while the attempt runs.
    pub outcome: Option<String>,
    pub detail: Option<String>,
    pub stderr_tail: Option<String>,
    /// What the attempt was last reported doing (`proving`, `verifying`,
    /// `reporting`).
    pub phase: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ClaimRequest {
    /// Who takes the lease (node or agent id and worker slot).
    pub owner: String,
    /// Backends the claimer can run.
    pub backends: Vec<String>,
    pub lease_ttl_ms: u64,
    /// Only tasks whose attempt memory limit fits in this many bytes (what
    /// the claimer has free); `None` takes any.
    pub max_memory_bytes: Option<u64>,
}

/// A claimed task: everything a worker needs to run the attempt.
#[derive(Clone, Debug)]
pub struct Lease {
    pub task: TaskRecord,
    pub elf: Vec<u8>,
    pub input: Vec<u8>,
    pub token: String,
    pub attempt: u32,
    pub expires_ms: i64,
    /// The measured proving rates of the task's backend, by proof kind
    /// (cycles per second), for sizing a timeout the task did not name.
    pub rates: Vec<(String, f64)>,
}

impl Lease {
    pub fn lease_ref(&self) -> LeaseRef {
        LeaseRef {
            task_id: self.task.id,
            token: self.token.clone(),
        }
    }
}

/// What identifies a lease when reporting on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRef {
    pub task_id: TaskId,
    pub token: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    Live {
        expires_ms: i64,
    },
    /// The lease is no longer held (expired, cancelled, finished elsewhere);
    /// the attempt must stop.
    Gone {
        state: TaskState,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    Accepted,
    /// The lease was not live: a late or duplicate result.
    Ignored {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptFailure {
    pub cause: Cause,
    pub retryable: bool,
    pub detail: String,
    pub stderr_tail: String,
}

/// What became of a lease handed back uncharged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The task is queued again; the attempt counts toward no bound.
    Requeued,
    /// The lease was not live.
    Ignored { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureOutcome {
    Requeued,
    Failed(Cause),
    Quarantined(Cause),
    Ignored { reason: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub requeued: Vec<TaskId>,
    pub quarantined: Vec<TaskId>,
    pub deadline_passed: Vec<TaskId>,
}

impl SweepReport {
    pub fn is_empty(&self) -> bool {
        self.requeued.is_empty() && self.quarantined.is_empty() && self.deadline_passed.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    AlreadyTerminal(TaskState),
    NotFound,
}

#[derive(Clone, Debug)]
pub struct ListFilter {
    pub state: Option<TaskState>,
    /// Only tasks that ended with this terminal reason (`Cause` name).
    pub reason: Option<String>,
    /// Only tasks of this backend.
    pub backend: Option<String>,
    pub limit: u32,
    /// Only tasks created before this id (UUIDv7 ids sort by creation): paging.
    pub before: Option<TaskId>,
    /// Stop adding tasks once their variable-size fields (name, detail,
    /// public output) pass this many bytes; at least one task is returned.
    pub max_bytes: usize,
    /// Which parts of split tasks to list.
    pub parts: PartsFilter,
}

/// Which parts of split tasks (their segments and joins) a list holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PartsFilter {
    /// Every task, parts included.
    #[default]
    Include,
    /// Only tasks that are no split task's part (what clients submitted).
    Exclude,
    /// Only the parts of this split task.
    Of(TaskId),
}

impl Default for ListFilter {
    fn default() -> Self {
        ListFilter {
            state: None,
            reason: None,
            backend: None,
            limit: 100,
            before: None,
            max_bytes: 8 << 20,
            parts: PartsFilter::Include,
        }
    }
}

impl TaskRecord {
    /// The bytes of this record's variable-size fields, for bounding lists.
    pub fn variable_bytes(&self) -> usize {
        self.program_name.len()
            + self.detail.as_ref().map_or(0, String::len)
            + self.public_output.as_ref().map_or(0, Vec::len)
            + self.idempotency_key.as_ref().map_or(0, String::len)
            + self.lease_owner.as_ref().map_or(0, String::len)
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new task (and its program's ELF, once per program id).
    async fn submit(&self, task: NewTask) -> Result<Submitted, StoreError>;
    async fn task(&self, id: TaskId) -> Result<Option<TaskRecord>, StoreError>;
    async fn attempts(&self, id: TaskId) -> Result<Vec<AttemptRecord>, StoreError>;
    /// Newest first.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, StoreError>;
    /// The proof envelope of a succeeded task.
    async fn proof(&self, id: TaskId) -> Result<Option<Vec<u8>>, StoreError>;
    async fn cancel(&self, id: TaskId, detail: &str) -> Result<CancelOutcome, StoreError>;
    /// Records what a running attempt is doing, if `lease` still holds it.
    async fn set_phase(&self, lease: &LeaseRef, phase: &str) -> Result<(), StoreError>;
    /// A failed or quarantined task back to the queue with a fresh budget of
    /// attempts, recorded in its events; `by` says who asked.
    async fn retry(&self, id: TaskId, by: &str) -> Result<RetryOutcome, StoreError>;
    /// What was done to a task outside its attempts, oldest first.
    async fn events(&self, id: TaskId) -> Result<Vec<TaskEvent>, StoreError>;
    /// Takes the best queued task for these backends and writes its lease, atomically.
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, StoreError>;
    async fn heartbeat(&self, lease: &LeaseRef, ttl_ms: u64) -> Result<LeaseStatus, StoreError>;
    /// Accepts a verified proof for a live lease, exactly once.
    async fn complete(
        &self,
        lease: &LeaseRef,
        envelope: &[u8],
        public_output: &[u8],
        cycles: u64,
    ) -> Result<Completion, StoreError>;
    async fn fail(&self, lease: &LeaseRef, failure: &AttemptFailure) -> Result<FailureOutcome, StoreError>;
    /// Hands a live lease back without charging the task: the attempt ended
    /// for the machine's reasons (the node drained, a worker could not be
    /// started for lack of descriptors, disk or memory). `detail` is recorded
    /// as the attempt's outcome detail.
    async fn release(&self, lease: &LeaseRef, detail: &str) -> Result<ReleaseOutcome, StoreError>;
    /// Requeues (or quarantines) tasks whose lease expired, counting the lost
    /// attempt, and fails tasks past their deadline.
    async fn sweep(&self) -> Result<SweepReport, StoreError>;
    /// Ends every lease whose owner starts with `owner_prefix` now (all when
    /// `None`), then sweeps: used at start-up for leases of a dead process.
    async fn expire_leases(&self, owner_prefix: Option<&str>) -> Result<SweepReport, StoreError>;
    /// Number of tasks in each state.
    async fn counts(&self) -> Result<Vec<(TaskState, u64)>, StoreError>;
    /// The tasks `id` depends on, in order, with their states (empty for a
    /// task that depends on none).
    async fn dependencies(&self, id: TaskId) -> Result<Vec<(TaskId, TaskState)>, StoreError>;
    /// Every measured proving rate.
    async fn proving_rates(&self) -> Result<Vec<ProvingRate>, StoreError>;
    /// Sets a backend's and proof kind's rate (a calibration), replacing
    /// the average of attempts until attempts update it again.
    async fn record_rate(
        &self,
        backend: &str,
        proof_kind: &str,
        cycles_per_sec: f64,
        source: &str,
    ) -> Result<(), StoreError>;
    /// Tasks by state and terminal reason, and the `failed_limit` latest
    /// attempts that ended without a proof (`provernode diagnose`).
    async fn diagnostics(&self, failed_limit: u32) -> Result<Diagnostics, StoreError>;
    /// The progress of a split task's parts; `None` for a task not split.
    async fn split_progress(&self, id: TaskId) -> Result<Option<SplitProgress>, StoreError>;
    /// Stores a program once by its id (the SHA-256 of `elf`, checked);
    /// returns its record and whether it was new. A program stored before
    /// keeps its first name.
    async fn put_program(
        &self,
        id: &ProgramId,
        name: &str,
        abi: Abi,
        elf: &[u8],
    ) -> Result<(ProgramRecord, bool), StoreError>;
    async fn program(&self, id: &ProgramId) -> Result<Option<ProgramRecord>, StoreError>;
    /// A stored program's name and file, the file checked against its id
    /// as it is read. (No task counts: what a submission needs, cheaply.)
    async fn program_elf(&self, id: &ProgramId) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// The ids of every stored program, oldest first (no counts: cheap).
    async fn program_ids(&self) -> Result<Vec<ProgramId>, StoreError>;
    /// Every stored program, oldest first, with its task counts.
    async fn programs(&self) -> Result<Vec<ProgramRecord>, StoreError>;
    /// Deletes a program no task references.
    async fn delete_program(&self, id: &ProgramId) -> Result<DeleteProgramOutcome, StoreError>;
    /// Whether the database serves: it reads, it is not known to be damaged,
    /// and, once a write failed for a full disk, a small write succeeds again.
    async fn ping(&self) -> Result<(), StoreError>;
}
