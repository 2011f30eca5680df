//! Row decoding shared by the SQLite and PostgreSQL stores. Both schemas use
//! 64-bit integers, text and byte strings only, so one generic decoder fits.

use std::str::FromStr;

use provernode_core::{Abi, Cause, Digest, ProgramId, TaskLimits, TaskState};
use sqlx::{ColumnIndex, Database, Decode, Row, Type};
use uuid::Uuid;

use crate::{AttemptRecord, NewTask, StoreError, TaskId, TaskRecord};

/// The columns that say what a stored task asked for, compared with a new
/// submission under the same idempotency key.
pub(crate) const REQUEST_COLUMNS: &str =
    "id, program_id, input_digest, backend, proof_kind, abi, max_cycles, \
     max_guest_memory_bytes, timeout_ms, memory_limit_bytes, max_attempts, timeout_from_rate";

/// Whether a stored task (a row of [`REQUEST_COLUMNS`]) is the same request
/// as `task`: same program, input, backend, ABI, proof kind and limits.
/// Anything else under the same key is a conflict, never silently the old
/// task. Priority and deadline are left out: a client retrying with a
/// deadline relative to now sends another absolute one. A task with
/// dependencies has its input assembled at its first claim, so its input
/// is compared through its dependencies (`stored_dependencies`, in order)
/// instead of the digest.
pub(crate) fn same_request<'r, R>(
    r: &'r R,
    task: &NewTask,
    input_digest: &Digest,
    stored_dependencies: &[TaskId],
) -> bool
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let n = |c: &'static str| r.get::<i64, _>(c);
    let l = &task.limits;
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let same_input = if task.depends_on.is_empty() && stored_dependencies.is_empty() {
        r.get::<String, _>("input_digest") == input_digest.to_string()
    } else {
        stored_dependencies == task.depends_on.as_slice()
    };
    r.get::<String, _>("program_id") == task.program_id.to_string()
        && same_input
        && r.get::<String, _>("backend") == task.backend
        && r.get::<Option<String>, _>("proof_kind") == task.proof_kind
        && r.get::<String, _>("abi") == task.abi.name()
        && n("max_cycles") == as_i64(l.max_cycles)
        && n("max_guest_memory_bytes") == as_i64(l.max_guest_memory_bytes)
        && n("timeout_ms") == as_i64(l.timeout_ms)
        && n("memory_limit_bytes") == as_i64(l.memory_limit_bytes)
        && n("max_attempts") == i64::from(l.max_attempts)
        && (n("timeout_from_rate") != 0) == l.timeout_from_rate
}

/// `program_name` is cut to 1,024 characters on the way out: names are
/// bounded at submission, and a row stored before that bound must not take
/// the node's memory with it on every list.
pub(crate) const TASK_COLUMNS: &str = "id, program_id, substr(program_name, 1, 1024) AS program_name, abi, backend, proof_kind, input_digest, \
     CAST(length(input) AS BIGINT) AS input_len, \
     max_cycles, max_guest_memory_bytes, timeout_ms, memory_limit_bytes, max_attempts, priority, deadline_ms, \
     idempotency_key, state, cause, detail, attempts, failures, lease_losses, lease_owner, lease_expires_ms, public_output, cycles, \
     created_ms, updated_ms, finished_ms, parent_id, part_lo, part_hi, split_segments, timeout_from_rate";

pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(what))
}

pub(crate) fn parse_id(s: &str) -> Result<TaskId, StoreError> {
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("task id {s:?} is not a UUID")))
}

pub(crate) fn parse_state(s: String) -> Result<TaskState, StoreError> {
    TaskState::from_str(&s).map_err(StoreError::Corrupt)
}

pub(crate) fn task_from_row<'r, R>(r: &'r R) -> Result<TaskRecord, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    R::Database: Database,
{
    let corrupt = |what: &str| StoreError::Corrupt(format!("bad {what} in tasks row"));
    let id: String = r.get("id");
    let program_id: String = r.get("program_id");
    let input_digest: String = r.get("input_digest");
    let abi: String = r.get("abi");
    let cause: Option<String> = r.get("cause");
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(TaskRecord {
        id: parse_id(&id)?,
        program_id: ProgramId(Digest::from_str(&program_id).map_err(|_| corrupt("program_id"))?),
        program_name: r.get("program_name"),
        abi: Abi::from_str(&abi).map_err(|_| corrupt("abi"))?,
        backend: r.get("backend"),
        proof_kind: r.get("proof_kind"),
        input_digest: Digest::from_str(&input_digest).map_err(|_| corrupt("input_digest"))?,
        input_len: u(r.get("input_len")),
        limits: TaskLimits {
            max_cycles: u(r.get("max_cycles")),
            max_guest_memory_bytes: u(r.get("max_guest_memory_bytes")),
            timeout_ms: u(r.get("timeout_ms")),
            memory_limit_bytes: u(r.get("memory_limit_bytes")),
            max_attempts: u32::try_from(r.get::<i64, _>("max_attempts"))
                .map_err(|_| corrupt("max_attempts"))?,
            timeout_from_rate: r.get::<i64, _>("timeout_from_rate") != 0,
        },
        priority: i32::try_from(r.get::<i64, _>("priority")).map_err(|_| corrupt("priority"))?,
        deadline_ms: r.get("deadline_ms"),
        idempotency_key: r.get("idempotency_key"),
        state: parse_state(r.get("state"))?,
        cause: cause
            .map(|c| Cause::from_str(&c).map_err(StoreError::Corrupt))
            .transpose()?,
        detail: r.get("detail"),
        attempts: u32::try_from(r.get::<i64, _>("attempts")).map_err(|_| corrupt("attempts"))?,
        failures: u32::try_from(r.get::<i64, _>("failures")).map_err(|_| corrupt("failures"))?,
        lease_losses: u32::try_from(r.get::<i64, _>("lease_losses")).map_err(|_| corrupt("lease_losses"))?,
        lease_owner: r.get("lease_owner"),
        lease_expires_ms: r.get("lease_expires_ms"),
        public_output: r.get("public_output"),
        cycles: r.get::<Option<i64>, _>("cycles").map(u),
        created_ms: r.get("created_ms"),
        updated_ms: r.get("updated_ms"),
        finished_ms: r.get("finished_ms"),
        parent_id: r
            .get::<Option<String>, _>("parent_id")
            .map(|p| parse_id(&p))
            .transpose()?,
        part: match (
            r.get::<Option<i64>, _>("part_lo"),
            r.get::<Option<i64>, _>("part_hi"),
        ) {
            (Some(lo), Some(hi)) => Some((
                u32::try_from(lo).map_err(|_| corrupt("part_lo"))?,
                u32::try_from(hi).map_err(|_| corrupt("part_hi"))?,
            )),
            _ => None,
        },
        split_segments: r
            .get::<Option<i64>, _>("split_segments")
            .map(|n| u32::try_from(n).map_err(|_| corrupt("split_segments")))
            .transpose()?,
    })
}

pub(crate) const ATTEMPT_COLUMNS: &str =
    "attempt, owner, started_ms, ended_ms, outcome, detail, stderr_tail, phase";

pub(crate) fn attempt_from_row<'r, R>(r: &'r R) -> Result<AttemptRecord, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(AttemptRecord {
        attempt: u32::try_from(r.get::<i64, _>("attempt"))
            .map_err(|_| StoreError::Corrupt("bad attempt number".into()))?,
        owner: r.get("owner"),
        started_ms: r.get("started_ms"),
        ended_ms: r.get("ended_ms"),
        outcome: r.get("outcome"),
        detail: r.get("detail"),
        stderr_tail: r.get("stderr_tail"),
        phase: r.get("phase"),
    })
}

/// "quarantined after N attempts: #1 cause, #2 cause, ..." from rows of
/// (attempt, outcome), for the detail of a quarantined task.
pub(crate) fn attempt_summary<'r, R>(rows: &'r [R]) -> String
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let parts: Vec<String> = rows
        .iter()
        .map(|r| {
            let n: i64 = r.get("attempt");
            let o: Option<String> = r.get("outcome");
            format!("#{n} {}", o.unwrap_or_else(|| "unfinished".into()))
        })
        .collect();
    format!("quarantined after {} attempts: {}", parts.len(), parts.join(", "))
}

/// Task counts per state (every state listed, zero when absent) from rows
/// of (state, n).
pub(crate) fn counts_from_rows<'r, R>(rows: &'r [R]) -> Result<Vec<(TaskState, u64)>, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut counts: Vec<(TaskState, u64)> = TaskState::ALL.iter().map(|&s| (s, 0)).collect();
    for r in rows {
        let state = parse_state(r.get("state"))?;
        let n: i64 = r.get("n");
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == state) {
            slot.1 = u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(counts)
}

/// Why a result or failure report was not applied, from the task's state now.
pub(crate) fn not_held_reason(state: Option<TaskState>) -> String {
    match state {
        None => "no such task".to_owned(),
        Some(TaskState::Leased) => "the lease is no longer held by this attempt".to_owned(),
        Some(state) => format!("the task is already {state}"),
    }
}

/// The tasks of a row stream, newest first, until their variable-size fields
/// pass `max_bytes` (at least one task): a list is bounded by bytes as well
/// as rows, so no page of large names or outputs takes the node's memory.
pub(crate) async fn tasks_up_to<'r, S, R>(
    mut rows: S,
    max_bytes: usize,
) -> Result<Vec<TaskRecord>, StoreError>
where
    S: futures_core::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    R: Row + 'r,
    &'static str: ColumnIndex<R>,
    for<'a> String: Decode<'a, R::Database> + Type<R::Database>,
    for<'a> i64: Decode<'a, R::Database> + Type<R::Database>,
    for<'a> Vec<u8>: Decode<'a, R::Database> + Type<R::Database>,
{
    let mut tasks = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
        let task = task_from_row(&row)?;
        bytes += task.variable_bytes();
        tasks.push(task);
        if bytes >= max_bytes {
            break;
        }
    }
    Ok(tasks)
}

/// The condition, on a task row named `tasks`, that a task it depends on
/// has not succeeded (yet): claims skip such tasks.
pub(crate) const BLOCKED_BY_DEPENDENCY: &str = "EXISTS (SELECT 1 FROM task_dependencies d \
     JOIN tasks p ON p.id = d.depends_on WHERE d.task_id = tasks.id AND p.state <> 'succeeded')";

/// Fails every queued task that depends on a task that ended without a
/// proof, naming the first such dependency; `now` is the placeholder of the
/// time (`?1` for SQLite, `$1` for PostgreSQL). Run until it changes no row
/// (an aggregate of aggregates fails level by level).
pub(crate) fn fail_dependents_sql(now: &str) -> String {
    let failed_dependency = "FROM task_dependencies d JOIN tasks p ON p.id = d.depends_on \
         WHERE d.task_id = tasks.id AND p.state IN ('failed', 'cancelled', 'quarantined')";
    format!(
        "UPDATE tasks SET state = 'failed', cause = 'dependency_failed', \
            detail = (SELECT 'task ' || p.id || ' (dependency ' || d.ordinal || ') ended ' || p.state \
                      || COALESCE(' (' || p.cause || ')', '') || ', so its proof will never exist' \
                      {failed_dependency} ORDER BY d.ordinal LIMIT 1), \
            finished_ms = {now}, updated_ms = {now} \
         WHERE state = 'queued' AND EXISTS (SELECT 1 {failed_dependency})"
    )
}

/// The proofs an aggregate's input is assembled from, in order.
pub(crate) const DEPENDENCY_PROOFS: &str = "SELECT r.envelope AS envelope FROM task_dependencies d \
     JOIN results r ON r.task_id = d.depends_on WHERE d.task_id = {id} ORDER BY d.ordinal";

/// An aggregate's input from its dependencies' proofs; `count` is how many
/// dependencies it has (a missing proof is a damaged database).
pub(crate) fn assemble_input(id: &str, count: usize, proofs: Vec<Vec<u8>>) -> Result<Vec<u8>, StoreError> {
    if proofs.len() != count {
        return Err(StoreError::Corrupt(format!(
            "task {id} depends on {count} succeeded tasks but {} of their proofs are stored",
            proofs.len()
        )));
    }
    provernode_core::aggregate::AggregateInput::encode_raw(&proofs)
        .map_err(|e| StoreError::Corrupt(format!("task {id}: its input cannot be assembled: {e}")))
}

/// The plan an envelope reports instead of a proof (issue 22), if it is a
/// plan envelope; agents and brokers verified it before it gets here.
pub(crate) fn split_plan_of(
    envelope: &[u8],
) -> Result<Option<provernode_core::split::SplitPlan>, StoreError> {
    let Ok(decoded) = provernode_core::ProofEnvelope::decode(envelope) else {
        return Ok(None);
    };
    if decoded.proof_kind != provernode_core::split::PLAN_KIND {
        return Ok(None);
    }
    provernode_core::split::SplitPlan::decode(&decoded.public_output)
        .map(Some)
        .map_err(|e| StoreError::Refused(format!("the reported split plan is refused: {e}")))
}
