//! The cluster store: PostgreSQL through sqlx. The same guarded statements as
//! the SQLite store; claims take the best queued task with
//! `FOR UPDATE SKIP LOCKED`, so any number of brokers hand out work
//! concurrently without ever giving one task to two claimers. Sweeps are
//! safe from several brokers at once: each expired lease is ended by
//! exactly one guarded update.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use provernode_core::{sha256, TaskState};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row};
use uuid::Uuid;

use crate::health::{discard_if_in_transaction, Health};
use crate::rows::{
    assemble_input, attempt_from_row, attempt_summary, counts_from_rows, fail_dependents_sql,
    not_held_reason, parse_id, parse_state, same_request, task_from_row, tasks_up_to, to_i64,
    ATTEMPT_COLUMNS, BLOCKED_BY_DEPENDENCY, DEPENDENCY_PROOFS, REQUEST_COLUMNS, TASK_COLUMNS,
};
use crate::{
    AttemptFailure, AttemptRecord, CancelOutcome, ClaimRequest, Completion, FailureOutcome, Lease, LeaseRef,
    LeaseStatus, ListFilter, NewTask, PartsFilter, ReleaseOutcome, Store, StoreError, Submitted, SweepReport,
    TaskId, TaskRecord,
};

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    clock: Clock,
    health: Arc<Health>,
}

type Tx<'a> = sqlx::Transaction<'a, Postgres>;

/// Where a PostgreSQL database stands against this version's migrations
/// (`provernode doctor broker`).
#[derive(Clone, Debug)]
pub struct MigrationStatus {
    /// Migrations of this version already applied.
    pub applied: usize,
    /// Migrations of this version not yet applied (a broker applies them at start).
    pub pending: Vec<i64>,
    /// Applied migrations this version does not know: a newer one wrote the database.
    pub unknown: Vec<i64>,
    /// The server's clock, in milliseconds since the epoch.
    pub server_time_ms: i64,
}

/// Connects to `url` without changing anything and compares its applied
/// migrations with this version's.
pub async fn migration_status(url: &str) -> Result<MigrationStatus, StoreError> {
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    let known: Vec<i64> = sqlx::migrate!("./migrations/postgres")
        .iter()
        .map(|m| m.version)
        .collect();
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&pool)
        .await?;
    let applied: Vec<i64> = if exists {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&pool)
            .await?
    } else {
        Vec::new()
    };
    let server_time_ms: i64 =
        sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
            .fetch_one(&pool)
            .await?;
    pool.close().await;
    Ok(MigrationStatus {
        applied: known.iter().filter(|v| applied.contains(v)).count(),
        pending: known.iter().copied().filter(|v| !applied.contains(v)).collect(),
        unknown: applied.iter().copied().filter(|v| !known.contains(v)).collect(),
        server_time_ms,
    })
}

impl PgStore {
    /// Connects to `url` and applies migrations (several brokers may do this
    /// at once: sqlx serialises them with an advisory lock).
    pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        // Named without user or password: this goes into messages.
        let location = format!(
            "PostgreSQL at {}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .after_release(discard_if_in_transaction::<Postgres>)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        sqlx::query("INSERT INTO meta (key, value) VALUES ('database_id', $1) ON CONFLICT (key) DO NOTHING")
            .bind(Uuid::now_v7().to_string())
            .execute(&pool)
            .await?;
        Ok(PgStore {
            pool,
            clock: Arc::new(crate::sqlite::system_now_ms),
            health: Arc::new(Health::new(location)),
        })
    }

    /// Replaces the clock (tests move time forward without sleeping).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> PgStore {
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
        E: sqlx::Executor<'e, Database = Postgres>,
    {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(executor)
            .await?;
        row.map(|r| task_from_row(&r)).transpose()
    }

    async fn current_state(&self, id: TaskId) -> Result<Option<TaskState>, StoreError> {
        let row = sqlx::query("SELECT state FROM tasks WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| parse_state(r.get("state"))).transpose()
    }

    async fn attempt_summary(tx: &mut Tx<'_>, id: &str) -> Result<String, StoreError> {
        let rows = sqlx::query("SELECT attempt, outcome FROM attempts WHERE task_id = $1 ORDER BY attempt")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
        Ok(attempt_summary(&rows))
    }

    async fn lose_leases(
        tx: &mut Tx<'_>,
        now: i64,
        condition: &str,
        bind: Option<String>,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        // Lost leases count apart from the task's own failures, with a
        // larger bound (`lease_loss_bound`: GREATEST(10, 3 * max_attempts)).
        let sql = format!(
            "UPDATE tasks SET \
                lease_losses = lease_losses + 1, \
                state = CASE WHEN lease_losses + 1 >= GREATEST(10, 3 * max_attempts) THEN 'quarantined' ELSE 'queued' END, \
                cause = CASE WHEN lease_losses + 1 >= GREATEST(10, 3 * max_attempts) THEN 'lease_lost' ELSE NULL END, \
                finished_ms = CASE WHEN lease_losses + 1 >= GREATEST(10, 3 * max_attempts) THEN $1 ELSE NULL END, \
                lease_token = NULL, lease_owner = NULL, lease_expires_ms = NULL, updated_ms = $1 \
             WHERE state = 'leased' AND lease_token IS NOT NULL AND {condition} \
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
                "UPDATE attempts SET ended_ms = $1, outcome = 'lease_lost', \
                 detail = 'the lease expired or its holder died before reporting' \
                 WHERE task_id = $2 AND attempt = $3 AND ended_ms IS NULL",
            )
            .bind(now)
            .bind(&id)
            .bind(attempt)
            .execute(&mut **tx)
            .await?;
            let task_id = parse_id(&id)?;
            if state == "quarantined" {
                let summary = Self::attempt_summary(tx, &id).await?;
                sqlx::query("UPDATE tasks SET detail = $1 WHERE id = $2")
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
}

impl PgStore {
    /// Fails the queued tasks whose dependencies can no longer succeed,
    /// level by level. Runs inside `tx`, after anything that ends tasks.
    async fn fail_dependents(tx: &mut sqlx::Transaction<'_, Postgres>, now: i64) -> Result<(), StoreError> {
        let sql = fail_dependents_sql("$1");
        loop {
            let dependents = sqlx::query(&sql)
                .bind(now)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            let families = Self::end_split_families(tx, now).await?;
            if dependents + families == 0 {
                return Ok(());
            }
        }
    }

    /// Records the dependencies of the new task `id` (checked to exist).
    async fn insert_dependencies(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        id: &str,
        depends_on: &[TaskId],
    ) -> Result<(), StoreError> {
        if depends_on.len() > provernode_core::aggregate::MAX_CLAIMS {
            return Err(StoreError::Refused(format!(
                "a task may depend on at most {} tasks, not {}",
                provernode_core::aggregate::MAX_CLAIMS,
                depends_on.len()
            )));
        }
        for (ordinal, dependency) in depends_on.iter().enumerate() {
            let exists = sqlx::query("SELECT 1 FROM tasks WHERE id = $1")
                .bind(dependency.to_string())
                .fetch_optional(&mut **tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::Refused(format!(
                    "dependency {ordinal}: there is no task {dependency}"
                )));
            }
            sqlx::query("INSERT INTO task_dependencies (task_id, ordinal, depends_on) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(ordinal as i32)
                .bind(dependency.to_string())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// At the first claim of a task with dependencies (all succeeded, or it
    /// could not be claimed), stores its input assembled from their proofs.
    async fn assemble_dependent_input(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        id: &str,
    ) -> Result<(), StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM task_dependencies WHERE task_id = $1) AS n, \
                    LENGTH(input)::BIGINT AS input_len FROM tasks WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        let count: i64 = row.get("n");
        let input_len: i64 = row.get("input_len");
        if count == 0 || input_len > 0 {
            return Ok(());
        }
        let proofs: Vec<Vec<u8>> = sqlx::query_scalar(&DEPENDENCY_PROOFS.replace("{id}", "$1"))
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
        let input = assemble_input(id, count as usize, proofs)?;
        sqlx::query("UPDATE tasks SET input = $1, input_digest = $2 WHERE id = $3")
            .bind(&input)
            .bind(sha256(&input).to_string())
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn do_submit(&self, task: NewTask) -> Result<Submitted, StoreError> {
        let now = self.now();
        let id = Uuid::now_v7();
        let input_digest = sha256(&task.input);
        let mut tx = self.pool.begin().await?;
        // Without its ELF the task names a stored program: the task's
        // foreign key checks it as the task is inserted.
        if !task.elf.is_empty() {
            sqlx::query(
                "INSERT INTO programs (id, name, abi, elf, created_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(task.program_id.to_string())
            .bind(&task.program_name)
            .bind(task.abi.name())
            .bind(&task.elf)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO tasks (id, program_id, program_name, abi, backend, proof_kind, input, input_digest, \
                max_cycles, max_guest_memory_bytes, timeout_ms, memory_limit_bytes, max_attempts, priority, \
                deadline_ms, idempotency_key, state, attempts, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 'queued', 0, $17, $17) \
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
        .execute(&mut *tx)
        .await
        .map_err(|e| crate::programs::unknown_program_or(e, &task.program_id, task.elf.is_empty()))?;
        if inserted.rows_affected() == 1 {
            if task.limits.timeout_from_rate {
                sqlx::query("UPDATE tasks SET timeout_from_rate = 1 WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            if !task.depends_on.is_empty() {
                Self::insert_dependencies(&mut tx, &id.to_string(), &task.depends_on).await?;
                Self::fail_dependents(&mut tx, now).await?;
            }
            tx.commit().await?;
            return Ok(Submitted {
                id,
                deduplicated: false,
            });
        }
        let key = task.idempotency_key.clone().unwrap_or_default();
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM tasks WHERE idempotency_key = $1"
        ))
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
        let stored_dependencies: Vec<String> = sqlx::query_scalar(
            "SELECT depends_on FROM task_dependencies WHERE task_id = $1 ORDER BY ordinal",
        )
        .bind(row.get::<String, _>("id"))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let stored_dependencies = stored_dependencies
            .iter()
            .map(|d| parse_id(d))
            .collect::<Result<Vec<_>, _>>()?;
        let existing = parse_id(&row.get::<String, _>("id"))?;
        if !same_request(&row, &task, &input_digest, &stored_dependencies) {
            return Err(StoreError::IdempotencyConflict { key, existing });
        }
        Ok(Submitted {
            id: existing,
            deduplicated: true,
        })
    }

    async fn do_task(&self, id: TaskId) -> Result<Option<TaskRecord>, StoreError> {
        Self::task_in(&self.pool, id).await
    }

    async fn do_attempts(&self, id: TaskId) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE task_id = $1 ORDER BY attempt"
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn do_list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, StoreError> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks \
             WHERE ($1::TEXT IS NULL OR state = $1) AND ($2::TEXT IS NULL OR id < $2) \
             AND ($4::TEXT IS NULL OR cause = $4) AND ($5::TEXT IS NULL OR backend = $5) \
             AND (NOT $6 OR parent_id IS NULL) AND ($7::TEXT IS NULL OR parent_id = $7) \
             ORDER BY id DESC LIMIT $3"
        );
        let (no_parts, parent) = match filter.parts {
            PartsFilter::Include => (false, None),
            PartsFilter::Exclude => (true, None),
            PartsFilter::Of(parent) => (false, Some(parent.to_string())),
        };
        let query = sqlx::query(&sql)
            .bind(filter.state.map(|s| s.as_str()))
            .bind(filter.before.map(|b| b.to_string()))
            .bind(i64::from(filter.limit.clamp(1, 1000)))
            .bind(filter.reason.clone())
            .bind(filter.backend.clone())
            .bind(no_parts)
            .bind(parent);
        tasks_up_to(query.fetch(&self.pool), filter.max_bytes).await
    }

    async fn do_proof(&self, id: TaskId) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT envelope FROM results WHERE task_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("envelope")))
    }

    async fn do_cancel(&self, id: TaskId, detail: &str) -> Result<CancelOutcome, StoreError> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE tasks SET state = 'cancelled', cause = 'cancelled', detail = $1, lease_token = NULL, \
                lease_owner = NULL, lease_expires_ms = NULL, finished_ms = $2, updated_ms = $2 \
             WHERE id = $3 AND state IN ('queued', 'leased') RETURNING attempts",
        )
        .bind(detail)
        .bind(now)
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_some() {
            sqlx::query(
                "UPDATE attempts SET ended_ms = $1, outcome = 'cancelled', detail = $2 \
                 WHERE task_id = $3 AND ended_ms IS NULL",
            )
            .bind(now)
            .bind(detail)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
            Self::fail_dependents(&mut tx, now).await?;
            tx.commit().await?;
            return Ok(CancelOutcome::Cancelled);
        }
        tx.commit().await?;
        Ok(match self.current_state(id).await? {
            Some(state) => CancelOutcome::AlreadyTerminal(state),
            None => CancelOutcome::NotFound,
        })
    }

    async fn do_claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, StoreError> {
        if request.backends.is_empty() {
            return Ok(None);
        }
        let now = self.now();
        let token = Uuid::new_v4().to_string();
        let expires = now.saturating_add(to_i64(request.lease_ttl_ms, "lease_ttl_ms")?);
        let max_memory = match request.max_memory_bytes {
            Some(m) => Some(to_i64(m, "max_memory_bytes")?),
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        let claim = format!(
            "UPDATE tasks SET state = 'leased', lease_token = $1, lease_owner = $2, lease_expires_ms = $3, \
                attempts = attempts + 1, updated_ms = $4 \
             WHERE id = (SELECT id FROM tasks WHERE state = 'queued' \
                            AND (deadline_ms IS NULL OR deadline_ms > $4) \
                            AND backend = ANY($5) \
                            AND ($6::BIGINT IS NULL OR memory_limit_bytes <= $6) \
                            AND NOT {BLOCKED_BY_DEPENDENCY} \
                         ORDER BY priority DESC, created_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, attempts"
        );
        let row = sqlx::query(&claim)
            .bind(&token)
            .bind(&request.owner)
            .bind(expires)
            .bind(now)
            .bind(&request.backends)
            .bind(max_memory)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let id: String = row.get("id");
        let attempt: i64 = row.get("attempts");
        sqlx::query(
            "INSERT INTO attempts (task_id, attempt, owner, lease_token, started_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(attempt)
        .bind(&request.owner)
        .bind(&token)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Self::assemble_dependent_input(&mut tx, &id).await?;
        let task_id = parse_id(&id)?;
        let task = Self::task_in(&mut *tx, task_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("claimed task {id} vanished")))?;
        let rates = Self::rates_of(&mut *tx, &task.backend).await?;
        let blobs = sqlx::query(
            "SELECT t.input AS input, p.elf AS elf FROM tasks t JOIN programs p ON p.id = t.program_id WHERE t.id = $1",
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
            rates,
        }))
    }

    async fn do_heartbeat(&self, lease: &LeaseRef, ttl_ms: u64) -> Result<LeaseStatus, StoreError> {
        let now = self.now();
        let expires = now.saturating_add(to_i64(ttl_ms, "lease_ttl_ms")?);
        let done = sqlx::query(
            "UPDATE tasks SET lease_expires_ms = $1, updated_ms = $2 \
             WHERE id = $3 AND lease_token = $4 AND state = 'leased' AND lease_expires_ms >= $2",
        )
        .bind(expires)
        .bind(now)
        .bind(lease.task_id.to_string())
        .bind(&lease.token)
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

    async fn do_complete(
        &self,
        lease: &LeaseRef,
        envelope: &[u8],
        public_output: &[u8],
        cycles: u64,
    ) -> Result<Completion, StoreError> {
        let now = self.now();
        let id = lease.task_id.to_string();
        let plan = crate::rows::split_plan_of(envelope)?;
        let mut tx = self.pool.begin().await?;
        if let Some(plan) = plan {
            let accepted = Self::accept_plan(&mut tx, lease, &plan, now).await?;
            tx.commit().await?;
            if accepted {
                return Ok(Completion::Accepted);
            }
            let reason = not_held_reason(self.current_state(lease.task_id).await?);
            return Ok(Completion::Ignored { reason });
        }
        let done = sqlx::query(
            "UPDATE tasks SET state = 'succeeded', cause = NULL, detail = NULL, lease_token = NULL, \
                lease_owner = NULL, lease_expires_ms = NULL, public_output = $1, cycles = $2, \
                finished_ms = $3, updated_ms = $3 \
             WHERE id = $4 AND lease_token = $5 AND state = 'leased' AND lease_expires_ms >= $3 \
             RETURNING parent_id, part_lo, part_hi, backend",
        )
        .bind(public_output)
        .bind(to_i64(cycles, "cycles")?)
        .bind(now)
        .bind(&id)
        .bind(&lease.token)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(done) = done else {
            tx.commit().await?;
            let reason = not_held_reason(self.current_state(lease.task_id).await?);
            return Ok(Completion::Ignored { reason });
        };
        sqlx::query("INSERT INTO results (task_id, envelope, created_ms) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(envelope)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE attempts SET ended_ms = $1, outcome = 'succeeded' WHERE task_id = $2 AND lease_token = $3",
        )
        .bind(now)
        .bind(&id)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?;
        if let (Some(parent), Some(lo), Some(hi)) = (
            done.get::<Option<String>, _>("parent_id"),
            done.get::<Option<i64>, _>("part_lo"),
            done.get::<Option<i64>, _>("part_hi"),
        ) {
            Self::after_part(
                &mut tx,
                &id,
                &parent,
                (lo, hi),
                envelope,
                public_output,
                cycles,
                now,
            )
            .await?;
        } else {
            let backend: String = done.get("backend");
            Self::record_attempt_rate(&mut tx, lease, &backend, envelope, cycles, now).await?;
        }
        tx.commit().await?;
        Ok(Completion::Accepted)
    }

    async fn do_fail(
        &self,
        lease: &LeaseRef,
        failure: &AttemptFailure,
    ) -> Result<FailureOutcome, StoreError> {
        let now = self.now();
        let id = lease.task_id.to_string();
        let cause = failure.cause.to_string();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE tasks SET \
                failures = failures + CASE WHEN $1 THEN 1 ELSE 0 END, \
                state = CASE WHEN $1 AND failures + 1 < max_attempts THEN 'queued' \
                             WHEN $1 THEN 'quarantined' ELSE 'failed' END, \
                cause = CASE WHEN $1 AND failures + 1 < max_attempts THEN NULL ELSE $2 END, \
                detail = CASE WHEN $1 AND failures + 1 < max_attempts THEN NULL ELSE $3 END, \
                finished_ms = CASE WHEN $1 AND failures + 1 < max_attempts THEN NULL ELSE $4 END, \
                lease_token = NULL, lease_owner = NULL, lease_expires_ms = NULL, updated_ms = $4 \
             WHERE id = $5 AND lease_token = $6 AND state = 'leased' \
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
            "UPDATE attempts SET ended_ms = $1, outcome = $2, detail = $3, stderr_tail = $4 \
             WHERE task_id = $5 AND lease_token = $6 AND ended_ms IS NULL",
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
                sqlx::query("UPDATE tasks SET detail = $1 WHERE id = $2")
                    .bind(format!("{summary}; last: {}", failure.detail))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                FailureOutcome::Quarantined(failure.cause)
            }
            _ => FailureOutcome::Failed(failure.cause),
        };
        if !matches!(outcome, FailureOutcome::Requeued) {
            Self::fail_dependents(&mut tx, now).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn do_sweep(&self) -> Result<SweepReport, StoreError> {
        let now = self.now();
        let mut report = SweepReport::default();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "UPDATE tasks SET state = 'failed', cause = 'deadline_passed', \
                detail = 'the deadline passed before the task finished', lease_token = NULL, \
                lease_owner = NULL, lease_expires_ms = NULL, finished_ms = $1, updated_ms = $1 \
             WHERE state IN ('queued', 'leased') AND deadline_ms IS NOT NULL AND deadline_ms <= $1 \
             RETURNING id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for r in rows {
            let id: String = r.get("id");
            sqlx::query(
                "UPDATE attempts SET ended_ms = $1, outcome = 'deadline_passed' WHERE task_id = $2 AND ended_ms IS NULL",
            )
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            report.deadline_passed.push(parse_id(&id)?);
        }
        Self::lose_leases(&mut tx, now, "lease_expires_ms < $1", None, &mut report).await?;
        Self::fail_dependents(&mut tx, now).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn do_expire_leases(&self, owner_prefix: Option<&str>) -> Result<SweepReport, StoreError> {
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
                    "lease_owner LIKE $2 ESCAPE '\\'",
                    Some(pattern),
                    &mut report,
                )
                .await?
            }
            None => Self::lose_leases(&mut tx, now, "TRUE", None, &mut report).await?,
        }
        Self::fail_dependents(&mut tx, now).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn do_counts(&self) -> Result<Vec<(TaskState, u64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        counts_from_rows(&rows)
    }

    async fn do_dependencies(&self, id: TaskId) -> Result<Vec<(TaskId, TaskState)>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.id AS id, p.state AS state FROM task_dependencies d JOIN tasks p ON p.id = d.depends_on \
             WHERE d.task_id = $1 ORDER BY d.ordinal",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((parse_id(&r.get::<String, _>("id"))?, parse_state(r.get("state"))?)))
            .collect()
    }

    async fn do_ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT value FROM meta WHERE key = 'database_id'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(())
    }

    async fn write_probe(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('write_probe', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(self.now().to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn do_release(&self, lease: &LeaseRef, detail: &str) -> Result<ReleaseOutcome, StoreError> {
        let now = self.now();
        let id = lease.task_id.to_string();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tasks SET state = 'queued', lease_token = NULL, lease_owner = NULL, \
                lease_expires_ms = NULL, updated_ms = $1 \
             WHERE id = $2 AND lease_token = $3 AND state = 'leased'",
        )
        .bind(now)
        .bind(&id)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.commit().await?;
            let reason = not_held_reason(self.current_state(lease.task_id).await?);
            return Ok(ReleaseOutcome::Ignored { reason });
        }
        sqlx::query(
            "UPDATE attempts SET ended_ms = $1, outcome = 'released', detail = $2 \
             WHERE task_id = $3 AND lease_token = $4 AND ended_ms IS NULL",
        )
        .bind(now)
        .bind(detail)
        .bind(&id)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ReleaseOutcome::Requeued)
    }
}

crate::health::observed_store!(PgStore);
crate::split::split_glue!(PgStore, Postgres, " FOR UPDATE", crate::split::pg);
crate::diagnostics::diagnostics_glue!(PgStore, crate::split::pg);
crate::retry::retry_glue!(PgStore, crate::split::pg);
crate::rates::rates_glue!(PgStore, Postgres, crate::split::pg);
crate::programs::programs_glue!(PgStore, crate::split::pg);
