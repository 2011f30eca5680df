//! The agent: the loop that turns queued tasks into verified proofs.
//!
//! Each worker slot claims a task from a [`WorkSource`], runs the attempt in
//! its isolated worker ([`provernode_worker::Slot`]) while a heartbeat keeps
//! the lease alive, verifies the proof itself (the right backend, program
//! and input, and the proof checks), and reports the result or the cause of
//! failure. A lease the source says is gone (expired, cancelled, past its
//! deadline) stops the attempt at once.
//!
//! Architecture invariant: the agent never writes task state itself; every
//! change goes through the work source, which accepts a result only for a
//! live lease. The embedded node's source is the store in-process; a
//! cluster agent's will be the broker's HTTP API.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use provernode_backends::Registry;
use provernode_core::{sha256, Cause, ProofEnvelope, Readiness, TaskState};
use provernode_store::{
    AttemptFailure, ClaimRequest, Completion, FailureOutcome, Lease, LeaseRef, LeaseStatus, ReleaseOutcome,
    Store, StoreError,
};
use provernode_worker::{AttemptResult, AttemptSpec, Slot, SlotConfig, StopReason};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

mod http;
mod pool;

pub use http::HttpSource;

/// Why a work source call failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source could not be reached or failed; the same call may succeed later.
    #[error("work source unavailable: {0}")]
    Unavailable(String),
    /// The source refused the call; repeating it will not help.
    #[error("work source refused the request: {0}")]
    Refused(String),
}

impl From<StoreError> for SourceError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            SourceError::Unavailable(e.to_string())
        } else {
            SourceError::Refused(e.to_string())
        }
    }
}

/// Where an agent gets work and reports on it.
#[async_trait]
pub trait WorkSource: Send + Sync + 'static {
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, SourceError>;
    /// Extends the lease; `phase`, when given, is what the attempt is doing
    /// now, recorded in its history.
    async fn heartbeat(
        &self,
        lease: &LeaseRef,
        ttl_ms: u64,
        phase: Option<&str>,
    ) -> Result<LeaseStatus, SourceError>;
    async fn complete(
        &self,
        lease: &LeaseRef,
        envelope: &[u8],
        public_output: &[u8],
        cycles: u64,
    ) -> Result<Completion, SourceError>;
    async fn fail(&self, lease: &LeaseRef, failure: &AttemptFailure) -> Result<FailureOutcome, SourceError>;
    /// Hands a lease back uncharged: the attempt ended for this machine's
    /// reasons (it is stopping, or cannot start workers).
    async fn release(&self, lease: &LeaseRef, detail: &str) -> Result<ReleaseOutcome, SourceError>;
}

/// The embedded node's source: the store itself.
pub struct StoreSource(pub Arc<dyn Store>);

#[async_trait]
impl WorkSource for StoreSource {
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Lease>, SourceError> {
        Ok(self.0.claim(request).await?)
    }
    async fn heartbeat(
        &self,
        lease: &LeaseRef,
        ttl_ms: u64,
        phase: Option<&str>,
    ) -> Result<LeaseStatus, SourceError> {
        if let Some(phase) = phase {
            self.0.set_phase(lease, phase).await?;
        }
        Ok(self.0.heartbeat(lease, ttl_ms).await?)
    }
    async fn complete(
        &self,
        lease: &LeaseRef,
        envelope: &[u8],
        public_output: &[u8],
        cycles: u64,
    ) -> Result<Completion, SourceError> {
        Ok(self.0.complete(lease, envelope, public_output, cycles).await?)
    }
    async fn fail(&self, lease: &LeaseRef, failure: &AttemptFailure) -> Result<FailureOutcome, SourceError> {
        Ok(self.0.fail(lease, failure).await?)
    }
    async fn release(&self, lease: &LeaseRef, detail: &str) -> Result<ReleaseOutcome, SourceError> {
        Ok(self.0.release(lease, detail).await?)
    }
}

/// A delay around `base` with ±50 % jitter, so many agents retrying after
/// the same outage do not arrive together.
fn jittered(base: Duration) -> Duration {
    use rand::Rng;
    base.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

/// Repeats `call` while the source is unavailable, with jittered backoff,
/// until it answers, refuses, or the agent must stop now.
async fn with_retries<T, F, Fut>(what: &str, shutdown: &watch::Receiver<Shutdown>, mut call: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SourceError>>,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        match call().await {
            Ok(v) => return Some(v),
            Err(SourceError::Refused(e)) => {
                tracing::error!(%e, "{what} refused; giving up on it");
                return None;
            }
            Err(SourceError::Unavailable(e)) => {
                if *shutdown.borrow() == Shutdown::Now {
                    tracing::error!(%e, "{what} failed and the agent is stopping; the lease will expire");
                    return None;
                }
                let delay = jittered(backoff);
                tracing::warn!(%e, "{what} failed; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[derive(Clone)]
pub struct AgentConfig {
    /// Prefix of every lease owner this agent writes (`<node id>/w<slot>`).
    pub owner: String,
    /// One config per worker slot.
    pub slots: Vec<SlotConfig>,
    /// Backends this agent claims work for.
    pub backends: Vec<String>,
    pub lease_ttl: Duration,
    /// Claim only tasks whose attempt memory limit fits here.
    pub max_claim_memory_bytes: Option<u64>,
    /// The sum of the memory limits of the slots' workers, running an
    /// attempt or idling warm, stays within this (`None`: no budget). Slots
    /// then take a large task only when the others leave room for it (an
    /// idle worker gives its room back), so two 14 GB SP1 provers never
    /// share a 24 GB machine and push it into the kernel's OOM killer.
    pub memory_budget_bytes: Option<u64>,
    /// Backends whose start-up is costly (SP1): their tasks go to a slot
    /// whose worker idles warm for them rather than start a second prover.
    pub warm_first: Vec<String>,
    /// How long an idle slot waits before asking again (a submit wakes it sooner).
    pub idle_poll: Duration,
    /// Verifies every proof before it is reported.
    pub registry: Registry,
    /// Fault injection for tests: hold the first verified result this long,
    /// without heartbeats, before reporting it (an agent cut off from its
    /// source). `None` in production.
    pub hold_first_result: Option<Duration>,
    /// Where the slots report conditions that make the node not ready (a
    /// worker cannot be started: descriptors, disk, memory).
    pub readiness: Arc<Readiness>,
    /// Which backends' tasks this agent splits into parts when their
    /// execution is longer than one segment, and the segment size.
    pub split: SplitPolicy,
    /// Backends whose tasks are not claimed now: a file they need (an
    /// artifact) has no good copy. Set by whoever verifies the artifacts.
    pub blocked_backends: Arc<std::sync::RwLock<Vec<String>>>,
}

impl AgentConfig {
    /// The backends whose tasks may be claimed now.
    fn claimable_backends(&self) -> Vec<String> {
        let blocked = self
            .blocked_backends
            .read()
            .map(|b| b.clone())
            .unwrap_or_default();
        self.backends
            .iter()
            .filter(|b| !blocked.contains(b))
            .cloned()
            .collect()
    }
}

/// Which tasks an agent splits (issue 22): those of `backends` whose
/// execution is longer than `2^segment_po2` cycles (a backend that cannot
/// split, or a proof kind that is not split, is proved whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitPolicy {
    pub backends: Vec<String>,
    pub segment_po2: u32,
}

impl Default for SplitPolicy {
    /// RISC Zero at its own default segment size (2^20 cycles).
    fn default() -> Self {
        SplitPolicy {
            backends: vec!["risc0".to_owned()],
            segment_po2: 20,
        }
    }
}

impl SplitPolicy {
    pub fn po2_for(&self, backend: &str) -> Option<u32> {
        self.backends
            .iter()
            .any(|b| b == backend)
            .then_some(self.segment_po2)
    }
}

/// What a running attempt is doing, as its heartbeats report it: its worker
/// proves (from starting the worker to the proof), this process checks the
/// proof, then reports the outcome (a broker verifies again meanwhile).
pub const PHASE_PROVING: &str = "proving";
pub const PHASE_VERIFYING: &str = "verifying";
pub const PHASE_REPORTING: &str = "reporting";

/// The readiness check the slots report worker start-up faults under.
pub const WORKERS_CHECK: &str = "workers";
/// The readiness component of the work source: the broker (agent) or the
/// store (node) answers claims.
pub const CLAIMS_CHECK: &str = "claims";

/// Tells the agent to stop: `Drain` lets running attempts finish, `Now`
/// stops them (their leases are reported lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Running,
    Drain,
    Now,
}

/// The slots' shared view of the memory budget and their warm workers
/// (see [`pool`]), and how they signal each other about it.
struct Shared {
    pool: tokio::sync::Mutex<pool::Pool>,
    /// Wakes a slot whose idle worker another slot's task needs retired.
    retire: Vec<Notify>,
    /// Wakes a slot waiting for evicted workers to be gone.
    released: Notify,
}

/// Runs all slots until shutdown; returns when every slot has stopped.
pub async fn run(
    config: AgentConfig,
    source: Arc<dyn WorkSource>,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<Shutdown>,
) {
    let shared = Arc::new(Shared {
        pool: tokio::sync::Mutex::new(pool::Pool::new(
            config.memory_budget_bytes,
            config.warm_first.clone(),
            config.slots.len(),
        )),
        retire: config.slots.iter().map(|_| Notify::new()).collect(),
        released: Notify::new(),
    });
    let mut slots = JoinSet::new();
    for (index, slot_config) in config.slots.clone().into_iter().enumerate() {
        let owner = format!("{}/{}", config.owner, slot_config.name);
        let slot = Slot::new(slot_config);
        slots.spawn(slot_loop(
            slot,
            index,
            owner,
            config.clone(),
            source.clone(),
            wake.clone(),
            shutdown.clone(),
            shared.clone(),
        ));
    }
    while slots.join_next().await.is_some() {}
}

#[allow(clippy::too_many_arguments)]
async fn slot_loop(
    mut slot: Slot,
    index: usize,
    owner: String,
    config: AgentConfig,
    source: Arc<dyn WorkSource>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<Shutdown>,
    shared: Arc<Shared>,
) {
    let mut request = ClaimRequest {
        owner: owner.clone(),
        backends: config.backends.clone(),
        lease_ttl_ms: config.lease_ttl.as_millis() as u64,
        max_memory_bytes: config.max_claim_memory_bytes,
    };
    let mut backoff = Duration::from_millis(100);
    let mut infrastructure_backoff: Option<Duration> = None;
    loop {
        if *shutdown.borrow() != Shutdown::Running {
            break;
        }
        // Claims go one slot at a time, so that what one slot takes is seen
        // by the next before it asks.
        let mut pool = shared.pool.lock().await;
        if pool.must_retire(index) {
            drop(pool);
            tracing::info!(slot = %owner, "retiring this slot's idle worker: another slot's task needs its memory");
            slot.retire().await;
            metrics::counter!("provernode_idle_workers_retired_total", "reason" => "memory").increment(1);
            {
                let mut pool = shared.pool.lock().await;
                pool.retired(index);
                publish_held(&pool, &config);
            }
            shared.released.notify_waiters();
            continue;
        }
        let plan = pool.plan(index, &config.claimable_backends(), config.max_claim_memory_bytes);
        let claimed = if plan.backends.is_empty() {
            // Every backend this agent serves is left to slots warm for it.
            Ok(None)
        } else {
            request.backends = plan.backends;
            request.max_memory_bytes = plan.max_memory_bytes;
            source.claim(&request).await
        };
        let evicted = match &claimed {
            Ok(Some(lease)) => pool.admit(index, lease.task.limits.memory_limit_bytes, &lease.task.backend),
            Ok(None) => {
                if pool.found_nothing(index) {
                    // This slot's idle worker may now give its memory to
                    // a task another slot could not fit.
                    wake.notify_waiters();
                }
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        publish_held(&pool, &config);
        drop(pool);
        match &claimed {
            Ok(_) => config.readiness.set(
                CLAIMS_CHECK,
                provernode_core::ComponentStatus::Ok,
                "claims answered",
            ),
            Err(e) => config.readiness.set(
                CLAIMS_CHECK,
                provernode_core::ComponentStatus::Failing,
                format!("cannot claim work: {e}"),
            ),
        }
        match claimed {
            Ok(Some(lease)) => {
                backoff = Duration::from_millis(100);
                if !evicted.is_empty() {
                    wait_for_retired(&shared, &evicted, &owner, config.lease_ttl / 3).await;
                }
                let backend = lease.task.backend.clone();
                let ended =
                    run_attempt(&mut slot, &owner, lease, &config, source.as_ref(), &mut shutdown).await;
                {
                    let mut pool = shared.pool.lock().await;
                    pool.finished(index, slot.worker_memory_limit(), &backend);
                    publish_held(&pool, &config);
                }
                // What changed may let a waiting slot take a task now.
                wake.notify_waiters();
                match ended {
                    AttemptEnd::Ran => {
                        if infrastructure_backoff.take().is_some() {
                            config.readiness.recover(WORKERS_CHECK);
                            tracing::info!(slot = %owner, "workers start again");
                        }
                    }
                    AttemptEnd::MachineFault(detail) => {
                        // The machine cannot run attempts now: stop claiming
                        // for a while instead of cycling every queued task
                        // through the same fault.
                        let delay = infrastructure_backoff.map_or(Duration::from_secs(1), |d: Duration| {
                            (d * 2).min(Duration::from_secs(60))
                        });
                        infrastructure_backoff = Some(delay);
                        config.readiness.degrade(
                            WORKERS_CHECK,
                            format!("{detail}; claims paused, next try in {delay:?}"),
                        );
                        tracing::error!(slot = %owner, %detail, retry_in = ?delay, "this machine cannot run attempts; the task went back to the queue uncharged");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = shared.retire[index].notified() => {}
                    _ = tokio::time::sleep(config.idle_poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                let delay = jittered(backoff);
                tracing::warn!(slot = %owner, error = %e, "cannot claim work; retrying in {delay:?}");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shared.retire[index].notified() => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    slot.retire().await;
    {
        let mut pool = shared.pool.lock().await;
        pool.retired(index);
        publish_held(&pool, &config);
    }
    shared.released.notify_waiters();
    tracing::debug!(slot = %owner, "slot stopped");
}

/// The memory the slots' workers hold against the budget, running or idle,
/// and which backends have a warm worker (`/readyz`).
fn publish_held(pool: &pool::Pool, config: &AgentConfig) {
    metrics::gauge!("provernode_worker_memory_held_bytes").set(pool.held_bytes() as f64);
    for backend in &config.backends {
        let warm = pool.warm_for(backend);
        let detail = match warm {
            0 => "available, cold: the next attempt starts a worker".to_owned(),
            n => format!("available, warm: {n} worker(s)"),
        };
        config.readiness.set(
            &format!("backend:{backend}"),
            provernode_core::ComponentStatus::Ok,
            detail,
        );
    }
}

/// Waits until the idle workers evicted for this slot's task are gone, so
/// that the new worker never runs beside them. Retiring takes a kill and a
/// wait; past `patience` (a third of the lease, which is not renewed while
/// waiting) the attempt starts anyway, each worker still caged by its own limit.
async fn wait_for_retired(shared: &Shared, evicted: &[usize], owner: &str, patience: Duration) {
    for &j in evicted {
        shared.retire[j].notify_one();
    }
    let started = Instant::now();
    loop {
        let released = shared.released.notified();
        if !shared.pool.lock().await.still_held(evicted) {
            return;
        }
        if started.elapsed() >= patience {
            tracing::warn!(slot = %owner, waited = ?started.elapsed(), "idle workers asked to give back their memory are still running; starting the attempt anyway");
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(250), released).await;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How an attempt ended, for the slot's loop.
enum AttemptEnd {
    /// It ran (whatever its outcome).
    Ran,
    /// It could not run for the machine's reasons.
    MachineFault(String),
}

async fn run_attempt(
    slot: &mut Slot,
    owner: &str,
    lease: Lease,
    config: &AgentConfig,
    source: &dyn WorkSource,
    shutdown: &mut watch::Receiver<Shutdown>,
) -> AttemptEnd {
    let task = &lease.task;
    let lease_ref = lease.lease_ref();
    let mut timeout = Duration::from_millis(task.limits.timeout_ms);
    let mut deadline_bound = false;
    if let Some(deadline) = task.deadline_ms {
        let left = Duration::from_millis(u64::try_from(deadline - now_ms()).unwrap_or(0));
        if left < timeout {
            timeout = left;
            deadline_bound = true;
        }
    }
    let spec = AttemptSpec {
        task_id: task.id.to_string(),
        attempt: lease.attempt,
        backend: task.backend.clone(),
        program_name: task.program_name.clone(),
        proof_kind: task.proof_kind.clone(),
        elf: lease.elf.clone(),
        input: lease.input.clone(),
        max_cycles: task.limits.max_cycles,
        max_guest_memory_bytes: task.limits.max_guest_memory_bytes,
        timeout,
        memory_limit_bytes: task.limits.memory_limit_bytes,
        split_po2: config.split.po2_for(&task.backend),
        timeout_rule: timeout_rule(&config.registry, &lease, timeout),
        timeout_cap: task
            .deadline_ms
            .map(|d| Duration::from_millis(u64::try_from(d - now_ms()).unwrap_or(0))),
    };
    tracing::info!(task = %task.id, attempt = lease.attempt, slot = %owner, program = %task.program_name, backend = %task.backend, "attempt started");
    let started = Instant::now();
    let (stop_tx, mut stop_rx) = watch::channel(None::<StopReason>);
    let ttl_ms = config.lease_ttl.as_millis() as u64;
    let (done_tx, mut done_rx) = watch::channel(false);
    // What the attempt does now, sent with the next heartbeat (not at once:
    // a trivial attempt ends before its first heartbeat and costs no write).
    let (phase_tx, phase_rx) = watch::channel(PHASE_PROVING);
    let mut hb_shutdown = shutdown.clone();
    let heartbeat = async {
        let mut every = tokio::time::interval(config.lease_ttl / 3);
        every.tick().await;
        let mut sent_phase: Option<&'static str> = None;
        loop {
            tokio::select! {
                _ = done_rx.changed() => return,
                _ = every.tick() => {}
                _ = hb_shutdown.changed() => {
                    if *hb_shutdown.borrow() == Shutdown::Now {
                        let _ = stop_tx.send(Some(StopReason::Shutdown));
                    }
                    continue;
                }
            }
            let sent = Instant::now();
            let phase = *phase_rx.borrow();
            let new_phase = (sent_phase != Some(phase)).then_some(phase);
            let status = source.heartbeat(&lease_ref, ttl_ms, new_phase).await;
            if status.is_ok() {
                sent_phase = Some(phase);
            }
            tracing::debug!(task = %lease_ref.task_id, took_ms = sent.elapsed().as_millis() as u64, ?status, "heartbeat");
            match status {
                Ok(LeaseStatus::Live { .. }) => {}
                Ok(LeaseStatus::Gone { state }) => {
                    let reason = match state {
                        TaskState::Cancelled => StopReason::Cancelled,
                        TaskState::Failed => StopReason::DeadlinePassed,
                        _ => StopReason::LeaseLost,
                    };
                    tracing::warn!(task = %lease_ref.task_id, ?state, "lease gone; stopping the attempt");
                    let _ = stop_tx.send(Some(reason));
                    return;
                }
                Err(e) => {
                    tracing::warn!(task = %lease_ref.task_id, error = %e, "heartbeat failed; will retry")
                }
            }
        }
    };
    // The lease is kept alive until the outcome is reported: proving,
    // verification here (for trace that re-executes, as long as proving
    // took), then the report, during which a broker verifies again.
    let registry = config.registry.clone();
    let expected = Expected {
        backend: task.backend.clone(),
        program_id: task.program_id,
        input_digest: expected_input_digest(&lease.input),
        limits: provernode_core::Limits {
            max_cycles: task.limits.max_cycles,
            max_memory_bytes: task.limits.max_guest_memory_bytes,
        },
    };
    let labels = AttemptLabels::of(task);
    if lease.attempt == 1 {
        let waited = (now_ms() - task.created_ms).max(0) as f64 / 1000.0;
        metrics::histogram!("provernode_queue_wait_seconds", labels.kind()).record(waited);
    }
    let attempt = async {
        let result = slot.run(&spec, &mut stop_rx).await;
        let checked = match result {
            AttemptResult::Proved { envelope } => {
                metrics::histogram!("provernode_prove_seconds", labels.kind())
                    .record(started.elapsed().as_secs_f64());
                let _ = phase_tx.send(PHASE_VERIFYING);
                let verify_started = Instant::now();
                let verdict = tokio::task::spawn_blocking(move || {
                    check_proof(&registry, &expected, &envelope)
                        .map(|(output, cycles)| (envelope, output, cycles))
                })
                .await
                .unwrap_or_else(|e| Err(format!("the proof check panicked: {e}")));
                let verified = if verdict.is_ok() { "verified" } else { "rejected" };
                metrics::histogram!("provernode_verify_seconds", labels.with_outcome(verified))
                    .record(verify_started.elapsed().as_secs_f64());
                Outcome::Checked(verdict)
            }
            AttemptResult::Failed {
                cause,
                retryable,
                detail,
                stderr_tail,
            } => Outcome::Failed {
                cause,
                retryable,
                detail,
                stderr_tail,
            },
            AttemptResult::Infrastructure { detail } => Outcome::MachineFault(detail),
            AttemptResult::Interrupted { detail } => Outcome::Interrupted(detail),
        };
        if let (Some(hold), Outcome::Checked(Ok(_))) = (config.hold_first_result, &checked) {
            static HELD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if !HELD.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // An agent cut off from its source: no heartbeats either.
                let _ = done_tx.send(true);
                tracing::warn!(task = %task.id, ?hold, "fault injection: holding this result before reporting it");
                tokio::time::sleep(hold).await;
            }
        }
        let _ = phase_tx.send(PHASE_REPORTING);
        let end = report(
            checked,
            &lease,
            deadline_bound,
            started.elapsed(),
            source,
            shutdown,
        )
        .await;
        let _ = done_tx.send(true);
        end
    };
    let (end, ()) = tokio::join!(attempt, heartbeat);
    end
}

/// Reports how an attempt ended (while the caller keeps the lease alive):
/// the verified result, the failure, or the lease handed back uncharged.
async fn report(
    outcome: Outcome,
    lease: &Lease,
    deadline_bound: bool,
    elapsed: Duration,
    source: &dyn WorkSource,
    shutdown: &watch::Receiver<Shutdown>,
) -> AttemptEnd {
    let task = &lease.task;
    let lease_ref = lease.lease_ref();
    let mut end = AttemptEnd::Ran;
    match outcome {
        Outcome::Checked(Ok((envelope, output, cycles))) => {
            let reported = with_retries("reporting the result", shutdown, || {
                source.complete(&lease_ref, &envelope, &output, cycles)
            })
            .await;
            match reported {
                Some(Completion::Accepted) => {
                    let labels = AttemptLabels::of(task);
                    metrics::counter!("provernode_attempts_total", labels.with_outcome("succeeded"))
                        .increment(1);
                    metrics::histogram!(
                        "provernode_attempt_duration_seconds",
                        labels.with_outcome("succeeded")
                    )
                    .record(elapsed.as_secs_f64());
                    metrics::counter!("provernode_cycles_proved_total", labels.kind()).increment(cycles);
                    tracing::info!(task = %task.id, attempt = lease.attempt, cycles, seconds = elapsed.as_secs_f64(), "attempt succeeded");
                }
                Some(Completion::Ignored { reason }) => {
                    tracing::warn!(task = %task.id, attempt = lease.attempt, %reason, "result ignored (late or duplicate)");
                }
                None => tracing::error!(
                    task = %task.id,
                    "the result was not reported; the lease will expire and the task be retried"
                ),
            }
        }
        Outcome::Checked(Err(detail)) => {
            let failure = AttemptFailure {
                cause: Cause::BackendError,
                retryable: true,
                detail,
                stderr_tail: String::new(),
            };
            report_failure(source, shutdown, lease, failure, elapsed).await;
        }
        Outcome::Failed {
            cause,
            retryable,
            detail,
            stderr_tail,
        } => {
            let (cause, retryable, detail) = if deadline_bound && cause == Cause::Timeout {
                // The deadline, not the timeout, ended it: raising the
                // timeout would not help, so say nothing of it.
                (
                    Cause::DeadlinePassed,
                    false,
                    format!(
                        "the task's deadline passed during the attempt, {:.1} s after it started; its worker was stopped (submit with a later deadline_ms to give it longer)",
                        elapsed.as_secs_f64()
                    ),
                )
            } else {
                (cause, retryable, detail)
            };
            let failure = AttemptFailure {
                cause,
                retryable,
                detail,
                stderr_tail,
            };
            report_failure(source, shutdown, lease, failure, elapsed).await;
        }
        Outcome::MachineFault(detail) => {
            metrics::counter!("provernode_attempts_released_total", "reason" => "machine_fault").increment(1);
            release(
                source,
                shutdown,
                lease,
                &format!("this machine could not run the attempt ({detail}); requeued uncharged"),
            )
            .await;
            end = AttemptEnd::MachineFault(detail);
        }
        Outcome::Interrupted(detail) => {
            metrics::counter!("provernode_attempts_released_total", "reason" => "shutdown").increment(1);
            tracing::info!(task = %task.id, attempt = lease.attempt, "attempt interrupted by shutdown; handing the task back uncharged");
            release(source, shutdown, lease, &detail).await;
        }
    }
    end
}

/// Hands the lease back uncharged; if the source cannot be told (it is
/// down and this agent stops now), the lease expires and counts as lost.
async fn release(source: &dyn WorkSource, shutdown: &watch::Receiver<Shutdown>, lease: &Lease, detail: &str) {
    let lease_ref = lease.lease_ref();
    match with_retries("handing the task back", shutdown, || {
        source.release(&lease_ref, detail)
    })
    .await
    {
        Some(ReleaseOutcome::Requeued) => {}
        Some(ReleaseOutcome::Ignored { reason }) => {
            tracing::info!(task = %lease.task.id, %reason, "release ignored")
        }
        None => {
            tracing::error!(task = %lease.task.id, "the task could not be handed back; its lease will expire")
        }
    }
}

/// The labels every attempt metric carries: backend and proof kind (the
/// backend's default kind is `default`), and for some the outcome.
struct AttemptLabels {
    backend: String,
    proof_kind: String,
}

impl AttemptLabels {
    fn of(task: &provernode_store::TaskRecord) -> AttemptLabels {
        AttemptLabels {
            backend: task.backend.clone(),
            proof_kind: task.proof_kind.clone().unwrap_or_else(|| "default".to_owned()),
        }
    }

    fn kind(&self) -> Vec<metrics::Label> {
        vec![
            metrics::Label::new("backend", self.backend.clone()),
            metrics::Label::new("proof_kind", self.proof_kind.clone()),
        ]
    }

    fn with_outcome(&self, outcome: &str) -> Vec<metrics::Label> {
        let mut labels = self.kind();
        labels.push(metrics::Label::new("outcome", outcome.to_owned()));
        labels
    }
}

/// A signal's name for a metric label (`SIGKILL`), or its number.
fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| signal.to_string())
}

/// How an attempt ended, after the parent checked any proof.
enum Outcome {
    Checked(Result<(Vec<u8>, Vec<u8>, u64), String>),
    Failed {
        cause: Cause,
        retryable: bool,
        detail: String,
        stderr_tail: String,
    },
    /// The machine could not run it: requeue uncharged, back off.
    MachineFault(String),
    /// This agent is stopping: requeue uncharged.
    Interrupted(String),
}

/// What a proof for this task must be about, and the guest limits it was
/// proved under (a re-executing verifier uses the same).
struct Expected {
    backend: String,
    program_id: provernode_core::ProgramId,
    input_digest: provernode_core::Digest,
    limits: provernode_core::Limits,
}

async fn report_failure(
    source: &dyn WorkSource,
    shutdown: &watch::Receiver<Shutdown>,
    lease: &Lease,
    failure: AttemptFailure,
    elapsed: Duration,
) {
    let task = &lease.task;
    let (cause, retryable) = (failure.cause, failure.retryable);
    let outcome_label = match cause {
        Cause::Crashed(signal) => {
            metrics::counter!("provernode_worker_crashes_total", "backend" => task.backend.clone(), "signal" => signal_name(signal))
                .increment(1);
            "crashed".to_owned()
        }
        c => c.to_string(),
    };
    let labels = AttemptLabels::of(task).with_outcome(&outcome_label);
    metrics::counter!("provernode_attempts_total", labels.clone()).increment(1);
    metrics::histogram!("provernode_attempt_duration_seconds", labels).record(elapsed.as_secs_f64());
    tracing::warn!(task = %task.id, attempt = lease.attempt, %cause, retryable, detail = %failure.detail, "attempt failed");
    let lease_ref = lease.lease_ref();
    match with_retries("reporting the failure", shutdown, || {
        source.fail(&lease_ref, &failure)
    })
    .await
    {
        Some(FailureOutcome::Ignored { reason }) => {
            tracing::info!(task = %task.id, %reason, "failure report ignored")
        }
        Some(outcome) => tracing::debug!(task = %task.id, ?outcome, "failure recorded"),
        None => tracing::error!(task = %task.id, "the failure was not reported; the lease will expire"),
    }
}

/// The rule that sizes this attempt's timeout from its cycles, when its
/// task named none and this backend's rate for its proof kind is known.
fn timeout_rule(registry: &Registry, lease: &Lease, floor: Duration) -> Option<provernode_core::TimeoutRule> {
    if !lease.task.limits.timeout_from_rate || provernode_core::split::PartInput::is(&lease.input) {
        return None;
    }
    let kind = registry
        .get(&lease.task.backend)
        .ok()?
        .resolve_proof_kind(lease.task.proof_kind.as_deref())
        .ok()?;
    let (_, cycles_per_sec) = lease.rates.iter().find(|(k, _)| k == kind)?;
    Some(provernode_core::TimeoutRule {
        cycles_per_sec: *cycles_per_sec,
        floor,
    })
}

/// The input a proof for this lease names: its own, except for the final
/// join of a split task, which makes the split task's proof (issue 22).
fn expected_input_digest(input: &[u8]) -> provernode_core::Digest {
    if provernode_core::split::PartInput::is(input) {
        if let Ok(part) = provernode_core::split::PartInput::decode(input) {
            if part.is_final() {
                return part.parent_input_digest;
            }
        }
    }
    sha256(input)
}

/// Checks a worker's proof before it is reported: it must decode, verify,
/// and be for this task's backend, program and input.
fn check_proof(registry: &Registry, expected: &Expected, bytes: &[u8]) -> Result<(Vec<u8>, u64), String> {
    let envelope = ProofEnvelope::decode(bytes)
        .map_err(|e| format!("the worker's proof envelope is unreadable: {e}"))?;
    if envelope.backend != expected.backend {
        return Err(format!(
            "the worker proved with {}, the task asks for {}",
            envelope.backend, expected.backend
        ));
    }
    if envelope.program_id != expected.program_id {
        return Err("the worker's proof is for another program".into());
    }
    if envelope.input_digest != expected.input_digest {
        return Err("the worker's proof is for another input".into());
    }
    let verified = registry
        .verify_within(&envelope, &expected.limits)
        .map_err(|e| format!("the worker's proof does not verify: {e}"))?;
    Ok((verified.public_output, verified.cycles))
}
