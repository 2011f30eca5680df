//! The embedded store: SQLite in WAL mode through sqlx.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use provernode_core::{sha256, TaskState};

use crate::generation::{check_files_before_open, check_identity, Generation, GENERATION_FILE};
use crate::health::{discard_if_in_transaction, Health};
use crate::rows::{
    assemble_input, attempt_from_row, attempt_summary, counts_from_rows, fail_dependents_sql,
    not_held_reason, parse_id, parse_state, same_request, task_from_row, tasks_up_to, to_i64,
    ATTEMPT_COLUMNS, BLOCKED_BY_DEPENDENCY, DEPENDENCY_PROOFS, REQUEST_COLUMNS, TASK_COLUMNS,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row, Sqlite, SqlitePool};
use uuid::Uuid;

use crate::{
    AttemptFailure, AttemptRecord, CancelOutcome, ClaimRequest, Completion, FailureOutcome, Lease, LeaseRef,
    LeaseStatus, ListFilter, NewTask, PartsFilter, ReleaseOutcome, Store, StoreError, Submitted, SweepReport,
    TaskId, TaskRecord,
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
    /// How long the integrity check at start may take (`PRAGMA
    /// quick_check`, which reads the whole file); past it the node starts
    /// with a warning instead of making the operator wait.
    pub integrity_check_limit: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            max_connections: 4,
            busy_timeout: Duration::from_secs(10),
            integrity_check_limit: Duration::from_secs(30),
        }
    }
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    clock: Clock,
    health: Arc<Health>,
    /// The record beside the database, when opened for a data directory:
    /// marked closed cleanly by [`SqliteStore::close`].
    record: Option<(PathBuf, String)>,
}

pub(crate) fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What a failed open says, with the database's path and what to do.
fn open_error(path: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::DatabaseCorrupt { detail, .. } => StoreError::DatabaseCorrupt {
            location: path.display().to_string(),
            detail: format!("{detail} (it is not a SQLite database, or its header is damaged)"),
        },
        StoreError::DiskFull { error, .. } => StoreError::DiskFull {
            location: path.display().to_string(),
            error,
        },
        other => other,
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies
    /// migrations. For tests and tools; a node opens its data directory's
    /// database with [`SqliteStore::open_in_data_dir`], which also checks it.
    pub async fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let store = Self::open_pool(path, options).await?;
        store.database_id_or_create().await?;
        Ok(store)
    }

    /// Opens a node's queue database `data_dir/file_name`, refusing one that
    /// is not the database this data directory had (see [`Generation`]) or
    /// that fails SQLite's integrity check, with the fix in the error.
    pub async fn open_in_data_dir(
        data_dir: &Path,
        file_name: &str,
        options: &SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let db = data_dir.join(file_name);
        let record = data_dir.join(GENERATION_FILE);
        let generation = Generation::read(&record)?;
        if let Some(g) = &generation {
            check_files_before_open(&db, &record, g)?;
        }
        integrity_check(&db, options).await?;
        let mut store = Self::open_pool(&db, options).await?;
        let id = match &generation {
            Some(g) => {
                let found = store.database_id().await?;
                check_identity(&db, &record, g, found.as_deref())?;
                g.database_id.clone()
            }
            None => store.database_id_or_create().await?,
        };
        Generation {
            database_id: id.clone(),
            closed_cleanly: false,
        }
        .write(&record)
        .map_err(|e| {
            StoreError::Refused(format!(
                "cannot write {}: {e}; the node records there which database belongs to this data directory",
                record.display()
            ))
        })?;
        store.record = Some((record, id));
        Ok(store)
    }

    async fn open_pool(path: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
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
            .after_release(discard_if_in_transaction::<Sqlite>)
            .connect_with(connect)
            .await
            .map_err(|e| open_error(path, e.into()))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(inner) => open_error(path, inner.into()),
                other => StoreError::Migration(other),
            })?;
        Ok(SqliteStore {
            pool,
            clock: Arc::new(system_now_ms),
            health: Arc::new(Health::new(path.display().to_string())),
            record: None,
        })
    }

    async fn database_id(&self) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT value FROM meta WHERE key = 'database_id'")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn database_id_or_create(&self) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ('database_id', ?) ON CONFLICT (key) DO NOTHING")
            .bind(Uuid::now_v7().to_string())
            .execute(&self.pool)
            .await?;
        self.database_id()
            .await?
            .ok_or_else(|| StoreError::Corrupt("the meta table lost its database_id".into()))
    }

    /// Replaces the clock (tests move time forward without sleeping).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> SqliteStore {
        self.clock = Arc::new(clock);
        self
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Closes the database. A node's record is marked closed cleanly
    /// first (every writer has stopped by now); if that fails, the database
    /// is left as a crash would leave it, write-ahead log included, so the
    /// next start does not mistake a checkpointed log for a lost one.
    pub async fn close(&self) {
        if let Some((record, id)) = &self.record {
            let marked = Generation {
                database_id: id.clone(),
                closed_cleanly: true,
            }
            .write(record);
            if let Err(e) = marked {
                tracing::error!(record = %record.display(), error = %e, "cannot mark the queue database closed; leaving it as a crash would");
                return;
            }
        }
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
        // Lost leases count apart from the task's own failures, with a
        // larger bound (`lease_loss_bound`: MAX(10, 3 * max_attempts)).
        let sql = format!(
            "UPDATE tasks SET \
                lease_losses = lease_losses + 1, \
                state = CASE WHEN lease_losses + 1 >= MAX(10, 3 * max_attempts) THEN 'quarantined' ELSE 'queued' END, \
                cause = CASE WHEN lease_losses + 1 >= MAX(10, 3 * max_attempts) THEN 'lease_lost' ELSE NULL END, \
                finished_ms = CASE WHEN lease_losses + 1 >= MAX(10, 3 * max_attempts) THEN ?1 ELSE NULL END, \
                lease_token = NULL, lease_owner = NULL, lease_expires_ms = NULL, updated_ms = ?1 \
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

    /// Fails the queued tasks whose dependencies can no longer succeed,
    /// level by level. Runs inside `tx`, after anything that ends tasks.
    async fn fail_dependents(tx: &mut sqlx::Transaction<'_, Sqlite>, now: i64) -> Result<(), StoreError> {
        let sql = fail_dependents_sql("?1");
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
        tx: &mut sqlx::Transaction<'_, Sqlite>,
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
            let exists = sqlx::query("SELECT 1 FROM tasks WHERE id = ?")
                .bind(dependency.to_string())
                .fetch_optional(&mut **tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::Refused(format!(
                    "dependency {ordinal}: there is no task {dependency}"
                )));
            }
            sqlx::query("INSERT INTO task_dependencies (task_id, ordinal, depends_on) VALUES (?, ?, ?)")
                .bind(id)
                .bind(ordinal as i64)
                .bind(dependency.to_string())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// At the first claim of a task with dependencies (all succeeded, or it
    /// could not be claimed), stores its input assembled from their proofs.
    async fn assemble_dependent_input(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        id: &str,
    ) -> Result<(), StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM task_dependencies WHERE task_id = ?1) AS n, \
                    LENGTH(input) AS input_len FROM tasks WHERE id = ?1",
        )
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        let count: i64 = row.get("n");
        let input_len: i64 = row.get("input_len");
        if count == 0 || input_len > 0 {
            return Ok(());
        }
        let proofs: Vec<Vec<u8>> = sqlx::query_scalar(&DEPENDENCY_PROOFS.replace("{id}", "?"))
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
        let input = assemble_input(id, count as usize, proofs)?;
        sqlx::query("UPDATE tasks SET input = ?, input_digest = ? WHERE id = ?")
            .bind(&input)
            .bind(sha256(&input).to_string())
            .bind(id)
            .execute(&mut **tx)
            .await?;
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

impl SqliteStore {
    async fn do_submit(&self, task: NewTask) -> Result<Submitted, StoreError> {
        let now = self.now();
        let id = Uuid::now_v7();
        let input_digest = sha256(&task.input);
        let mut tx = self.pool.begin().await?;
        // Without its ELF the task names a stored program: the task's
        // foreign key checks it as the task is inserted.
        if !task.elf.is_empty() {
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
        }
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
        .await
        .map_err(|e| crate::programs::unknown_program_or(e, &task.program_id, task.elf.is_empty()))?;
        if inserted.rows_affected() == 1 {
            if task.limits.timeout_from_rate {
                sqlx::query("UPDATE tasks SET timeout_from_rate = 1 WHERE id = ?")
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
        // The idempotency key was seen before: same request, same task.
        let key = task.idempotency_key.clone().unwrap_or_default();
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM tasks WHERE idempotency_key = ?"
        ))
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
        let stored_dependencies: Vec<String> =
            sqlx::query_scalar("SELECT depends_on FROM task_dependencies WHERE task_id = ? ORDER BY ordinal")
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
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE task_id = ? ORDER BY attempt"
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn do_list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1"));
        if let Some(state) = filter.state {
            q.push(" AND state = ").push_bind(state.as_str());
        }
        if let Some(before) = filter.before {
            q.push(" AND id < ").push_bind(before.to_string());
        }
        if let Some(reason) = &filter.reason {
            q.push(" AND cause = ").push_bind(reason.clone());
        }
        if let Some(backend) = &filter.backend {
            q.push(" AND backend = ").push_bind(backend.clone());
        }
        match filter.parts {
            PartsFilter::Include => {}
            PartsFilter::Exclude => {
                q.push(" AND parent_id IS NULL");
            }
            PartsFilter::Of(parent) => {
                q.push(" AND parent_id = ").push_bind(parent.to_string());
            }
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(filter.limit.clamp(1, 1000)));
        tasks_up_to(q.build().fetch(&self.pool), filter.max_bytes).await
    }

    async fn do_proof(&self, id: TaskId) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT envelope FROM results WHERE task_id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("envelope")))
    }

    async fn do_cancel(&self, id: TaskId, detail: &str) -> Result<CancelOutcome, StoreError> {
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
            .push(") AND NOT ")
            .push(BLOCKED_BY_DEPENDENCY)
            .push(" AND backend IN (");
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
        Self::assemble_dependent_input(&mut tx, &id).await?;
        let task_id = parse_id(&id)?;
        let task = Self::task_in(&mut *tx, task_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("claimed task {id} vanished")))?;
        let rates = Self::rates_of(&mut *tx, &task.backend).await?;
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
            rates,
        }))
    }

    async fn do_heartbeat(&self, lease: &LeaseRef, ttl_ms: u64) -> Result<LeaseStatus, StoreError> {
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
                lease_owner = NULL, lease_expires_ms = NULL, public_output = ?, cycles = ?, \
                finished_ms = ?, updated_ms = ? \
             WHERE id = ? AND lease_token = ? AND state = 'leased' AND lease_expires_ms >= ? \
             RETURNING parent_id, part_lo, part_hi, backend",
        )
        .bind(public_output)
        .bind(to_i64(cycles, "cycles")?)
        .bind(now)
        .bind(now)
        .bind(&id)
        .bind(&lease.token)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(done) = done else {
            tx.commit().await?;
            let reason = not_held_reason(self.current_state(lease.task_id).await?);
            return Ok(Completion::Ignored { reason });
        };
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
        // A retryable failure is charged to the task (`failures`) and
        // requeues it while failures stay below max_attempts.
        let row = sqlx::query(
            "UPDATE tasks SET \
                failures = failures + CASE WHEN ?1 THEN 1 ELSE 0 END, \
                state = CASE WHEN ?1 AND failures + 1 < max_attempts THEN 'queued' \
                             WHEN ?1 THEN 'quarantined' ELSE 'failed' END, \
                cause = CASE WHEN ?1 AND failures + 1 < max_attempts THEN NULL ELSE ?2 END, \
                detail = CASE WHEN ?1 AND failures + 1 < max_attempts THEN NULL ELSE ?3 END, \
                finished_ms = CASE WHEN ?1 AND failures + 1 < max_attempts THEN NULL ELSE ?4 END, \
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
                    "lease_owner LIKE ?2 ESCAPE '\\'",
                    Some(pattern),
                    &mut report,
                )
                .await?
            }
            None => Self::lose_leases(&mut tx, now, "1 = 1", None, &mut report).await?,
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
             WHERE d.task_id = ? ORDER BY d.ordinal",
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

    /// Whether the disk takes writes again: 256 KiB written and deleted in
    /// one transaction. A one-row update would fit in pages the database
    /// already has and say "ready" while every submission still fails.
    async fn write_probe(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('write_probe', zeroblob(262144)) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM meta WHERE key = 'write_probe'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn do_release(&self, lease: &LeaseRef, detail: &str) -> Result<ReleaseOutcome, StoreError> {
        let now = self.now();
        let id = lease.task_id.to_string();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tasks SET state = 'queued', lease_token = NULL, lease_owner = NULL, \
                lease_expires_ms = NULL, updated_ms = ? \
             WHERE id = ? AND lease_token = ? AND state = 'leased'",
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
            "UPDATE attempts SET ended_ms = ?, outcome = 'released', detail = ? \
             WHERE task_id = ? AND lease_token = ? AND ended_ms IS NULL",
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

/// SQLite's own check of the file (`PRAGMA quick_check`: every page and
/// b-tree, not the indexes' contents), on a connection of its own, bounded
/// in time. Damage is refused with the fix; a check that runs out of time
/// is logged and the node starts.
async fn integrity_check(db: &Path, options: &SqliteOptions) -> Result<(), StoreError> {
    if std::fs::metadata(db).map(|m| m.len() == 0).unwrap_or(true) {
        return Ok(()); // nothing to check: SQLite creates it
    }
    let connect = SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .busy_timeout(options.busy_timeout);
    let check = async {
        let mut conn: SqliteConnection = connect.connect().await?;
        let rows = sqlx::query_scalar::<_, String>("PRAGMA quick_check(20)")
            .fetch_all(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok::<_, sqlx::Error>(rows)
    };
    let damaged = |detail: String| StoreError::DatabaseCorrupt {
        location: db.display().to_string(),
        detail,
    };
    match tokio::time::timeout(options.integrity_check_limit, check).await {
        Ok(Ok(rows)) if rows.len() == 1 && rows[0] == "ok" => Ok(()),
        Ok(Ok(rows)) => Err(damaged(format!(
            "SQLite's integrity check found: {}",
            rows.join("; ")
        ))),
        Ok(Err(e)) => Err(open_error(db, e.into())),
        Err(_) => {
            tracing::warn!(
                database = %db.display(),
                limit_secs = options.integrity_check_limit.as_secs_f64(),
                "the integrity check of the queue database did not finish in time; starting without it"
            );
            Ok(())
        }
    }
}

crate::health::observed_store!(SqliteStore);

crate::split::split_glue!(SqliteStore, Sqlite, "", crate::split::lite);
crate::diagnostics::diagnostics_glue!(SqliteStore, crate::split::lite);
crate::retry::retry_glue!(SqliteStore, crate::split::lite);
crate::rates::rates_glue!(SqliteStore, Sqlite, crate::split::lite);
crate::programs::programs_glue!(SqliteStore, crate::split::lite);
