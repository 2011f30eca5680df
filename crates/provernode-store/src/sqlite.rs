//! The embedded store: SQLite in WAL mode through sqlx.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use provernode_core::{sha256, TaskState};

use crate::rows::{
    attempt_from_row, attempt_summary, counts_from_rows, not_held_reason, parse_id, parse_state,
    task_from_row, to_i64, ATTEMPT_COLUMNS, TASK_COLUMNS,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use uuid::Uuid;

use crate::{
    AttemptFailure, AttemptRecord, CancelOutcome, ClaimRequest, Completion, FailureOutcome, Lease, LeaseRef,
    LeaseStatus, ListFilter, NewTask, Store, StoreError, Submitted, SweepReport, TaskId, TaskRecord,
};

/// How hard SQLite works to keep a commit on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synchronous {
    /// Survives power loss: fsync on every commit (the default).
    Full,
    /// Survives any process crash; the last commits may be lost on power loss.
    Normal,
}

#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    pub max_connections: u32,
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            max_connections: 4,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    clock: Clock,
}

pub(crate) fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub async fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore {
            pool,
            clock: Arc::new(system_now_ms),
        })
    }

    /// Replaces the clock (tests move time forward without sleeping).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> SqliteStore {
        self.clock = Arc::new(clock);
        self
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn task_in<'e, E>(executor: E, id: TaskId) -> Result<Option<TaskRecord>, StoreError>
    where
        E: sqlx::Executor<'e, Database = Sqlite>,
    {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(executor)
            .await?;
        row.map(|r| task_from_row(&r)).transpose()
    }

    /// Sums up every attempt's outcome, for the detail of a quarantined task.
    async fn attempt_summary(tx: &mut sqlx::Transaction<'_, Sqlite>, id: &str) -> Result<String, StoreError> {
        let rows = sqlx::query("SELECT attempt, outcome FROM attempts WHERE task_id = ? ORDER BY attempt")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
        Ok(attempt_summary(&rows))
    }

    /// Requeues or quarantines leased tasks matching `condition`, closing their
    /// open attempt as `lease_lost`. Runs inside `tx`.
    async fn lose_leases(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        now: i64,
        condition: &str,
        bind: Option<String>,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE tasks SET \
                state = CASE WHEN attempts >= max_attempts THEN 'quarantined' ELSE 'queued' END, \
                cause = CASE WHEN attempts >= max_attempts THEN 'lease_lost' ELSE NULL END, \
                finished_ms = CASE WHEN attempts >= max_attempts THEN ?1 ELSE NULL END, \
                lease_token = NULL, lease_owner = NULL, lease_expires_ms = NULL, updated_ms = ?1 \
             WHERE state = 'leased' AND {condition} \
             RETURNING id, attempts, state"
        );
        let mut q = sqlx::query(&sql).bind(now);
        if let Some(b) = bind {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&mut **tx).await?;
        for r in rows {
            let id: String = r.get("id");
            let attempt: i64 = r.get("attempts");
            let state: String = r.get("state");
            sqlx::query(
                "UPDATE attempts SET ended_ms = ?, outcome = 'lease_lost', \
                 detail = 'the lease expired or its holder died before reporting' \
                 WHERE task_id = ? AND attempt = ? AND ended_ms IS NULL",
            )
            .bind(now)
            .bind(&id)
            .bind(attempt)
            .execute(&mut **tx)
            .await?;
            let task_id = parse_id(&id)?;
            if state == "quarantined" {
                let summary = Self::attempt_summary(tx, &id).await?;
                sqlx::query("UPDATE tasks SET detail = ? WHERE id = ?")
                    .bind(summary)
                    .bind(&id)
                    .execute(&mut **tx)
                    .await?;
                report.quarantined.push(task_id);
            } else {
                report.requeued.push(task_id);
            }
        }
        Ok(())
    }

    async fn current_state(&self, id: TaskId) -> Result<Option<TaskState>, StoreError> {
        let row = sqlx::query("SELECT state FROM tasks WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| parse_state(r.get("state"))).transpose()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn submit(&self, task: NewTask) -> Result<Submitted, StoreError> {
        let now = self.now();
        let id = Uuid::now_v7();
        let input_digest = sha256(&task.input);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO programs (id, name, abi, elf, created_ms) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(task.program_id.to_string())
        .bind(&task.program_name)
        .bind(task.abi.name())
        .bind(&task.elf)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO tasks (id, program_id, program_name, abi, backend, proof_kind, input, input_digest, \
                max_cycles, max_guest_memory_bytes, timeout_ms, memory_limit_bytes, max_attempts, priority, \
                deadline_ms, idempotency_key, state, attempts, created_ms, updated_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(task.program_id.to_string())
        .bind(&task.program_name)
        .bind(task.abi.name())
        .bind(&task.backend)
        .bind(&task.proof_kind)
        .bind(&task.input)
        .bind(input_digest.to_string())
        .bind(to_i64(task.limits.max_cycles, "max_cycles")?)
        .bind(to_i64(task.limits.max_guest_memory_bytes, "max_guest_memory_bytes")?)
        .bind(to_i64(task.limits.timeout_ms, "timeout_ms")?)
        .bind(to_i64(task.limits.memory_limit_bytes, "memory_limit_bytes")?)
        .bind(i64::from(task.limits.max_attempts))
        .bind(i64::from(task.priority))
        .bind(task.deadline_ms)
        .bind(&task.idempotency_key)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            tx.commit().await?;
            return Ok(Submitted {
                id,
                deduplicated: false,
            });
        }
        // The idempotency key was seen before: same request, same task.
        let key = task.idempotency_key.unwrap_or_default();
        let row =
            sqlx::query("SELECT id, program_id, input_digest, backend FROM tasks WHERE idempotency_key = ?")
                .bind(&key)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        let existing = parse_id(&row.get::<String, _>("id"))?;
        let same = row.get::<String, _>("program_id") == task.program_id.to_string()
            && row.get::<String, _>("input_digest") == input_digest.to_string()
            && row.get::<String, _>("backend") == task.backend;
        if !same {
            return Err(StoreError::IdempotencyConflict { key, existing });
        }
        Ok(Submitted {
            id: existing,
            deduplicated: true,
        })
    }

    async fn task(&self, id: TaskId) -> Result<Option<TaskRecord>, StoreError> {
        Self::task_in(&self.pool, id).await
    }

    async fn attempts(&self, id: TaskId) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE task_id = ? ORDER BY attempt"
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1"));
        if let Some(state) = filter.state {
            q.push(" AND state = ").push_bind(state.as_str());
        }
        if let Some(before) = filter.before {
            q.push(" AND id < ").push_bind(before.to_string());
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(filter.limit.clamp(1, 1000)));
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn proof(&self, id: TaskId) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT envelope FROM results WHERE task_id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("envelope")))
    }

    async fn cancel(&self, id: TaskId, detail: &str) -> Result<CancelOutcome, StoreError> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE tasks SET state = 'cancelled', cause = 'cancelled', detail = ?, lease_token = NULL, \
                lease_owner = NULL, lease_expires_ms = NULL, finished_ms = ?, updated_ms = ? \
             WHERE id = ? AND state IN ('queued', 'leased') RETURNING attempts",
        )
        .bind(detail)
        .bind(now)
        .bind(now)
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_some() {
            sqlx::query(
                "UPDATE attempts SET ended_ms = ?, outcome = 'cancelled', detail = ? \
                 WHERE task_id = ? AND ended_ms IS NULL",
            )
            .bind(now)
            .bind(detail)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(CancelOutcome::Cancelled);
        }
        tx.commit().await?;
        Ok(match self.current_state(id).await? {
            Some(state) => CancelOutcome::AlreadyTerminal(state),
            None => CancelOutcome::NotFound,
        })
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, StoreError> {
        if request.backends.is_empty() {
            return Ok(None);
        }
        let now = self.now();
        let token = Uuid::new_v4().to_string();
        let expires = now.saturating_add(to_i64(request.lease_ttl_ms, "lease_ttl_ms")?);
        let mut tx = self.pool.begin().await?;
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE tasks SET state = 'leased', lease_token = ");
        q.push_bind(&token)
            .push(", lease_owner = ")
            .push_bind(&request.owner)
            .push(", lease_expires_ms = ")
            .push_bind(expires)
            .push(", attempts = attempts + 1, updated_ms = ")
            .push_bind(now)
            .push(
                " WHERE state = 'queued' AND id = (SELECT id FROM tasks WHERE state = 'queued' \
                 AND (deadline_ms IS NULL OR deadline_ms > ",
            )
            .push_bind(now)
            .push(") AND backend IN (");
        let mut sep = q.separated(", ");
        for b in &request.backends {
            sep.push_bind(b);
        }
        q.push(")");
        if let Some(max) = request.max_memory_bytes {
            q.push(" AND memory_limit_bytes <= ")
                .push_bind(to_i64(max, "max_memory_bytes")?);
        }
        q.push(" ORDER BY priority DESC, created_ms, id LIMIT 1) RETURNING id, attempts");
        let Some(row) = q.build().fetch_optional(&mut *tx).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let id: String = row.get("id");
        let attempt: i64 = row.get("attempts");
        sqlx::query(
            "INSERT INTO attempts (task_id, attempt, owner, lease_token, started_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(attempt)
        .bind(&request.owner)
        .bind(&token)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let task_id = parse_id(&id)?;
        let task = Self::task_in(&mut *tx, task_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("claimed task {id} vanished")))?;
        let blobs = sqlx::query(
            "SELECT t.input AS input, p.elf AS elf FROM tasks t JOIN programs p ON p.id = t.program_id WHERE t.id = ?",
        )
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Lease {
            task,
            elf: blobs.get("elf"),
            input: blobs.get("input"),
            token,
            attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
            expires_ms: expires,
        }))
    }

    async fn heartbeat(&self, lease: &LeaseRef, ttl_ms: u64) -> Result<LeaseStatus, StoreError> {
        let now = self.now();
        let expires = now.saturating_add(to_i64(ttl_ms, "lease_ttl_ms")?);
        let done = sqlx::query(
            "UPDATE tasks SET lease_expires_ms = ?, updated_ms = ? \
             WHERE id = ? AND lease_token = ? AND state = 'leased' AND lease_expires_ms >= ?",
        )
        .bind(expires)
        .bind(now)
        .bind(lease.task_id.to_string())
        .bind(&lease.token)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(LeaseStatus::Live { expires_ms: expires });
        }
        let state = self.current_state(lease.task_id).await?;
        Ok(LeaseStatus::Gone {
            state: state.unwrap_or(TaskState::Cancelled),
        })
    }

    async fn complete(
        &self,
        lease: &LeaseRef,
        envelope: &[u8],
        public_output: &[u8],
        cycles: u64,
    ) -> Result<Completion, StoreError> {
        let now = self.now();
        let id = lease.task_id.to_string();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tasks SET state = 'succeeded', cause = NULL, detail = NULL, lease_token = NULL, \
                lease_owner = NULL, lease_expires_ms = NULL, public_output = ?, cycles = ?, \
                finished_ms = ?, updated_ms = ? \
             WHERE id = ? AND lease_token = ? AND state = 'leased' AND lease_expires_ms >= ?",
        )
        .bind(public_output)
        .bind(to_i64(cycles, "cycles")?)
        .bind(now)
        .bind(now)
        .bind(&id)
        .bind(&lease.token)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.commit().await?;
            let reason = not_held_reason(self.current_state(lease.task_id).await?);
            return Ok(Completion::Ignored { reason });
        }
        sqlx::query("INSERT INTO results (task_id, envelope, created_ms) VALUES (?, ?, ?)")
            .bind(&id)
            .bind(envelope)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE attempts SET ended_ms = ?, outcome = 'succeeded' WHERE task_id = ? AND lease_token = ?",
        )
        .bind(now)
        .bind(&id)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Completion::Accepted)
    }

    async fn fail(&self, lease: &LeaseRef, failure: &AttemptFailure) -> Result<FailureOutcome, StoreError> {
        let now = self.now();
        let id = lease.task_id.to_string();
        let cause = failure.cause.to_string();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE tasks SET \
                state = CASE WHEN ?1 AND attempts < max_attempts THEN 'queued' \
                             WHEN ?1 THEN 'quarantined' ELSE 'failed' END, \
                cause = CASE WHEN ?1 AND attempts < max_attempts THEN NULL ELSE ?2 END, \
                detail = CASE WHEN ?1 AND attempts < max_attempts THEN NULL ELSE ?3 END, \
                finished_ms = CASE WHEN ?1 AND attempts < max_attempts THEN NULL ELSE ?4 END, \
                lease_token = NULL, lease_owner = NULL, lease_expires_ms = NULL, updated_ms = ?4 \
             WHERE id = ?5 AND lease_token = ?6 AND state = 'leased' \
             RETURNING state",
        )
        .bind(failure.retryable)
        .bind(&cause)
        .bind(&failure.detail)
        .bind(now)
        .bind(&id)
        .bind(&lease.token)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            let reason = not_held_reason(self.current_state(lease.task_id).await?);
            return Ok(FailureOutcome::Ignored { reason });
        };
        sqlx::query(
            "UPDATE attempts SET ended_ms = ?, outcome = ?, detail = ?, stderr_tail = ? \
             WHERE task_id = ? AND lease_token = ? AND ended_ms IS NULL",
        )
        .bind(now)
        .bind(&cause)
        .bind(&failure.detail)
        .bind(&failure.stderr_tail)
        .bind(&id)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?;
        let state = parse_state(row.get("state"))?;
        let outcome = match state {
            TaskState::Queued => FailureOutcome::Requeued,
            TaskState::Quarantined => {
                let summary = Self::attempt_summary(&mut tx, &id).await?;
                sqlx::query("UPDATE tasks SET detail = ? WHERE id = ?")
                    .bind(format!("{summary}; last: {}", failure.detail))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                FailureOutcome::Quarantined(failure.cause)
            }
            _ => FailureOutcome::Failed(failure.cause),
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn sweep(&self) -> Result<SweepReport, StoreError> {
        let now = self.now();
        let mut report = SweepReport::default();
        let mut tx = self.pool.begin().await?;
        // Deadlines first: a task past its deadline ends, whatever its lease.
        let rows = sqlx::query(
            "UPDATE tasks SET state = 'failed', cause = 'deadline_passed', \
                detail = 'the deadline passed before the task finished', lease_token = NULL, \
                lease_owner = NULL, lease_expires_ms = NULL, finished_ms = ?1, updated_ms = ?1 \
             WHERE state IN ('queued', 'leased') AND deadline_ms IS NOT NULL AND deadline_ms <= ?1 \
             RETURNING id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for r in rows {
            let id: String = r.get("id");
            sqlx::query(
                "UPDATE attempts SET ended_ms = ?, outcome = 'deadline_passed' WHERE task_id = ? AND ended_ms IS NULL",
            )
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            report.deadline_passed.push(parse_id(&id)?);
        }
        Self::lose_leases(&mut tx, now, "lease_expires_ms < ?1", None, &mut report).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn expire_leases(&self, owner_prefix: Option<&str>) -> Result<SweepReport, StoreError> {
        let now = self.now();
        let mut report = SweepReport::default();
        let mut tx = self.pool.begin().await?;
        match owner_prefix {
            Some(prefix) => {
                let pattern = format!(
                    "{}%",
                    prefix
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                Self::lose_leases(
                    &mut tx,
                    now,
                    "lease_owner LIKE ?2 ESCAPE '\\'",
                    Some(pattern),
                    &mut report,
                )
                .await?
            }
            None => Self::lose_leases(&mut tx, now, "1 = 1", None, &mut report).await?,
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn counts(&self) -> Result<Vec<(TaskState, u64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        counts_from_rows(&rows)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
