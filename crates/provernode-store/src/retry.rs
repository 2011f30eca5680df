//! `provernode retry`: a failed or quarantined task back to the queue with a
//! fresh budget of attempts, recorded in its history. Operators of other
//! nodes edit the database by hand for this.
//!
//! The attempt numbers go on (the history keeps every attempt); what starts
//! again is what counts toward quarantine: the task's own failures and its
//! lost leases. Refused, with the reason, where another run could not end
//! differently or the task is not the operator's to retry: a part of a split
//! proof (retry its parent), a split parent (its parts ended; submit it
//! again), a task whose dependency failed (retry the dependency, then submit
//! the aggregate again), a passed deadline, a cancellation.

/// What a retry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryOutcome {
    Requeued,
    /// Not retried: why, and what to do instead.
    Refused(String),
    NotFound,
}

/// One thing done to a task outside its attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEvent {
    pub at_ms: i64,
    pub kind: String,
    pub detail: String,
}

pub(crate) const CURRENT: &str =
    "SELECT state, COALESCE(cause, '') AS cause, COALESCE(detail, '') AS detail, \
     parent_id, split_segments, deadline_ms, max_attempts FROM tasks WHERE id = ?1";

pub(crate) const REQUEUE: &str =
    "UPDATE tasks SET state = 'queued', cause = NULL, detail = NULL, failures = 0, \
     lease_losses = 0, finished_ms = NULL, lease_token = NULL, lease_owner = NULL, lease_expires_ms = NULL, \
     updated_ms = ?1 WHERE id = ?2 AND state IN ('failed', 'quarantined')";

pub(crate) const RECORD: &str =
    "INSERT INTO task_events (task_id, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)";

pub(crate) const SET_PHASE: &str = "UPDATE attempts SET phase = ?1 WHERE task_id = ?2 AND lease_token = ?3 \
     AND ended_ms IS NULL";

pub(crate) const EVENTS: &str =
    "SELECT at_ms, kind, detail FROM task_events WHERE task_id = ?1 ORDER BY at_ms";

/// Why a task in this situation is not retried, if it is not.
pub(crate) fn refusal(
    state: &str,
    cause: &str,
    part_of: Option<&str>,
    split: bool,
    deadline_passed: bool,
) -> Option<String> {
    if !matches!(state, "failed" | "quarantined") {
        return Some(format!(
            "the task is {state}: only failed or quarantined tasks are retried"
        ));
    }
    if let Some(parent) = part_of {
        return Some(format!(
            "the task is a part of the split task {parent}: retry that task"
        ));
    }
    if split {
        return Some("the task was split into parts that ended: submit it again".into());
    }
    match cause {
        "dependency_failed" => {
            Some("a task it depends on failed: retry that task, then submit this one again".into())
        }
        "deadline_passed" => Some("its deadline passed: submit it again with a later deadline".into()),
        "cancelled" => Some("it was cancelled: submit it again".into()),
        _ if deadline_passed => Some("its deadline has passed: submit it again with a later deadline".into()),
        _ => None,
    }
}

macro_rules! retry_glue {
    ($store:ty, $sql:path) => {
        impl $store {
            async fn do_retry(
                &self,
                id: $crate::TaskId,
                by: &str,
            ) -> Result<$crate::RetryOutcome, $crate::StoreError> {
                use sqlx::Row;
                let now = self.now();
                let mut tx = self.pool.begin().await?;
                let Some(row) = sqlx::query(&$sql($crate::retry::CURRENT))
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok($crate::RetryOutcome::NotFound);
                };
                let state: String = row.get("state");
                let cause: String = row.get("cause");
                let detail: String = row.get("detail");
                let parent: Option<String> = row.get("parent_id");
                let split: Option<i64> = row.get("split_segments");
                let deadline: Option<i64> = row.get("deadline_ms");
                let budget: i64 = row.get("max_attempts");
                if let Some(why) = $crate::retry::refusal(
                    &state,
                    &cause,
                    parent.as_deref(),
                    split.is_some(),
                    deadline.is_some_and(|d| d <= now),
                ) {
                    return Ok($crate::RetryOutcome::Refused(why));
                }
                let updated = sqlx::query(&$sql($crate::retry::REQUEUE))
                    .bind(now)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                if updated.rows_affected() == 0 {
                    return Ok($crate::RetryOutcome::Refused(
                        "the task changed meanwhile; look again".into(),
                    ));
                }
                let mut what = format!("retried by {by} after it ended {state}");
                if !cause.is_empty() {
                    what.push_str(&format!(" ({cause}"));
                    if !detail.is_empty() {
                        what.push_str(&format!(": {detail}"));
                    }
                    what.push(')');
                }
                what.push_str(&format!("; a fresh budget of {budget} attempts"));
                sqlx::query(&$sql($crate::retry::RECORD))
                    .bind(id.to_string())
                    .bind(now)
                    .bind("retried")
                    .bind(&what)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok($crate::RetryOutcome::Requeued)
            }

            async fn do_set_phase(
                &self,
                lease: &$crate::LeaseRef,
                phase: &str,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(&$sql($crate::retry::SET_PHASE))
                    .bind(phase)
                    .bind(lease.task_id.to_string())
                    .bind(&lease.token)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn do_events(
                &self,
                id: $crate::TaskId,
            ) -> Result<Vec<$crate::TaskEvent>, $crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(&$sql($crate::retry::EVENTS))
                    .bind(id.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| $crate::TaskEvent {
                        at_ms: r.get("at_ms"),
                        kind: r.get("kind"),
                        detail: r.get("detail"),
                    })
                    .collect())
            }
        }
    };
}
pub(crate) use retry_glue;

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn only_tasks_another_run_could_change_are_retried() {
        assert_eq!(refusal("quarantined", "timeout", None, false, false), None);
        assert_eq!(refusal("failed", "backend_error", None, false, false), None);
        for (state, cause, part, split, passed, want) in [
            ("succeeded", "", None, false, false, "only failed or quarantined"),
            ("failed", "timeout", Some("p"), false, false, "retry that task"),
            ("failed", "timeout", None, true, false, "submit it again"),
            (
                "failed",
                "dependency_failed",
                None,
                false,
                false,
                "retry that task",
            ),
            ("failed", "timeout", None, false, true, "deadline"),
            ("cancelled", "cancelled", None, false, false, "only failed"),
        ] {
            let why = refusal(state, cause, part, split, passed).unwrap();
            assert!(why.contains(want), "{why}");
        }
    }
}
