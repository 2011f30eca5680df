//! The store's contract. The same suite runs against a real SQLite database
//! in a temporary directory and a real, throwaway PostgreSQL server
//! (`test-postgres`: initdb + pg_ctl on a private port).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use provernode_core::{sha256, Abi, Cause, ProgramId, TaskLimits, TaskState};
use provernode_store::{
    lease_loss_bound, AttemptFailure, CancelOutcome, ClaimRequest, Completion, FailureOutcome, LeaseStatus,
    ListFilter, NewTask, PgStore, ReleaseOutcome, RetryOutcome, SqliteOptions, SqliteStore, Store,
    StoreError, Synchronous,
};

struct Fixture {
    store: Arc<dyn Store>,
    clock: Arc<AtomicI64>,
    /// Where the database is, for tests that damage it behind the store's back.
    database: Database,
    _guard: Box<dyn std::any::Any + Send>,
}

enum Database {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Fixture {
    /// A count, read on a connection of its own.
    async fn count(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        match &self.database {
            Database::Sqlite(path) => {
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                let n = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
                c.close().await.unwrap();
                n
            }
            Database::Postgres(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                let n = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
                c.close().await.unwrap();
                n
            }
        }
    }

    /// Part proofs and part inputs still kept for the split task `parent`.
    async fn part_proofs_kept(&self, parent: provernode_store::TaskId) -> (i64, i64) {
        (
            self.count(&format!(
                "SELECT COUNT(*) FROM results WHERE task_id IN (SELECT id FROM tasks WHERE parent_id = '{parent}')"
            ))
            .await,
            self.count(&format!(
                "SELECT COUNT(*) FROM tasks WHERE parent_id = '{parent}' AND length(input) > 0"
            ))
            .await,
        )
    }

    /// Runs `sql` on a connection of its own, as an intruder would.
    async fn tamper(&self, sql: &str) {
        use sqlx::Connection;
        match &self.database {
            Database::Sqlite(path) => {
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
            Database::Postgres(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(&sql.replace('?', "$")).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

impl Fixture {
    fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }
}

fn clock() -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(1_700_000_000_000))
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let c = clock.clone();
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    let path = dir.path().join("queue.sqlite");
    let store = SqliteStore::open(&path, &options)
        .await
        .unwrap()
        .with_clock(move || c.load(Ordering::SeqCst));
    Fixture {
        store: Arc::new(store),
        clock,
        database: Database::Sqlite(path),
        _guard: Box::new(dir),
    }
}

async fn postgres() -> Fixture {
    let pg = tokio::task::spawn_blocking(test_postgres::TempPostgres::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let url = pg.create_database().unwrap_or_else(|e| panic!("{e}"));
    let clock = clock();
    let c = clock.clone();
    let store = PgStore::connect(&url, 8)
        .await
        .unwrap()
        .with_clock(move || c.load(Ordering::SeqCst));
    Fixture {
        store: Arc::new(store),
        clock,
        database: Database::Postgres(url),
        _guard: Box::new(pg),
    }
}

fn task(input: &[u8]) -> NewTask {
    let elf = b"\x7fELF fake elf for the store".to_vec();
    NewTask {
        program_id: ProgramId::of_elf(&elf),
        program_name: "fibonacci".into(),
        abi: Abi::Risc0,
        elf,
        input: input.to_vec(),
        backend: "trace".into(),
        proof_kind: None,
        limits: TaskLimits {
            max_attempts: 3,
            ..TaskLimits::default()
        },
        priority: 0,
        deadline_ms: None,
        idempotency_key: None,
        depends_on: Vec::new(),
    }
}

fn dependent(depends_on: &[provernode_store::TaskId]) -> NewTask {
    NewTask {
        depends_on: depends_on.to_vec(),
        // Ahead of everything: only its dependencies keep it from a claim.
        priority: 10,
        ..task(b"")
    }
}

fn claim_req(owner: &str) -> ClaimRequest {
    ClaimRequest {
        owner: owner.into(),
        backends: vec!["trace".into()],
        lease_ttl_ms: 10_000,
        max_memory_bytes: None,
    }
}

fn failure(cause: Cause, retryable: bool) -> AttemptFailure {
    AttemptFailure {
        cause,
        retryable,
        detail: format!("{cause} happened"),
        stderr_tail: "last words".into(),
    }
}

async fn submit_then_read_back_and_list(f: Fixture) {
    let s = f.store.submit(task(b"abc")).await.unwrap();
    assert!(!s.deduplicated);
    let t = f.store.task(s.id).await.unwrap().unwrap();
    assert_eq!(t.state, TaskState::Queued);
    assert_eq!(t.input_digest, sha256(b"abc"));
    assert_eq!(t.input_len, 3);
    assert_eq!(t.attempts, 0);
    let s2 = f.store.submit(task(b"def")).await.unwrap();
    let all = f
        .store
        .list(&ListFilter {
            limit: 10,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![s2.id, s.id],
        "newest first"
    );
    let page = f
        .store
        .list(&ListFilter {
            limit: 10,
            before: Some(s2.id),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert!(f.store.task(uuid::Uuid::now_v7()).await.unwrap().is_none());
    f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    let by_state = |state| {
        let store = f.store.clone();
        async move {
            store
                .list(&ListFilter {
                    state: Some(state),
                    limit: 10,
                    ..ListFilter::default()
                })
                .await
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by_state(TaskState::Leased).await,
        vec![s.id],
        "the oldest was claimed"
    );
    assert_eq!(by_state(TaskState::Queued).await, vec![s2.id]);
    assert!(by_state(TaskState::Succeeded).await.is_empty());
}

async fn an_idempotency_key_returns_the_first_task_and_refuses_a_different_one(f: Fixture) {
    let mut t = task(b"x");
    t.idempotency_key = Some("order-17".into());
    let a = f.store.submit(t.clone()).await.unwrap();
    let b = f.store.submit(t.clone()).await.unwrap();
    assert_eq!(a.id, b.id);
    assert!(b.deduplicated);
    // A retry with another priority or deadline is the same request.
    let mut retry = t.clone();
    retry.priority = 5;
    retry.deadline_ms = Some(4_000_000_000_000);
    assert_eq!(f.store.submit(retry).await.unwrap().id, a.id);
    // Issue 19: other limits under the same key were silently dropped.
    let mut other_limits = t.clone();
    other_limits.limits.timeout_ms += 1;
    let mut other_kind = t.clone();
    other_kind.proof_kind = Some("succinct".into());
    let mut other_input = t;
    other_input.input = b"y".to_vec();
    for different in [other_limits, other_kind, other_input] {
        match f.store.submit(different).await {
            Err(StoreError::IdempotencyConflict { existing, .. }) => assert_eq!(existing, a.id),
            other => panic!("{other:?}"),
        }
    }
}

async fn claims_follow_priority_then_age_and_skip_other_backends(f: Fixture) {
    let low = f.store.submit(task(b"1")).await.unwrap();
    f.advance(1);
    let mut hi = task(b"2");
    hi.priority = 5;
    let high = f.store.submit(hi).await.unwrap();
    let mut other = task(b"3");
    other.backend = "sp1".into();
    f.store.submit(other).await.unwrap();

    let first = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    assert_eq!(first.task.id, high.id);
    assert_eq!(first.attempt, 1);
    assert_eq!(first.input, b"2");
    assert!(first.elf.starts_with(b"\x7fELF"));
    let second = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    assert_eq!(second.task.id, low.id);
    assert!(
        f.store.claim(&claim_req("w1")).await.unwrap().is_none(),
        "sp1 task is not ours"
    );
    let t = f.store.task(high.id).await.unwrap().unwrap();
    assert_eq!(t.state, TaskState::Leased);
    assert_eq!(t.lease_owner.as_deref(), Some("w1"));
}

async fn concurrent_claimers_never_take_the_same_task(f: Fixture) {
    let n = 200;
    for i in 0..n {
        f.store.submit(task(format!("{i}").as_bytes())).await.unwrap();
    }
    let mut handles = Vec::new();
    for w in 0..8 {
        let store = f.store.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(lease) = store.claim(&claim_req(&format!("w{w}"))).await.unwrap() {
                mine.push(lease.task.id);
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    for h in handles {
        for id in h.await.unwrap() {
            assert!(seen.insert(id), "task {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), n);
}

async fn a_result_is_accepted_once_and_a_duplicate_is_ignored(f: Fixture) {
    let id = f.store.submit(task(b"a")).await.unwrap().id;
    let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    let r = lease.lease_ref();
    assert_eq!(
        f.store.complete(&r, b"proof", b"out", 42).await.unwrap(),
        Completion::Accepted
    );
    assert!(matches!(
        f.store.complete(&r, b"proof2", b"out2", 43).await.unwrap(),
        Completion::Ignored { .. }
    ));
    let t = f.store.task(id).await.unwrap().unwrap();
    assert_eq!(t.state, TaskState::Succeeded);
    assert_eq!(t.public_output.as_deref(), Some(&b"out"[..]));
    assert_eq!(t.cycles, Some(42));
    assert_eq!(f.store.proof(id).await.unwrap().as_deref(), Some(&b"proof"[..]));
    let attempts = f.store.attempts(id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome.as_deref(), Some("succeeded"));
}

async fn a_late_result_for_an_expired_lease_is_ignored_and_the_new_holder_wins(f: Fixture) {
    let id = f.store.submit(task(b"a")).await.unwrap().id;
    let old = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    f.advance(10_001);
    // Not yet swept, but expired: neither heartbeat nor result is accepted.
    assert!(matches!(
        f.store.heartbeat(&old.lease_ref(), 10_000).await.unwrap(),
        LeaseStatus::Gone { .. }
    ));
    assert!(matches!(
        f.store
            .complete(&old.lease_ref(), b"late", b"late", 1)
            .await
            .unwrap(),
        Completion::Ignored { .. }
    ));
    let report = f.store.sweep().await.unwrap();
    assert_eq!(report.requeued, vec![id]);
    let new = f.store.claim(&claim_req("w2")).await.unwrap().unwrap();
    assert_eq!(new.attempt, 2);
    assert!(matches!(
        f.store
            .complete(&old.lease_ref(), b"late", b"late", 1)
            .await
            .unwrap(),
        Completion::Ignored { .. }
    ));
    assert_eq!(
        f.store
            .complete(&new.lease_ref(), b"good", b"good", 2)
            .await
            .unwrap(),
        Completion::Accepted
    );
    assert_eq!(f.store.proof(id).await.unwrap().as_deref(), Some(&b"good"[..]));
    let attempts = f.store.attempts(id).await.unwrap();
    assert_eq!(attempts[0].outcome.as_deref(), Some("lease_lost"));
    assert_eq!(attempts[1].outcome.as_deref(), Some("succeeded"));
}

async fn heartbeats_keep_a_lease_alive(f: Fixture) {
    f.store.submit(task(b"a")).await.unwrap();
    let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    for _ in 0..5 {
        f.advance(6_000);
        assert!(matches!(
            f.store.heartbeat(&lease.lease_ref(), 10_000).await.unwrap(),
            LeaseStatus::Live { .. }
        ));
        assert!(f.store.sweep().await.unwrap().is_empty());
    }
}

async fn lost_leases_count_apart_and_quarantine_only_past_their_larger_bound(f: Fixture) {
    let id = f.store.submit(task(b"poison")).await.unwrap().id;
    let bound = lease_loss_bound(3);
    assert!(bound > 3);
    for attempt in 1..=bound {
        let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
        assert_eq!(lease.attempt, attempt);
        f.advance(10_001);
        let report = f.store.sweep().await.unwrap();
        if attempt < bound {
            assert_eq!(report.requeued, vec![id], "loss {attempt} of {bound}");
        } else {
            assert_eq!(report.quarantined, vec![id]);
        }
    }
    let t = f.store.task(id).await.unwrap().unwrap();
    assert_eq!(t.state, TaskState::Quarantined);
    assert_eq!(t.cause, Some(Cause::LeaseLost));
    assert_eq!((t.failures, t.lease_losses), (0, bound));
    let detail = t.detail.unwrap();
    assert!(
        detail.contains(&format!("{bound} attempts")) && detail.contains(&format!("#{bound} lease_lost")),
        "{detail}"
    );
    assert!(f.store.claim(&claim_req("w1")).await.unwrap().is_none());
}

async fn lost_leases_do_not_use_up_the_tasks_own_failures(f: Fixture) {
    // Two node deaths, then two real failures: still queued (2 < 3 failures).
    let id = f.store.submit(task(b"unlucky")).await.unwrap().id;
    for _ in 0..2 {
        f.store.claim(&claim_req("node-1/w0")).await.unwrap().unwrap();
        f.store.expire_leases(Some("node-1/")).await.unwrap();
    }
    for _ in 0..2 {
        let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
        let outcome = f
            .store
            .fail(&lease.lease_ref(), &failure(Cause::Timeout, true))
            .await
            .unwrap();
        assert_eq!(outcome, FailureOutcome::Requeued);
    }
    let t = f.store.task(id).await.unwrap().unwrap();
    assert_eq!(
        (t.state, t.attempts, t.failures, t.lease_losses),
        (TaskState::Queued, 4, 2, 2)
    );
    let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    let outcome = f
        .store
        .fail(&lease.lease_ref(), &failure(Cause::Timeout, true))
        .await
        .unwrap();
    assert_eq!(outcome, FailureOutcome::Quarantined(Cause::Timeout));
}

async fn a_released_lease_requeues_without_charging_the_task(f: Fixture) {
    let id = f.store.submit(task(b"drained")).await.unwrap().id;
    // More releases than max_attempts: none is charged.
    for attempt in 1..=5 {
        let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
        assert_eq!(lease.attempt, attempt);
        let outcome = f
            .store
            .release(&lease.lease_ref(), "the node drained before the attempt finished")
            .await
            .unwrap();
        assert_eq!(outcome, ReleaseOutcome::Requeued);
        // A second release of the same lease is ignored.
        assert!(matches!(
            f.store.release(&lease.lease_ref(), "again").await.unwrap(),
            ReleaseOutcome::Ignored { .. }
        ));
    }
    let t = f.store.task(id).await.unwrap().unwrap();
    assert_eq!(
        (t.state, t.attempts, t.failures, t.lease_losses),
        (TaskState::Queued, 5, 0, 0)
    );
    let history = f.store.attempts(id).await.unwrap();
    assert_eq!(history.len(), 5);
    assert!(history.iter().all(|a| a.outcome.as_deref() == Some("released")
        && a.detail.as_deref() == Some("the node drained before the attempt finished")));
    let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    assert_eq!(
        f.store
            .complete(&lease.lease_ref(), b"env", b"out", 1)
            .await
            .unwrap(),
        Completion::Accepted
    );
}

async fn lists_stop_at_their_byte_bound(f: Fixture) {
    for i in 0..5u8 {
        let mut t = task(&[i]);
        t.program_name = "n".repeat(1000);
        f.store.submit(t).await.unwrap();
    }
    let list = |max_bytes| {
        let store = f.store.clone();
        async move {
            store
                .list(&ListFilter {
                    limit: 100,
                    max_bytes,
                    ..ListFilter::default()
                })
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(list(1 << 20).await, 5);
    assert_eq!(list(2500).await, 3, "stops once past the bound");
    assert_eq!(list(1).await, 1, "at least one task");
}

async fn retryable_failures_requeue_then_quarantine_with_every_cause(f: Fixture) {
    let id = f.store.submit(task(b"hog")).await.unwrap().id;
    let causes = [Cause::OutOfMemory, Cause::Crashed(9), Cause::Timeout];
    for (i, cause) in causes.iter().enumerate() {
        let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
        let outcome = f
            .store
            .fail(&lease.lease_ref(), &failure(*cause, true))
            .await
            .unwrap();
        if i < 2 {
            assert_eq!(outcome, FailureOutcome::Requeued);
        } else {
            assert_eq!(outcome, FailureOutcome::Quarantined(Cause::Timeout));
        }
    }
    let t = f.store.task(id).await.unwrap().unwrap();
    assert_eq!((t.state, t.cause), (TaskState::Quarantined, Some(Cause::Timeout)));
    let detail = t.detail.unwrap();
    for want in ["#1 out_of_memory", "#2 crashed(9)", "#3 timeout"] {
        assert!(detail.contains(want), "{detail}");
    }
    let attempts = f.store.attempts(id).await.unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[1].stderr_tail.as_deref(), Some("last words"));
}

async fn diagnostics_count_tasks_by_state_and_reason_and_list_failed_attempts_newest_first(f: Fixture) {
    let hog = f.store.submit(task(b"hog")).await.unwrap().id;
    f.store.submit(task(b"waiting")).await.unwrap();
    let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    assert_eq!(lease.task.id, hog);
    f.store
        .fail(&lease.lease_ref(), &failure(Cause::OutOfMemory, true))
        .await
        .unwrap();
    let lease = f.store.claim(&claim_req("w2")).await.unwrap().unwrap();
    f.store
        .fail(&lease.lease_ref(), &failure(Cause::InvalidInput, false))
        .await
        .unwrap();
    let d = f.store.diagnostics(10).await.unwrap();
    let count = |state: &str, reason: &str| {
        d.by_state
            .iter()
            .find(|c| c.state == state && c.reason == reason)
            .map_or(0, |c| c.tasks)
    };
    assert_eq!(
        d.by_state.iter().map(|c| c.tasks).sum::<u64>(),
        2,
        "{:?}",
        d.by_state
    );
    assert_eq!(
        count("queued", "") + count("failed", "invalid_input"),
        2,
        "{:?}",
        d.by_state
    );
    assert_eq!(d.failed_attempts.len(), 2);
    let newest = &d.failed_attempts[0];
    assert!(newest.ended_ms >= d.failed_attempts[1].ended_ms);
    assert!(d
        .failed_attempts
        .iter()
        .any(|a| a.cause == "out_of_memory" && a.owner == "w1" && a.stderr_tail == "last words"));
    assert_eq!(f.store.diagnostics(1).await.unwrap().failed_attempts.len(), 1);
}

async fn a_retried_task_is_queued_with_a_fresh_budget_and_the_retry_is_recorded(f: Fixture) {
    let id = f.store.submit(task(b"flaky")).await.unwrap().id;
    for _ in 0..3 {
        let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
        f.store
            .fail(&lease.lease_ref(), &failure(Cause::Timeout, true))
            .await
            .unwrap();
    }
    assert_eq!(
        f.store.task(id).await.unwrap().unwrap().state,
        TaskState::Quarantined
    );
    assert_eq!(f.store.retry(id, "tester").await.unwrap(), RetryOutcome::Requeued);
    let t = f.store.task(id).await.unwrap().unwrap();
    assert_eq!(
        (t.state, t.cause, t.failures, t.attempts),
        (TaskState::Queued, None, 0, 3)
    );
    let events = f.store.events(id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert!(
        events[0]
            .detail
            .contains("retried by tester after it ended quarantined (timeout"),
        "{events:?}"
    );
    // The fresh budget: three more failures before quarantine again, numbered on.
    for _ in 0..3 {
        let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
        f.store
            .fail(&lease.lease_ref(), &failure(Cause::Timeout, true))
            .await
            .unwrap();
    }
    let t = f.store.task(id).await.unwrap().unwrap();
    assert_eq!((t.state, t.attempts), (TaskState::Quarantined, 6));
    assert_eq!(f.store.attempts(id).await.unwrap().len(), 6);
    // Not retried: a task still queued, one cancelled, an unknown one.
    let queued = f.store.submit(task(b"queued")).await.unwrap().id;
    assert!(
        matches!(f.store.retry(queued, "t").await.unwrap(), RetryOutcome::Refused(w) if w.contains("only failed or quarantined"))
    );
    f.store.cancel(queued, "by test").await.unwrap();
    assert!(matches!(
        f.store.retry(queued, "t").await.unwrap(),
        RetryOutcome::Refused(_)
    ));
    assert_eq!(
        f.store.retry(uuid::Uuid::now_v7(), "t").await.unwrap(),
        RetryOutcome::NotFound
    );
}

async fn a_running_attempts_phase_is_recorded_for_its_lease_only(f: Fixture) {
    let id = f.store.submit(task(b"long")).await.unwrap().id;
    let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    f.store.set_phase(&lease.lease_ref(), "proving").await.unwrap();
    assert_eq!(
        f.store.attempts(id).await.unwrap()[0].phase.as_deref(),
        Some("proving")
    );
    // A stale token changes nothing.
    let stale = provernode_store::LeaseRef {
        task_id: id,
        token: "not-the-lease".into(),
    };
    f.store.set_phase(&stale, "reporting").await.unwrap();
    assert_eq!(
        f.store.attempts(id).await.unwrap()[0].phase.as_deref(),
        Some("proving")
    );
    f.store.set_phase(&lease.lease_ref(), "verifying").await.unwrap();
    f.store
        .fail(&lease.lease_ref(), &failure(Cause::Timeout, true))
        .await
        .unwrap();
    // Kept after the attempt ended: where it was when it ended.
    assert_eq!(
        f.store.attempts(id).await.unwrap()[0].phase.as_deref(),
        Some("verifying")
    );
}

async fn a_permanent_failure_fails_at_once(f: Fixture) {
    let id = f.store.submit(task(b"bad")).await.unwrap().id;
    let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    assert_eq!(
        f.store
            .fail(&lease.lease_ref(), &failure(Cause::InvalidInput, false))
            .await
            .unwrap(),
        FailureOutcome::Failed(Cause::InvalidInput)
    );
    let t = f.store.task(id).await.unwrap().unwrap();
    assert_eq!(
        (t.state, t.cause, t.attempts),
        (TaskState::Failed, Some(Cause::InvalidInput), 1)
    );
    // A second report for the same lease changes nothing.
    assert!(matches!(
        f.store
            .fail(&lease.lease_ref(), &failure(Cause::Timeout, true))
            .await
            .unwrap(),
        FailureOutcome::Ignored { .. }
    ));
}

async fn cancelling_ends_queued_and_leased_tasks_and_the_holder_sees_it(f: Fixture) {
    let queued = f.store.submit(task(b"q")).await.unwrap().id;
    let leased = f.store.submit(task(b"l")).await.unwrap().id;
    let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    assert_eq!(lease.task.id, queued);
    let _ = leased;
    assert_eq!(
        f.store.cancel(queued, "by test").await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        f.store.heartbeat(&lease.lease_ref(), 10_000).await.unwrap(),
        LeaseStatus::Gone {
            state: TaskState::Cancelled
        }
    );
    assert_eq!(
        f.store.cancel(queued, "again").await.unwrap(),
        CancelOutcome::AlreadyTerminal(TaskState::Cancelled)
    );
    assert_eq!(
        f.store.cancel(uuid::Uuid::now_v7(), "x").await.unwrap(),
        CancelOutcome::NotFound
    );
    let t = f.store.task(queued).await.unwrap().unwrap();
    assert_eq!(t.cause, Some(Cause::Cancelled));
    assert_eq!(
        f.store.attempts(queued).await.unwrap()[0].outcome.as_deref(),
        Some("cancelled")
    );
}

async fn deadlines_end_tasks_and_are_never_claimed_past(f: Fixture) {
    let now = f.clock.load(Ordering::SeqCst);
    let mut t = task(b"d");
    t.deadline_ms = Some(now + 1_000);
    let id = f.store.submit(t).await.unwrap().id;
    f.advance(1_000);
    assert!(f.store.claim(&claim_req("w1")).await.unwrap().is_none());
    let report = f.store.sweep().await.unwrap();
    assert_eq!(report.deadline_passed, vec![id]);
    let t = f.store.task(id).await.unwrap().unwrap();
    assert_eq!(
        (t.state, t.cause),
        (TaskState::Failed, Some(Cause::DeadlinePassed))
    );
}

async fn expiring_the_leases_of_a_dead_owner_counts_an_attempt(f: Fixture) {
    let a = f.store.submit(task(b"a")).await.unwrap().id;
    let b = f.store.submit(task(b"b")).await.unwrap().id;
    f.store.claim(&claim_req("node-1/w0")).await.unwrap().unwrap();
    f.store.claim(&claim_req("node-2/w0")).await.unwrap().unwrap();
    let report = f.store.expire_leases(Some("node-1/")).await.unwrap();
    assert_eq!(report.requeued, vec![a]);
    assert_eq!(f.store.task(b).await.unwrap().unwrap().state, TaskState::Leased);
    let report = f.store.expire_leases(None).await.unwrap();
    assert_eq!(report.requeued, vec![b]);
    let t = f.store.task(a).await.unwrap().unwrap();
    assert_eq!((t.state, t.attempts), (TaskState::Queued, 1));
    let counts = f.store.counts().await.unwrap();
    assert!(counts.contains(&(TaskState::Queued, 2)));
    f.store.ping().await.unwrap();
}

async fn a_dependent_waits_for_its_dependencies_then_gets_their_proofs_as_input(f: Fixture) {
    let a = f.store.submit(task(b"a")).await.unwrap().id;
    let b = f.store.submit(task(b"b")).await.unwrap().id;
    let c = f.store.submit(dependent(&[b, a])).await.unwrap().id;
    assert_eq!(
        f.store.dependencies(c).await.unwrap(),
        vec![(b, TaskState::Queued), (a, TaskState::Queued)]
    );
    for (expected, proof) in [(a, &b"proof-a"[..]), (b, &b"proof-b"[..])] {
        let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
        assert_eq!(lease.task.id, expected, "the blocked dependent is skipped");
        assert_eq!(
            f.store
                .complete(&lease.lease_ref(), proof, b"out", 1)
                .await
                .unwrap(),
            Completion::Accepted
        );
    }
    let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    assert_eq!(lease.task.id, c);
    let expected =
        provernode_core::aggregate::AggregateInput::encode_raw(&[b"proof-b".to_vec(), b"proof-a".to_vec()])
            .unwrap();
    assert_eq!(lease.input, expected, "the proofs, in the dependency order");
    assert_eq!(lease.task.input_digest, sha256(&expected));
    // A second attempt gets the same input, assembled once.
    f.store
        .fail(&lease.lease_ref(), &failure(Cause::Timeout, true))
        .await
        .unwrap();
    let again = f.store.claim(&claim_req("w2")).await.unwrap().unwrap();
    assert_eq!((again.task.id, again.input), (c, expected));
    assert!(f.store.claim(&claim_req("w3")).await.unwrap().is_none());
}

async fn a_dependency_that_ends_without_a_proof_fails_its_dependents(f: Fixture) {
    let a = f.store.submit(task(b"a")).await.unwrap().id;
    let b = f.store.submit(task(b"b")).await.unwrap().id;
    let c = f.store.submit(dependent(&[a, b])).await.unwrap().id;
    let d = f.store.submit(dependent(&[c])).await.unwrap().id;
    let e = f.store.submit(dependent(&[b])).await.unwrap().id;
    let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
    assert_eq!(lease.task.id, a);
    f.store
        .fail(&lease.lease_ref(), &failure(Cause::InvalidInput, false))
        .await
        .unwrap();
    // c depended on a, d on c: both end at once, each naming its own.
    let tc = f.store.task(c).await.unwrap().unwrap();
    assert_eq!(
        (tc.state, tc.cause),
        (TaskState::Failed, Some(Cause::DependencyFailed))
    );
    let detail = tc.detail.unwrap();
    assert!(
        detail.contains(&a.to_string()) && detail.contains("(dependency 0) ended failed (invalid_input)"),
        "{detail}"
    );
    let td = f.store.task(d).await.unwrap().unwrap();
    assert_eq!(
        (td.state, td.cause),
        (TaskState::Failed, Some(Cause::DependencyFailed))
    );
    assert!(td.detail.unwrap().contains(&c.to_string()));
    assert!(td.finished_ms.is_some());
    // e waits on b, which is fine.
    assert_eq!(f.store.task(e).await.unwrap().unwrap().state, TaskState::Queued);
    // Cancelling b ends e; a dependent submitted after the failure ends at once.
    assert_eq!(
        f.store.cancel(b, "no longer wanted").await.unwrap(),
        CancelOutcome::Cancelled
    );
    let te = f.store.task(e).await.unwrap().unwrap();
    assert_eq!(
        (te.state, te.cause),
        (TaskState::Failed, Some(Cause::DependencyFailed))
    );
    assert!(te.detail.unwrap().contains("ended cancelled"));
    let late = f.store.submit(dependent(&[a])).await.unwrap().id;
    assert_eq!(
        f.store.task(late).await.unwrap().unwrap().cause,
        Some(Cause::DependencyFailed)
    );
    assert!(f.store.claim(&claim_req("w1")).await.unwrap().is_none());
    // A quarantine through lost leases ends dependents too.
    let q = f.store.submit(task(b"q")).await.unwrap().id;
    let on_q = f.store.submit(dependent(&[q])).await.unwrap().id;
    for _ in 0..lease_loss_bound(3) {
        f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
        f.advance(20_000);
        f.store.sweep().await.unwrap();
    }
    assert_eq!(
        f.store.task(q).await.unwrap().unwrap().state,
        TaskState::Quarantined
    );
    assert_eq!(
        f.store.task(on_q).await.unwrap().unwrap().cause,
        Some(Cause::DependencyFailed)
    );
}

async fn a_retried_aggregate_is_the_same_task_even_after_its_input_was_assembled(f: Fixture) {
    let a = f.store.submit(task(b"a")).await.unwrap().id;
    let b = f.store.submit(task(b"b")).await.unwrap().id;
    let keyed = |deps: &[provernode_store::TaskId]| NewTask {
        idempotency_key: Some("batch/aggregate".into()),
        ..dependent(deps)
    };
    let first = f.store.submit(keyed(&[a, b])).await.unwrap().id;
    for id in [a, b] {
        let lease = f.store.claim(&claim_req("w1")).await.unwrap().unwrap();
        assert_eq!(lease.task.id, id);
        f.store
            .complete(&lease.lease_ref(), b"proof", b"out", 1)
            .await
            .unwrap();
    }
    // Claimed: its stored input is now the proofs, not what was submitted.
    assert_eq!(
        f.store.claim(&claim_req("w1")).await.unwrap().unwrap().task.id,
        first
    );
    let again = f.store.submit(keyed(&[a, b])).await.unwrap();
    assert_eq!((again.id, again.deduplicated), (first, true));
    // Other dependencies, or another order, under the same key: a conflict.
    for other in [vec![b, a], vec![a]] {
        assert!(matches!(
            f.store.submit(keyed(&other)).await,
            Err(StoreError::IdempotencyConflict { .. })
        ));
    }
}

async fn an_unknown_dependency_is_refused_naming_it(f: Fixture) {
    let a = f.store.submit(task(b"a")).await.unwrap().id;
    let missing = uuid::Uuid::now_v7();
    let err = f.store.submit(dependent(&[a, missing])).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("dependency 1: there is no task {missing}")),
        "{err}"
    );
    // Nothing of the refused task was kept.
    let all = f.store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
}

/// An envelope of `kind` with this public output (the store reads only the
/// kind, the plan in a plan's output, and the checksum of a part's proof).
fn envelope(kind: &str, public_output: &[u8]) -> Vec<u8> {
    provernode_core::ProofEnvelope {
        backend: "trace".into(),
        backend_version: "1".into(),
        proof_kind: kind.into(),
        abi: Abi::Risc0,
        program_id: ProgramId::of_elf(b"x"),
        input_digest: sha256(b"x"),
        cycles: 1,
        public_output: public_output.to_vec(),
        proof: public_output.to_vec(),
    }
    .encode()
    .unwrap()
}

fn plan(segments: u32) -> Vec<u8> {
    let plan = provernode_core::split::SplitPlan {
        segments,
        segment_po2: 16,
        cycles: 12_345,
        public_output: b"journal".to_vec(),
    };
    envelope(provernode_core::split::PLAN_KIND, &plan.encode())
}

/// Submits a task, claims it and reports a plan of `segments`; returns
/// the parent and its segment parts (by segment).
async fn split_task(f: &Fixture, segments: u32) -> (provernode_store::TaskId, Vec<provernode_store::TaskId>) {
    let parent = f.store.submit(task(b"long")).await.unwrap().id;
    let lease = f.store.claim(&claim_req("planner")).await.unwrap().unwrap();
    assert_eq!(lease.task.id, parent);
    assert_eq!(
        f.store
            .complete(&lease.lease_ref(), &plan(segments), b"ignored", 1)
            .await
            .unwrap(),
        Completion::Accepted
    );
    let mut parts = Vec::new();
    for t in f.store.list(&ListFilter::default()).await.unwrap() {
        if t.parent_id == Some(parent) {
            parts.push(t);
        }
    }
    parts.sort_by_key(|t| t.part);
    assert_eq!(parts.len(), segments as usize);
    (parent, parts.iter().map(|t| t.id).collect())
}

/// Claims until the task `id` comes (other parts are handed back).
async fn claim_task(f: &Fixture, id: provernode_store::TaskId) -> provernode_store::Lease {
    let mut handed_back = Vec::new();
    let lease = loop {
        let lease = f
            .store
            .claim(&claim_req("w"))
            .await
            .unwrap()
            .expect("the task is claimable");
        if lease.task.id == id {
            break lease;
        }
        handed_back.push(lease);
    };
    for other in handed_back {
        f.store.release(&other.lease_ref(), "not this one").await.unwrap();
    }
    lease
}

async fn prove_part(f: &Fixture, id: provernode_store::TaskId, proof: &[u8]) {
    let lease = claim_task(f, id).await;
    assert_eq!(
        f.store
            .complete(
                &lease.lease_ref(),
                &envelope(provernode_core::split::SEGMENT_KIND, proof),
                proof,
                1
            )
            .await
            .unwrap(),
        Completion::Accepted
    );
}

/// The join part covering `lo..hi`, if one was created.
async fn join_of(
    f: &Fixture,
    parent: provernode_store::TaskId,
    lo: u32,
    hi: u32,
) -> Option<provernode_store::TaskRecord> {
    f.store
        .list(&ListFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.parent_id == Some(parent) && t.part == Some((lo, hi)))
}

async fn a_split_task_is_joined_as_its_parts_arrive_and_ends_with_the_final_join(f: Fixture) {
    let (parent, segments) = split_task(&f, 4).await;
    let p = f.store.task(parent).await.unwrap().unwrap();
    assert_eq!(p.state, TaskState::Leased, "a split task stays in progress");
    assert_eq!(p.lease_owner.as_deref(), Some("split"));
    assert_eq!(
        (p.split_segments, p.public_output.as_deref()),
        (Some(4), Some(&b"journal"[..]))
    );
    let attempts = f.store.attempts(parent).await.unwrap();
    assert_eq!(attempts[0].outcome.as_deref(), Some("split"));
    // A restart's lease expiry leaves a split task alone.
    assert!(f.store.expire_leases(None).await.unwrap().is_empty());
    assert_eq!(
        f.store.task(parent).await.unwrap().unwrap().state,
        TaskState::Leased
    );

    // Segments arrive out of order: 1, 0 (join 0..2), 3, 2 (join 2..4).
    prove_part(&f, segments[1], b"s1").await;
    assert!(
        join_of(&f, parent, 0, 2).await.is_none(),
        "segment 1 waits for a neighbour"
    );
    prove_part(&f, segments[0], b"s0").await;
    let left = join_of(&f, parent, 0, 2)
        .await
        .expect("segments 0 and 1 are joined");
    assert_eq!(
        f.store.dependencies(left.id).await.unwrap(),
        vec![
            (segments[0], TaskState::Succeeded),
            (segments[1], TaskState::Succeeded)
        ]
    );
    prove_part(&f, segments[3], b"s3").await;
    prove_part(&f, segments[2], b"s2").await;
    let right = join_of(&f, parent, 2, 4)
        .await
        .expect("segments 2 and 3 are joined");
    let progress = f.store.split_progress(parent).await.unwrap().unwrap();
    assert_eq!(progress.segment_po2, 16, "the plan's segment size");
    assert_eq!(
        (
            progress.segments,
            progress.segments_proved,
            progress.joins,
            progress.joins_done
        ),
        (4, 4, 3, 0)
    );

    let lease = claim_task(&f, left.id).await;
    let part = provernode_core::split::PartInput::decode(&lease.input).unwrap();
    assert_eq!((part.lo, part.hi, part.total), (0, 2, 4));
    let provernode_core::split::PartWork::Join {
        left: l, right: r, ..
    } = &part.work
    else {
        panic!("a join's input holds the two proofs")
    };
    assert_eq!(
        provernode_core::ProofEnvelope::decode(l).unwrap().proof,
        b"s0",
        "the left proof first"
    );
    assert_eq!(provernode_core::ProofEnvelope::decode(r).unwrap().proof, b"s1");
    f.store
        .complete(
            &lease.lease_ref(),
            &envelope(provernode_core::split::JOIN_KIND, b"j01"),
            b"j01",
            2,
        )
        .await
        .unwrap();
    assert!(join_of(&f, parent, 0, 4).await.is_none(), "0..2 waits for 2..4");
    prove_part(&f, right.id, b"j23").await;
    let last = join_of(&f, parent, 0, 4).await.expect("the final join");
    let lease = claim_task(&f, last.id).await;
    let part = provernode_core::split::PartInput::decode(&lease.input).unwrap();
    assert!(part.is_final());
    assert!(
        matches!(&part.work, provernode_core::split::PartWork::Join { public_output, .. } if public_output == b"journal")
    );
    let proof = envelope("succinct", b"journal");
    f.store
        .complete(&lease.lease_ref(), &proof, b"journal", 12_345)
        .await
        .unwrap();
    let p = f.store.task(parent).await.unwrap().unwrap();
    assert_eq!((p.state, p.cycles), (TaskState::Succeeded, Some(12_345)));
    assert_eq!(
        f.store.proof(parent).await.unwrap(),
        Some(proof),
        "the final join's proof is the parent's"
    );
    let progress = f.store.split_progress(parent).await.unwrap().unwrap();
    assert_eq!((progress.segments_proved, progress.joins_done), (4, 3));
    assert!(
        f.store.claim(&claim_req("w")).await.unwrap().is_none(),
        "nothing is left"
    );
    // Lists: parts left out, or only one split task's.
    let ids = |tasks: Vec<provernode_store::TaskRecord>| -> Vec<provernode_store::TaskId> {
        tasks.into_iter().map(|t| t.id).collect()
    };
    let submitted = ids(f
        .store
        .list(&ListFilter {
            parts: provernode_store::PartsFilter::Exclude,
            ..ListFilter::default()
        })
        .await
        .unwrap());
    assert_eq!(submitted, vec![parent]);
    let family = f
        .store
        .list(&ListFilter {
            parts: provernode_store::PartsFilter::Of(parent),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(family.len(), 4 + 3, "4 segments and 3 joins");
    assert!(family.iter().all(|t| t.parent_id == Some(parent)));
    assert_eq!(
        ids(f.store.list(&ListFilter::default()).await.unwrap()).len(),
        1 + 7
    );
    // The parts' proofs and inputs are spent: deleted with the parent's end
    // (the rows stay), the parent's own proof kept.
    assert_eq!(f.part_proofs_kept(parent).await, (0, 0));
    assert_eq!(f.store.proof(segments[0]).await.unwrap(), None);
    assert!(f.store.proof(parent).await.unwrap().is_some());
}

async fn a_damaged_part_proof_is_proved_again_and_a_failed_part_fails_its_split_task(f: Fixture) {
    let (parent, segments) = split_task(&f, 2).await;
    prove_part(&f, segments[0], b"s0").await;
    f.tamper(&format!(
        "UPDATE results SET envelope = substr(envelope, 1, 40) WHERE task_id = '{}'",
        segments[0]
    ))
    .await;
    prove_part(&f, segments[1], b"s1").await;
    assert!(
        join_of(&f, parent, 0, 2).await.is_none(),
        "a damaged proof is not joined"
    );
    let s0 = f.store.task(segments[0]).await.unwrap().unwrap();
    assert_eq!(s0.state, TaskState::Queued, "the damaged part is proved again");
    assert!(s0.detail.unwrap_or_default().contains("damaged"));
    prove_part(&f, segments[0], b"s0 again").await;
    let last = join_of(&f, parent, 0, 2)
        .await
        .expect("joined once both proofs read back");
    let lease = claim_task(&f, last.id).await;
    f.store
        .fail(&lease.lease_ref(), &failure(Cause::BackendError, false))
        .await
        .unwrap();
    let p = f.store.task(parent).await.unwrap().unwrap();
    assert_eq!(
        (p.state, p.cause),
        (TaskState::Failed, Some(Cause::DependencyFailed))
    );
    let detail = p.detail.unwrap();
    assert!(
        detail.contains(&last.id.to_string()) && detail.contains("segments 0..2"),
        "{detail}"
    );
    assert_eq!(
        f.part_proofs_kept(parent).await,
        (0, 0),
        "a failed split's part proofs go too"
    );
}

async fn cancelling_a_split_task_cancels_its_parts_and_their_holders_see_it(f: Fixture) {
    let (parent, segments) = split_task(&f, 3).await;
    let held = claim_task(&f, segments[1]).await;
    assert_eq!(
        f.store.cancel(parent, "no longer needed").await.unwrap(),
        CancelOutcome::Cancelled
    );
    for s in &segments {
        let t = f.store.task(*s).await.unwrap().unwrap();
        assert_eq!((t.state, t.cause), (TaskState::Cancelled, Some(Cause::Cancelled)));
        assert!(t.detail.unwrap().contains(&parent.to_string()));
    }
    assert!(matches!(
        f.store.heartbeat(&held.lease_ref(), 10_000).await.unwrap(),
        LeaseStatus::Gone {
            state: TaskState::Cancelled
        }
    ));
    let attempts = f.store.attempts(segments[1]).await.unwrap();
    assert_eq!(attempts[0].outcome.as_deref(), Some("cancelled"));
    assert!(f.store.claim(&claim_req("w")).await.unwrap().is_none());
    assert_eq!(f.part_proofs_kept(parent).await, (0, 0));
}

async fn proving_rates_average_long_attempts_and_a_calibration_replaces_them(f: Fixture) {
    assert!(f.store.proving_rates().await.unwrap().is_empty());
    let kind = "execution-record";
    let prove = |cycles: u64, ms: i64| {
        let store = f.store.clone();
        let clock = f.clock.clone();
        async move {
            store
                .submit(task(format!("r{cycles}{ms}").as_bytes()))
                .await
                .unwrap();
            let lease = store.claim(&claim_req("w")).await.unwrap().unwrap();
            clock.fetch_add(ms, Ordering::SeqCst);
            store
                .complete(&lease.lease_ref(), &envelope(kind, b"out"), b"out", cycles)
                .await
                .unwrap();
        }
    };
    prove(1_000_000, 2_000).await;
    let rates = f.store.proving_rates().await.unwrap();
    assert_eq!(rates.len(), 1);
    assert_eq!(
        (rates[0].backend.as_str(), rates[0].proof_kind.as_str()),
        ("trace", kind)
    );
    assert!((rates[0].cycles_per_sec - 500_000.0).abs() < 1.0, "{rates:?}");
    prove(1_000_000, 1_000).await;
    // A moving average: 0.7 × 500,000 + 0.3 × 1,000,000.
    let rate = &f.store.proving_rates().await.unwrap()[0];
    assert!((rate.cycles_per_sec - 650_000.0).abs() < 1.0, "{rate:?}");
    assert_eq!((rate.samples, rate.source.as_str()), (2, "attempts"));
    // Start-up dominated attempts do not count.
    prove(1_000_000, 10).await;
    prove(1_000, 5_000).await;
    assert_eq!(f.store.proving_rates().await.unwrap()[0].samples, 2);

    f.store
        .record_rate("trace", kind, 42.0, "calibrate")
        .await
        .unwrap();
    let rate = &f.store.proving_rates().await.unwrap()[0];
    assert_eq!(
        (rate.cycles_per_sec, rate.samples, rate.source.as_str()),
        (42.0, 1, "calibrate")
    );
    assert!(matches!(
        f.store.record_rate("trace", kind, f64::NAN, "calibrate").await,
        Err(StoreError::Refused(_))
    ));
    f.store.submit(task(b"leased with rates")).await.unwrap();
    let lease = f.store.claim(&claim_req("w")).await.unwrap().unwrap();
    assert_eq!(lease.rates, vec![(kind.to_owned(), 42.0)]);
}

async fn a_split_task_without_a_timeout_gives_its_parts_one_sized_for_a_segment(f: Fixture) {
    f.store
        .record_rate("trace", "succinct", 100.0, "calibrate")
        .await
        .unwrap();
    let parent = f
        .store
        .submit(NewTask {
            proof_kind: Some("succinct".into()),
            limits: TaskLimits {
                timeout_ms: 900_000,
                timeout_from_rate: true,
                ..TaskLimits::default()
            },
            ..task(b"long")
        })
        .await
        .unwrap()
        .id;
    assert!(
        f.store
            .task(parent)
            .await
            .unwrap()
            .unwrap()
            .limits
            .timeout_from_rate
    );
    let lease = f.store.claim(&claim_req("planner")).await.unwrap().unwrap();
    f.store
        .complete(&lease.lease_ref(), &plan(2), b"", 1)
        .await
        .unwrap();
    // 2^16 cycles at 100 a second: 60 s + 3 × 655.36 s.
    let parts: Vec<_> = f
        .store
        .list(&ListFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.parent_id == Some(parent))
        .collect();
    assert_eq!(parts.len(), 2);
    for p in parts {
        assert_eq!(p.limits.timeout_ms, 2_026_080, "{p:?}");
    }
}

/// Issue 24: a program is stored once by its id, tasks refer to it without
/// carrying its ELF, and it cannot be deleted while tasks reference it.
async fn a_program_is_stored_once_and_tasks_refer_to_it_by_id(f: Fixture) {
    let elf = b"\x7fELF an uploaded program".to_vec();
    let id = ProgramId::of_elf(&elf);
    let (record, created) = f
        .store
        .put_program(&id, "uploaded", Abi::Sp1, &elf)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (record.id, record.name.as_str(), record.abi),
        (id, "uploaded", Abi::Sp1)
    );
    assert_eq!(
        (record.size, record.tasks, record.last_task_ms),
        (elf.len() as u64, 0, None)
    );
    // Again, under another name: the same record, the first name kept.
    f.advance(5);
    let (again, created) = f.store.put_program(&id, "renamed", Abi::Sp1, &elf).await.unwrap();
    assert!(!created);
    assert_eq!(again, record);
    // Bytes that are not the id's are refused.
    let wrong = f
        .store
        .put_program(&id, "x", Abi::Sp1, b"\x7fELF other")
        .await
        .unwrap_err();
    assert!(matches!(wrong, StoreError::Corrupt(_)), "{wrong}");
    assert_eq!(
        f.store.program_elf(&id).await.unwrap(),
        Some(("uploaded".to_owned(), elf.clone()))
    );

    // A task that names the stored program without its ELF.
    let by_id = NewTask {
        program_id: id,
        program_name: "uploaded".into(),
        abi: Abi::Sp1,
        elf: Vec::new(),
        ..task(b"in")
    };
    let submitted = f.store.submit(by_id.clone()).await.unwrap();
    f.advance(5);
    // Many at once, as a busy API submits them: every one is stored (in
    // SQLite a read before the write could not be upgraded under load and
    // failed as "database is locked").
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (store, task) = (
                f.store.clone(),
                NewTask {
                    priority: -1,
                    ..by_id.clone()
                },
            );
            tokio::spawn(async move {
                for _ in 0..20 {
                    store.submit(task.clone()).await.unwrap();
                }
            })
        })
        .collect();
    for r in racers {
        r.await.unwrap();
    }
    let inline = f.store.submit(task(b"other")).await.unwrap();
    let lease = f
        .store
        .claim(&ClaimRequest {
            max_memory_bytes: None,
            ..claim_req("w")
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.task.id, submitted.id);
    assert_eq!(lease.elf, elf, "the lease carries the stored ELF");

    // An unknown program without an ELF is refused, naming it.
    let unknown = ProgramId::of_elf(b"never stored");
    let refused = f
        .store
        .submit(NewTask {
            program_id: unknown,
            ..by_id.clone()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::UnknownProgram(p) if p == unknown),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("provernode programs upload"),
        "{refused}"
    );

    let all = f.store.programs().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].id, id, "oldest first");
    assert_eq!((all[0].tasks, all[0].last_task_ms.is_some()), (161, true));
    let inline_id = f.store.task(inline.id).await.unwrap().unwrap().program_id;
    assert_eq!(all[1].id, inline_id);
    assert_eq!(f.store.program_ids().await.unwrap(), [id, inline_id]);
    assert_eq!(f.store.program(&id).await.unwrap().unwrap().tasks, 161);
    assert_eq!(f.store.program(&unknown).await.unwrap(), None);
    assert_eq!(f.store.program_elf(&unknown).await.unwrap(), None);

    // In use: refused; unused: deleted; gone: not found.
    assert_eq!(
        f.store.delete_program(&id).await.unwrap(),
        provernode_store::DeleteProgramOutcome::InUse { tasks: 161 }
    );
    let spare = b"\x7fELF spare".to_vec();
    let spare_id = ProgramId::of_elf(&spare);
    f.store
        .put_program(&spare_id, "spare", Abi::Risc0, &spare)
        .await
        .unwrap();
    assert_eq!(
        f.store.delete_program(&spare_id).await.unwrap(),
        provernode_store::DeleteProgramOutcome::Deleted
    );
    assert_eq!(
        f.store.delete_program(&spare_id).await.unwrap(),
        provernode_store::DeleteProgramOutcome::NotFound
    );
    assert_eq!(f.store.programs().await.unwrap().len(), 2);

    // Bytes damaged behind the store's back are refused as they are read.
    let one_byte = match f.database {
        Database::Sqlite(_) => "x'00'",
        Database::Postgres(_) => "'\\x00'::bytea",
    };
    f.tamper(&format!("UPDATE programs SET elf = {one_byte} WHERE id = '{id}'"))
        .await;
    let damaged = f.store.program_elf(&id).await.unwrap_err();
    assert!(matches!(damaged, StoreError::Corrupt(_)), "{damaged}");
}

macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::sqlite().await).await
            })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::postgres().await).await
            })*
        }
    };
}

on_every_store!(
    submit_then_read_back_and_list,
    an_idempotency_key_returns_the_first_task_and_refuses_a_different_one,
    claims_follow_priority_then_age_and_skip_other_backends,
    concurrent_claimers_never_take_the_same_task,
    a_result_is_accepted_once_and_a_duplicate_is_ignored,
    a_late_result_for_an_expired_lease_is_ignored_and_the_new_holder_wins,
    heartbeats_keep_a_lease_alive,
    lost_leases_count_apart_and_quarantine_only_past_their_larger_bound,
    lost_leases_do_not_use_up_the_tasks_own_failures,
    a_released_lease_requeues_without_charging_the_task,
    lists_stop_at_their_byte_bound,
    retryable_failures_requeue_then_quarantine_with_every_cause,
    a_permanent_failure_fails_at_once,
    a_running_attempts_phase_is_recorded_for_its_lease_only,
    a_retried_task_is_queued_with_a_fresh_budget_and_the_retry_is_recorded,
    diagnostics_count_tasks_by_state_and_reason_and_list_failed_attempts_newest_first,
    cancelling_ends_queued_and_leased_tasks_and_the_holder_sees_it,
    deadlines_end_tasks_and_are_never_claimed_past,
    expiring_the_leases_of_a_dead_owner_counts_an_attempt,
    a_dependent_waits_for_its_dependencies_then_gets_their_proofs_as_input,
    a_dependency_that_ends_without_a_proof_fails_its_dependents,
    an_unknown_dependency_is_refused_naming_it,
    a_retried_aggregate_is_the_same_task_even_after_its_input_was_assembled,
    a_split_task_is_joined_as_its_parts_arrive_and_ends_with_the_final_join,
    a_damaged_part_proof_is_proved_again_and_a_failed_part_fails_its_split_task,
    cancelling_a_split_task_cancels_its_parts_and_their_holders_see_it,
    proving_rates_average_long_attempts_and_a_calibration_replaces_them,
    a_split_task_without_a_timeout_gives_its_parts_one_sized_for_a_segment,
    a_program_is_stored_once_and_tasks_refer_to_it_by_id,
);

/// Issue 19: after the first `SQLITE_FULL` a pooled connection stayed inside
/// a transaction that never committed; later submissions were acknowledged
/// and vanished when the connection closed, and nothing recovered when space
/// was freed. Here the database lives on a real 4 MiB filesystem, is filled
/// from several tasks at once until the disk is full, then space is freed
/// and the database reopened: every acknowledged task must be there, and
/// none that failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_acknowledges_only_what_it_committed_and_recovers() {
    let disk = test_fs::SmallDisk::mount(4 << 20).unwrap_or_else(|e| panic!("{e}"));
    let filler = disk.fill("filler", 1 << 20).unwrap();
    let path = disk.path().join("queue.sqlite");
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStore::open(&path, &options).await.unwrap());
    let mut acknowledged = HashSet::new();
    let mut refused = 0;
    for round in 0..40u32 {
        let mut batch = tokio::task::JoinSet::new();
        for i in 0..8u32 {
            let store = store.clone();
            batch.spawn(async move {
                let mut input = vec![0u8; 16 << 10];
                input[..8].copy_from_slice(&u64::from(round * 8 + i).to_le_bytes());
                store.submit(task(&input)).await
            });
        }
        while let Some(r) = batch.join_next().await {
            match r.unwrap() {
                Ok(s) => {
                    acknowledged.insert(s.id);
                }
                Err(StoreError::DiskFull { location, .. }) => {
                    assert!(location.contains("queue.sqlite"), "{location}");
                    refused += 1;
                }
                Err(e) => panic!("a full disk must say so, got: {e}"),
            }
        }
        // Reads keep working, and every acknowledged task is visible on
        // every connection of the pool, every time.
        for _ in 0..4 {
            let seen = store
                .list(&ListFilter {
                    limit: 1000,
                    ..ListFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(seen.len(), acknowledged.len(), "round {round}");
        }
    }
    assert!(
        refused > 0,
        "the disk never filled ({} bytes free)",
        disk.free_bytes()
    );
    assert!(acknowledged.len() > 10, "{}", acknowledged.len());
    let e = store.ping().await.unwrap_err();
    assert!(matches!(e, StoreError::DiskFull { .. }), "{e}");
    assert!(e.to_string().contains("free space"), "{e}");

    // Space freed: the store notices by itself and takes writes again.
    std::fs::remove_file(&filler).unwrap();
    store.ping().await.unwrap();
    acknowledged.insert(store.submit(task(b"after")).await.unwrap().id);
    store.close().await;

    let reopened = SqliteStore::open(&path, &options).await.unwrap();
    let stored: HashSet<_> = reopened
        .list(&ListFilter {
            limit: 1000,
            max_bytes: usize::MAX,
            ..ListFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(stored, acknowledged, "acknowledged and stored differ");
    reopened.close().await;
}

/// Issue 19, item 2: damage found while running is not "retry it": reads
/// that meet it say the database is damaged, and so does `ping` (what
/// `/readyz` reports) from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_met_while_running_is_named_and_reported_by_ping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.sqlite");
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, &options).await.unwrap();
    for i in 0..200u32 {
        store
            .submit(task(&[i.to_le_bytes().as_slice(), &[0u8; 500]].concat()))
            .await
            .unwrap();
    }
    store.close().await;
    // The pool's connections finish closing on their own threads after
    // `close` returns; the last one folds the write-ahead log into the
    // file and removes it. Damage the file only once it holds everything.
    let wal = dir.path().join("queue.sqlite-wal");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while wal.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if wal.exists() {
        // Under load the pool's last connection can outlive the wait; fold
        // the log in from a connection of our own (closing the last
        // connection removes it), so the damage lands in the file.
        use sqlx::{ConnectOptions, Connection};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    // (A connection SQLite still counts open keeps the log file, emptied.)
    let folded = std::fs::metadata(&wal).map_or(true, |m| m.len() == 0);
    assert!(
        folded,
        "the write-ahead log was not folded in within 30 s of close"
    );
    let mut bytes = std::fs::read(&path).unwrap();
    let pages = bytes.len() / 4096;
    for page in [pages - 2, pages - 1] {
        for b in &mut bytes[page * 4096..page * 4096 + 12] {
            *b ^= 0xff;
        }
    }
    std::fs::write(&path, bytes).unwrap();
    // Opened without the start-up check, as a node whose file was damaged
    // under it would be.
    let store = SqliteStore::open(&path, &options).await.unwrap();
    store.ping().await.unwrap();
    let e = store
        .list(&ListFilter {
            limit: 1000,
            ..ListFilter::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::DatabaseCorrupt { .. }), "{e}");
    assert!(
        e.to_string().contains("restore the database from a backup"),
        "{e}"
    );
    let e = store.ping().await.unwrap_err();
    assert!(matches!(e, StoreError::DatabaseCorrupt { .. }), "{e}");
}
