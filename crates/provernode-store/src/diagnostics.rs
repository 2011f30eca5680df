//! What a support bundle (`provernode diagnose`) reads from the queue: tasks
//! by state and terminal reason, and the latest failed attempts with their
//! causes and stderr tails. Read-only, one SQL text for both databases.

/// Tasks in one state with one terminal reason (empty for none).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StateCount {
    pub state: String,
    pub reason: String,
    pub tasks: u64,
}

/// One attempt that ended without a proof.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FailedAttempt {
    pub task_id: String,
    pub attempt: i64,
    pub program: String,
    pub backend: String,
    pub owner: String,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub cause: String,
    pub detail: String,
    pub stderr_tail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostics {
    pub by_state: Vec<StateCount>,
    /// Newest first.
    pub failed_attempts: Vec<FailedAttempt>,
}

pub(crate) const BY_STATE: &str = "SELECT state, COALESCE(cause, '') AS reason, COUNT(*) AS n \
     FROM tasks GROUP BY state, cause ORDER BY state, reason";

pub(crate) const FAILED_ATTEMPTS: &str = "SELECT a.task_id, a.attempt, a.owner, a.started_ms, a.ended_ms, \
     a.outcome, COALESCE(a.detail, '') AS detail, COALESCE(a.stderr_tail, '') AS stderr_tail, \
     t.program_name, t.backend \
     FROM attempts a JOIN tasks t ON t.id = a.task_id \
     WHERE a.ended_ms IS NOT NULL AND a.outcome IS NOT NULL AND a.outcome <> 'succeeded' \
     ORDER BY a.ended_ms DESC, a.task_id LIMIT ?1";

macro_rules! diagnostics_glue {
    ($store:ty, $sql:path) => {
        impl $store {
            async fn do_diagnostics(
                &self,
                failed_limit: u32,
            ) -> Result<$crate::diagnostics::Diagnostics, $crate::StoreError> {
                use sqlx::Row;
                let states = sqlx::query(&$sql($crate::diagnostics::BY_STATE))
                    .fetch_all(&self.pool)
                    .await?;
                let failed = sqlx::query(&$sql($crate::diagnostics::FAILED_ATTEMPTS))
                    .bind(i64::from(failed_limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok($crate::diagnostics::Diagnostics {
                    by_state: states
                        .iter()
                        .map(|r| $crate::diagnostics::StateCount {
                            state: r.get("state"),
                            reason: r.get("reason"),
                            tasks: u64::try_from(r.get::<i64, _>("n")).unwrap_or(0),
                        })
                        .collect(),
                    failed_attempts: failed
                        .iter()
                        .map(|r| $crate::diagnostics::FailedAttempt {
                            task_id: r.get("task_id"),
                            attempt: r.get("attempt"),
                            program: r.get("program_name"),
                            backend: r.get("backend"),
                            owner: r.get("owner"),
                            started_ms: r.get("started_ms"),
                            ended_ms: r.get("ended_ms"),
                            cause: r.get("outcome"),
                            detail: r.get("detail"),
                            stderr_tail: r.get("stderr_tail"),
                        })
                        .collect(),
                })
            }
        }
    };
}
pub(crate) use diagnostics_glue;
