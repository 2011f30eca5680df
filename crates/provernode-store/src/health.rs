//! What the store knows about its database's health, shared by both stores.
//!
//! Two failures must not look like "retry it":
//! - a full disk: writes fail until space is freed, then work again. The
//!   store remembers it (readiness says so) and, while it lasts, `ping`
//!   tries a 256 KiB write, which alone ends it: a heartbeat's few bytes
//!   fit in a page that is already there long after submissions stop
//!   fitting, and must not declare the node ready;
//! - a damaged database: nothing will fix it but the operator. Remembered
//!   until the process ends.
//!
//! And one failure must never be silent: a pooled connection left inside a
//! transaction. When SQLite's `COMMIT` fails (`SQLITE_FULL` rolls the
//! transaction back), sqlx keeps counting the transaction as open, so the
//! connection's next `begin` becomes a `SAVEPOINT` inside a transaction that
//! never commits: later "commits" only release that savepoint, callers are
//! told their writes are stored, and they vanish when the connection
//! closes. [`discard_if_in_transaction`] is the pools' `after_release`
//! hook: such a connection is closed, never reused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use sqlx::pool::PoolConnectionMetadata;
use sqlx::{Database, Executor, TransactionManager};

use crate::StoreError;

/// What kind of database failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    DiskFull,
    Corrupt,
    Other,
}

/// Classifies by SQLite's primary result code (sqlx reports the extended
/// one) or PostgreSQL's SQLSTATE.
pub(crate) fn classify(e: &sqlx::Error) -> ErrorKind {
    let sqlx::Error::Database(db) = e else {
        return ErrorKind::Other;
    };
    let Some(code) = db.code() else {
        return ErrorKind::Other;
    };
    if let Ok(n) = code.parse::<i64>() {
        // SQLITE_FULL = 13; SQLITE_CORRUPT = 11, SQLITE_NOTADB = 26.
        return match n & 0xff {
            13 => ErrorKind::DiskFull,
            11 | 26 => ErrorKind::Corrupt,
            _ => ErrorKind::Other,
        };
    }
    match code.as_ref() {
        // disk_full; data_corrupted, index_corrupted.
        "53100" => ErrorKind::DiskFull,
        "XX001" | "XX002" => ErrorKind::Corrupt,
        _ => ErrorKind::Other,
    }
}

pub(crate) struct Health {
    /// Where the database is, for messages: a file path or a server.
    location: String,
    disk_full: AtomicBool,
    corrupt: Mutex<Option<String>>,
}

impl Health {
    pub(crate) fn new(location: String) -> Health {
        Health {
            location,
            disk_full: AtomicBool::new(false),
            corrupt: Mutex::new(None),
        }
    }

    /// Records what a call's result says about the database, and names the
    /// database in the errors that need the operator.
    pub(crate) fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match result {
            Ok(v) => Ok(v),
            Err(StoreError::DiskFull { error, .. }) => {
                if !self.disk_full.swap(true, Ordering::SeqCst) {
                    tracing::error!(location = %self.location, %error, "the queue database's disk is full: submissions and results are refused until space is freed");
                }
                metrics::counter!("provernode_store_disk_full_errors_total").increment(1);
                Err(StoreError::DiskFull {
                    location: self.location.clone(),
                    error,
                })
            }
            Err(StoreError::DatabaseCorrupt { detail, .. }) => {
                tracing::error!(location = %self.location, %detail, "the queue database is damaged");
                if let Ok(mut c) = self.corrupt.lock() {
                    c.get_or_insert_with(|| detail.clone());
                }
                Err(StoreError::DatabaseCorrupt {
                    location: self.location.clone(),
                    detail,
                })
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn disk_full(&self) -> bool {
        self.disk_full.load(Ordering::SeqCst)
    }

    /// The write probe fitted: the disk has room again.
    pub(crate) fn room_again(&self) {
        if self.disk_full.swap(false, Ordering::SeqCst) {
            tracing::warn!(location = %self.location, "the queue database's disk has room again");
        }
    }

    /// The damage seen so far, as the error `ping` reports.
    pub(crate) fn corrupt_error(&self) -> Option<StoreError> {
        let detail = self.corrupt.lock().ok()?.clone()?;
        Some(StoreError::DatabaseCorrupt {
            location: self.location.clone(),
            detail,
        })
    }
}

/// The pools' `after_release` hook: a connection that sqlx still counts as
/// inside a transaction is closed instead of going back to the pool. A
/// dropped transaction queues its rollback, so such a connection first gets
/// one round trip (which lets that rollback run) and is kept if it worked.
/// Every other release costs nothing: a commit or rollback that worked has
/// already brought the depth back to 0.
pub(crate) fn discard_if_in_transaction<'c, DB>(
    conn: &'c mut DB::Connection,
    _meta: PoolConnectionMetadata,
) -> futures_core::future::BoxFuture<'c, Result<bool, sqlx::Error>>
where
    DB: Database,
    for<'e> &'e mut DB::Connection: Executor<'e, Database = DB>,
{
    Box::pin(async move {
        if DB::TransactionManager::get_transaction_depth(conn) == 0 {
            return Ok(true);
        }
        if let Err(e) = conn.execute("SELECT 1").await {
            tracing::warn!(error = %e, "closing a database connection that fails");
            return Ok(false);
        }
        let depth = DB::TransactionManager::get_transaction_depth(conn);
        if depth > 0 {
            metrics::counter!("provernode_store_connections_discarded_total").increment(1);
            tracing::warn!(
                depth,
                "closing a database connection left inside a transaction (a commit or rollback failed); it is never reused"
            );
            return Ok(false);
        }
        Ok(true)
    })
}

/// The `Store` impl of a store type whose inherent `do_*` methods do the
/// work and whose `health` field watches it: every call's result goes
/// through [`Health::observe`], and `ping` adds the damage seen and, while
/// the disk is full, the write probe. One definition for both databases.
macro_rules! observed_store {
    ($store:ty) => {
        #[async_trait]
        impl Store for $store {
            async fn submit(&self, task: NewTask) -> Result<Submitted, StoreError> {
                self.health.observe(self.do_submit(task).await)
            }
            async fn task(&self, id: TaskId) -> Result<Option<TaskRecord>, StoreError> {
                self.health.observe(self.do_task(id).await)
            }
            async fn attempts(&self, id: TaskId) -> Result<Vec<AttemptRecord>, StoreError> {
                self.health.observe(self.do_attempts(id).await)
            }
            async fn list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, StoreError> {
                self.health.observe(self.do_list(filter).await)
            }
            async fn proof(&self, id: TaskId) -> Result<Option<Vec<u8>>, StoreError> {
                self.health.observe(self.do_proof(id).await)
            }
            async fn set_phase(&self, lease: &crate::LeaseRef, phase: &str) -> Result<(), StoreError> {
                self.health.observe(self.do_set_phase(lease, phase).await)
            }
            async fn retry(&self, id: TaskId, by: &str) -> Result<crate::RetryOutcome, StoreError> {
                self.health.observe(self.do_retry(id, by).await)
            }
            async fn events(&self, id: TaskId) -> Result<Vec<crate::TaskEvent>, StoreError> {
                self.health.observe(self.do_events(id).await)
            }
            async fn cancel(&self, id: TaskId, detail: &str) -> Result<CancelOutcome, StoreError> {
                self.health.observe(self.do_cancel(id, detail).await)
            }
            async fn claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, StoreError> {
                self.health.observe(self.do_claim(request).await)
            }
            async fn heartbeat(&self, lease: &LeaseRef, ttl_ms: u64) -> Result<LeaseStatus, StoreError> {
                self.health.observe(self.do_heartbeat(lease, ttl_ms).await)
            }
            async fn complete(
                &self,
                lease: &LeaseRef,
                envelope: &[u8],
                public_output: &[u8],
                cycles: u64,
            ) -> Result<Completion, StoreError> {
                let result = self
                    .do_complete(lease, envelope, public_output, cycles)
                    .await;
                self.health.observe(result)
            }
            async fn fail(
                &self,
                lease: &LeaseRef,
                failure: &AttemptFailure,
            ) -> Result<FailureOutcome, StoreError> {
                self.health.observe(self.do_fail(lease, failure).await)
            }
            async fn release(&self, lease: &LeaseRef, detail: &str) -> Result<ReleaseOutcome, StoreError> {
                self.health.observe(self.do_release(lease, detail).await)
            }
            async fn sweep(&self) -> Result<SweepReport, StoreError> {
                self.health.observe(self.do_sweep().await)
            }
            async fn expire_leases(&self, owner_prefix: Option<&str>) -> Result<SweepReport, StoreError> {
                self.health
                    .observe(self.do_expire_leases(owner_prefix).await)
            }
            async fn counts(&self) -> Result<Vec<(TaskState, u64)>, StoreError> {
                self.health.observe(self.do_counts().await)
            }
            async fn dependencies(&self, id: TaskId) -> Result<Vec<(TaskId, TaskState)>, StoreError> {
                self.health.observe(self.do_dependencies(id).await)
            }
            async fn diagnostics(&self, failed_limit: u32) -> Result<crate::Diagnostics, StoreError> {
                self.health.observe(self.do_diagnostics(failed_limit).await)
            }
            async fn proving_rates(&self) -> Result<Vec<crate::ProvingRate>, StoreError> {
                self.health.observe(self.do_proving_rates().await)
            }
            async fn record_rate(
                &self,
                backend: &str,
                proof_kind: &str,
                cycles_per_sec: f64,
                source: &str,
            ) -> Result<(), StoreError> {
                self.health.observe(
                    self.do_record_rate(backend, proof_kind, cycles_per_sec, source)
                        .await,
                )
            }
            async fn split_progress(&self, id: TaskId) -> Result<Option<crate::SplitProgress>, StoreError> {
                self.health.observe(self.do_split_progress(id).await)
            }
            async fn put_program(
                &self,
                id: &provernode_core::ProgramId,
                name: &str,
                abi: provernode_core::Abi,
                elf: &[u8],
            ) -> Result<(crate::ProgramRecord, bool), StoreError> {
                self.health
                    .observe(self.do_put_program(id, name, abi, elf).await)
            }
            async fn program(
                &self,
                id: &provernode_core::ProgramId,
            ) -> Result<Option<crate::ProgramRecord>, StoreError> {
                self.health.observe(self.do_program(id).await)
            }
            async fn program_elf(
                &self,
                id: &provernode_core::ProgramId,
            ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
                self.health.observe(self.do_program_elf(id).await)
            }
            async fn program_ids(&self) -> Result<Vec<provernode_core::ProgramId>, StoreError> {
                self.health.observe(self.do_program_ids().await)
            }
            async fn programs(&self) -> Result<Vec<crate::ProgramRecord>, StoreError> {
                self.health.observe(self.do_programs().await)
            }
            async fn delete_program(
                &self,
                id: &provernode_core::ProgramId,
            ) -> Result<crate::DeleteProgramOutcome, StoreError> {
                self.health.observe(self.do_delete_program(id).await)
            }
            async fn ping(&self) -> Result<(), StoreError> {
                if let Some(e) = self.health.corrupt_error() {
                    return Err(e);
                }
                self.health.observe(self.do_ping().await)?;
                if self.health.disk_full() {
                    self.health.observe(self.write_probe().await)?;
                    self.health.room_again();
                }
                Ok(())
            }
        }
    };
}
pub(crate) use observed_store;

#[cfg(test)]
mod tests {
    #[test]
    fn the_loss_bound_is_larger_than_the_failure_bound() {
        for max in [1, 3, 5, 100] {
            assert!(crate::lease_loss_bound(max) > max);
        }
        assert_eq!(crate::lease_loss_bound(3), 10);
        assert_eq!(crate::lease_loss_bound(100), 300);
    }
}
