//! The parent side: one [`Slot`] runs one attempt at a time in a worker
//! child, warm or fresh, under a wall-clock and a memory limit.
//!
//! An attempt goes through four named steps ([`Slot::run`]):
//! 1. [`Slot::ready_worker`]: a worker caged for this attempt's memory
//!    limit, alive and answering (a warm worker that died or hung while
//!    idle is replaced, uncharged), or a new one;
//! 2. the request files are written;
//! 3. [`Slot::watch_attempt`]: the worker is told to run and watched until
//!    it says done, exits, passes a limit, or the agent stops it;
//! 4. [`Slot::conclude`]: the ending becomes an [`AttemptResult`], and the
//!    worker is kept warm or retired.

use std::collections::VecDeque;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use provernode_core::Cause;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use crate::memlimit::{remove_stale_cages, resident_bytes, Cage, LimiterKind};
use crate::orphans::WorkerRecord;
use crate::protocol::{self, AttemptSpec, Request, Response, PROTOCOL_PREFIX};

/// How workers live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerMode {
    /// A new process for every attempt: the strongest isolation, paying the
    /// process start (milliseconds for trace) each time.
    Fresh,
    /// One process serves attempts one after another and is replaced after
    /// `max_attempts` or once its resident memory passes `max_rss_bytes`
    /// (for backends whose start-up costs minutes).
    Warm { max_attempts: u32, max_rss_bytes: u64 },
}

#[derive(Clone, Debug)]
pub struct SlotConfig {
    /// The `provernode` executable and the arguments that make it a worker;
    /// the slot appends `--dir DIR --parent PID`.
    pub exe: PathBuf,
    pub exe_args: Vec<String>,
    /// Names this slot in logs and cgroup names (`w0`, `w1`, ...).
    pub name: String,
    /// Where private request/response directories are made.
    pub scratch: PathBuf,
    pub limiter: LimiterKind,
    /// Worker mode per backend name; backends not listed use `default_mode`.
    pub modes: Vec<(String, WorkerMode)>,
    pub default_mode: WorkerMode,
    /// How long a new worker may take to say it is ready.
    pub startup_timeout: Duration,
    /// Runs after a worker has exited (`retire`, which every ending of a
    /// worker goes through).
    pub after_worker_exit: ExitHook,
    /// The whole environment of worker processes (they run users' programs:
    /// nothing of the node's own is passed on unless listed here; see
    /// [`crate::worker_environment`]).
    pub env: Vec<(String, String)>,
    /// Where each live worker is recorded (pid, start time, cgroup), so that
    /// a node starting after this one died kills what it left running
    /// ([`crate::reap_orphans`]). `None`: not recorded.
    pub record_dir: Option<PathBuf>,
}

/// What the node does once a worker is gone: it removes what the worker's
/// backends could not clean up themselves because they were killed (SP1's
/// shared memory, 4 GB a run). Runs on a blocking thread.
#[derive(Clone, Default)]
pub struct ExitHook(Option<Arc<dyn Fn() + Send + Sync>>);

impl ExitHook {
    pub fn new(hook: impl Fn() + Send + Sync + 'static) -> ExitHook {
        ExitHook(Some(Arc::new(hook)))
    }

    async fn run(&self) {
        if let Some(hook) = self.0.clone() {
            let _ = tokio::task::spawn_blocking(move || hook()).await;
        }
    }
}

impl std::fmt::Debug for ExitHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ExitHook(set)"
        } else {
            "ExitHook(none)"
        })
    }
}

/// Why the agent wants an attempt stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    LeaseLost,
    Cancelled,
    DeadlinePassed,
    /// The node or agent is stopping (its drain period is over, or it was
    /// told to stop now): not the task's doing.
    Shutdown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// The worker made a proof; the caller must still verify it.
    Proved { envelope: Vec<u8> },
    /// The attempt ended without a proof, for a reason of the task's or its
    /// backend's.
    Failed {
        cause: Cause,
        retryable: bool,
        detail: String,
        stderr_tail: String,
    },
    /// The attempt could not run for the machine's reasons (no descriptors,
    /// no disk, fork failed, the worker executable is missing): the task is
    /// not to blame and goes back to the queue uncharged.
    Infrastructure { detail: String },
    /// The node or agent stopped the attempt while shutting down.
    Interrupted { detail: String },
}

const STDERR_TAIL_BYTES: usize = 4096;

/// How long an idle warm worker may take to answer a ping before it is
/// taken for hung (SIGSTOP, a wedged backend) and replaced.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a timed-out attempt's operator raises the limit: the submit
/// request's field, the CLI flag that sets it, and the node's default.
const TIMEOUT_HINT: &str = "a program that needs longer needs a larger task timeout: the submit field `timeout_secs`, `provernode submit --timeout-secs`, or the node's `--default-timeout-secs`; a task that names none is sized from its cycles once the node knows this backend's proving rate (`provernode calibrate`)";

/// Likewise for an attempt killed for memory. SP1 programs of many shards
/// need far more than the backend's minimum (docs/backends.md).
const MEMORY_HINT: &str = "a program that needs more needs a larger task memory limit: the submit field `memory_limit_mib`, `provernode submit --memory-limit-mib`, or the node's `--default-memory-limit-mib`";

/// Where private scratch directories go: tmpfs (`/dev/shm`) when it can be
/// written, else `fallback` (the data directory).
pub fn scratch_root(fallback: &Path) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let probe = shm.join(format!("provernode-probe-{}", std::process::id()));
    if std::fs::DirBuilder::new().mode(0o700).create(&probe).is_ok() {
        let _ = std::fs::remove_dir(&probe);
        return shm.to_path_buf();
    }
    fallback.to_path_buf()
}

struct Worker {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    dir: PathBuf,
    cage: Cage,
    record: Option<PathBuf>,
    served: u32,
}

impl Worker {
    fn kill_group(&self) {
        // The worker leads its own process group: this reaches anything it started.
        let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
    }

    fn stderr_tail(&self) -> String {
        let buf = self
            .stderr
            .lock()
            .map(|b| b.iter().copied().collect::<Vec<u8>>())
            .unwrap_or_default();
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Whether an idle worker can take work: not exited, and answering a
    /// ping in time (a stopped or wedged process answers nothing).
    async fn check_alive(&mut self) -> Result<(), String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!("it exited while idle ({status})"));
        }
        if self.stdin.write_all(b"ping\n").await.is_err() {
            return Err("its input is closed".into());
        }
        let pong = format!("{PROTOCOL_PREFIX}pong");
        let answer = async {
            loop {
                match self.stdout.next_line().await {
                    Ok(Some(line)) if line == pong => return Ok(()),
                    Ok(Some(_)) => continue,
                    _ => return Err("its output closed".to_owned()),
                }
            }
        };
        match tokio::time::timeout(PING_TIMEOUT, answer).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "it did not answer a ping within {PING_TIMEOUT:?} (stopped or hung)"
            )),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill_group();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(record) = &self.record {
            let _ = std::fs::remove_file(record);
        }
    }
}

/// Why a worker could not be started.
enum SpawnFailure {
    /// Killed by this signal while starting: a crash like any other (a cage
    /// too small for the worker to start is the task's limit).
    Killed { message: String, signal: i32 },
    /// The machine could not start it (descriptors, memory, disk, a missing
    /// executable): not the task's fault.
    Local(String),
}

impl From<String> for SpawnFailure {
    fn from(message: String) -> Self {
        SpawnFailure::Local(message)
    }
}

/// How watching an attempt ended.
enum Ending {
    Done,
    Exited,
    Timeout,
    Watchdog,
    Stopped(StopReason),
    StdinClosed,
}

/// What was seen while watching an attempt.
struct Watched {
    ending: Ending,
    /// The worker said the backend was warm and the program set up.
    started: bool,
    /// The worker asked to be replaced after this attempt.
    retire_asked: bool,
    /// The wall-clock limit that applied before `started`.
    startup_limit: Duration,
    /// The limit that applied after `started` (sized from the cycles when
    /// the task named none).
    timeout: Duration,
}

pub struct Slot {
    config: SlotConfig,
    worker: Option<Worker>,
    seq: u64,
}

fn failed(cause: Cause, retryable: bool, detail: String) -> AttemptResult {
    AttemptResult::Failed {
        cause,
        retryable,
        detail,
        stderr_tail: String::new(),
    }
}

impl Slot {
    pub fn new(config: SlotConfig) -> Slot {
        remove_stale_cages_once(&config.limiter);
        remove_stale_scratch_once(&config.scratch);
        Slot {
            config,
            worker: None,
            seq: 0,
        }
    }

    /// The pid of the current worker, if one is running.
    pub fn worker_pid(&self) -> Option<u32> {
        self.worker.as_ref().map(|w| w.pid)
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The memory limit the current worker is caged under, if one is
    /// running (a warm worker between attempts holds up to this much).
    pub fn worker_memory_limit(&self) -> Option<u64> {
        self.worker.as_ref().map(|w| w.cage.limit_bytes)
    }

    async fn spawn(&mut self, memory_limit_bytes: u64) -> Result<Worker, SpawnFailure> {
        self.seq += 1;
        let tag = format!(
            "provernode-{}-{}-{}",
            std::process::id(),
            self.config.name,
            self.seq
        );
        let dir = self.config.scratch.join(&tag);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create the private directory {}: {e}", dir.display()))?;
        let cage = match Cage::create(&self.config.limiter, &tag, memory_limit_bytes) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a memory cgroup; falling back to the watchdog");
                Cage::create(
                    &LimiterKind::Watchdog { why: e.to_string() },
                    &tag,
                    memory_limit_bytes,
                )
                .map_err(|e| e.to_string())?
            }
        };
        let mut child = Command::new(&self.config.exe)
            .args(&self.config.exe_args)
            .arg("--dir")
            .arg(&dir)
            .arg("--parent")
            .arg(std::process::id().to_string())
            .env_clear()
            .envs(self.config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start worker {}: {e}", self.config.exe.display()))?;
        let pid = child.id().ok_or("the worker exited at once".to_owned())?;
        // Into the cage before it is handed any work.
        if let Err(e) = cage.add(pid) {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            return Err(format!("cannot move worker {pid} into its memory cgroup: {e}").into());
        }
        let record = match &self.config.record_dir {
            Some(records) => {
                let path = records.join(&tag);
                if let Err(e) = WorkerRecord::of(pid, cage.dir()).write(&path) {
                    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    return Err(format!("cannot record worker {pid} in {}: {e}", path.display()).into());
                }
                Some(path)
            }
            None => None,
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("worker pipes missing".to_owned().into());
        };
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_BYTES)));
        let sink = tail.clone();
        tokio::spawn(async move {
            let mut stderr = stderr;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut t) = sink.lock() {
                    t.extend(&buf[..n]);
                    let excess = t.len().saturating_sub(STDERR_TAIL_BYTES);
                    t.drain(..excess);
                }
            }
        });
        let mut worker = Worker {
            child,
            pid,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            stderr: tail,
            dir,
            cage,
            record,
            served: 0,
        };
        let ready = format!("{PROTOCOL_PREFIX}ready");
        let wait_ready = async {
            loop {
                match worker.stdout.next_line().await {
                    Ok(Some(line)) if line == ready => return Ok(()),
                    Ok(Some(_)) => continue,
                    _ => return Err(()),
                }
            }
        };
        match tokio::time::timeout(self.config.startup_timeout, wait_ready).await {
            Ok(Ok(())) => {
                tracing::debug!(slot = %self.config.name, pid, "worker ready");
                Ok(worker)
            }
            Ok(Err(())) => {
                let status = tokio::time::timeout(Duration::from_secs(5), worker.child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok);
                let message = format!(
                    "the worker (pid {pid}) exited during start-up with {}; its stderr: {}",
                    status.map_or("an unknown status".to_owned(), |s| s.to_string()),
                    worker.stderr_tail().trim()
                );
                Err(match status.and_then(|s| s.signal()) {
                    Some(signal) => SpawnFailure::Killed { message, signal },
                    None => SpawnFailure::Local(message),
                })
            }
            Err(_) => Err(format!(
                "the worker did not become ready within {:?}",
                self.config.startup_timeout
            )
            .into()),
        }
    }

    /// Stops the current worker, if any.
    pub async fn retire(&mut self) {
        if let Some(mut w) = self.worker.take() {
            w.kill_group();
            let _ = w.child.wait().await;
            drop(w);
            self.config.after_worker_exit.run().await;
        }
    }

    /// Runs one attempt to its end, however it ends.
    pub async fn run(
        &mut self,
        spec: &AttemptSpec,
        stop: &mut watch::Receiver<Option<StopReason>>,
    ) -> AttemptResult {
        if let Err(result) = self.ready_worker(spec).await {
            return result;
        }
        self.seq += 1;
        let n = self.seq;
        let dir = match &self.worker {
            Some(w) => w.dir.clone(),
            None => {
                return AttemptResult::Infrastructure {
                    detail: "no worker".into(),
                }
            }
        };
        if let Err(e) = write_request(&dir, n, spec).await {
            self.retire().await;
            return AttemptResult::Infrastructure {
                detail: format!("cannot write the attempt's request into {}: {e}", dir.display()),
            };
        }
        let oom_before = self.worker.as_ref().map_or(0, |w| w.cage.oom_kills());
        let watched = self.watch_attempt(n, spec, stop).await;
        self.conclude(n, spec, watched, oom_before).await
    }

    /// Step 1: a worker caged for this attempt, alive and answering.
    async fn ready_worker(&mut self, spec: &AttemptSpec) -> Result<(), AttemptResult> {
        // A warm worker caged for another limit is replaced.
        if self
            .worker
            .as_ref()
            .is_some_and(|w| w.cage.limit_bytes != spec.memory_limit_bytes)
        {
            self.retire().await;
        }
        // A warm worker killed or stopped while idle would be charged to
        // this task as a crash or a start-up timeout: replace it, uncharged.
        if let Some(w) = self.worker.as_mut() {
            if let Err(why) = w.check_alive().await {
                let pid = w.pid;
                tracing::warn!(slot = %self.config.name, pid, %why, "replacing an idle warm worker that cannot take work");
                metrics::counter!("provernode_idle_workers_replaced_total").increment(1);
                self.retire().await;
            }
        }
        if self.worker.is_some() {
            return Ok(());
        }
        match self.spawn(spec.memory_limit_bytes).await {
            Ok(w) => {
                metrics::counter!("provernode_worker_starts_total", "backend" => spec.backend.clone())
                    .increment(1);
                self.worker = Some(w);
                Ok(())
            }
            Err(SpawnFailure::Killed { message, signal }) => Err(failed(
                Cause::Crashed(signal),
                true,
                format!("could not start a worker: {message}"),
            )),
            Err(SpawnFailure::Local(message)) => Err(AttemptResult::Infrastructure {
                detail: format!("could not start a worker: {message}"),
            }),
        }
    }

    /// Step 3: tells the worker to run request `n` and watches it until it
    /// ends one way or another.
    async fn watch_attempt(
        &mut self,
        n: u64,
        spec: &AttemptSpec,
        stop: &mut watch::Receiver<Option<StopReason>>,
    ) -> Watched {
        let startup_timeout = self.config.startup_timeout;
        let Some(w) = self.worker.as_mut() else {
            return Watched {
                ending: Ending::Exited,
                started: false,
                retire_asked: false,
                startup_limit: Duration::ZERO,
                timeout: spec.timeout,
            };
        };
        let (pid, caged, limit) = (w.pid, w.cage.is_cgroup(), w.cage.limit_bytes);
        let done_line = format!("{PROTOCOL_PREFIX}done {n}");
        let started_line = format!("{PROTOCOL_PREFIX}started {n}");
        let retire_line = format!("{PROTOCOL_PREFIX}retire");
        // Until the worker says the backend is warm and the program set up,
        // a new worker gets the start-up limit on top of the task's timeout
        // (SP1's prover takes minutes to start); a worker that already
        // served is warm, so the task's own timeout bounds everything.
        let startup_limit = if w.served == 0 {
            startup_timeout + spec.timeout
        } else {
            spec.timeout
        };
        let mut deadline = Instant::now() + startup_limit;
        let mut started_at = Instant::now();
        let mut timeout = spec.timeout;
        let cycles_prefix = format!("{PROTOCOL_PREFIX}cycles {n} ");
        let note_prefix = format!("{PROTOCOL_PREFIX}note {n} ");
        let mut started = false;
        let mut retire_asked = false;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut stop_open = true;
        let ending = if w.stdin.write_all(format!("run {n}\n").as_bytes()).await.is_err() {
            Ending::StdinClosed
        } else {
            loop {
                if let Some(reason) = *stop.borrow() {
                    break Ending::Stopped(reason);
                }
                tokio::select! {
                    changed = stop.changed(), if stop_open => {
                        if changed.is_err() {
                            stop_open = false;
                        }
                    }
                    _ = sleep_until(deadline) => break Ending::Timeout,
                    line = w.stdout.next_line() => match line {
                        Ok(Some(l)) if l == done_line => break Ending::Done,
                        Ok(Some(l)) if l == started_line => {
                            started = true;
                            started_at = Instant::now();
                            deadline = started_at + spec.timeout;
                        }
                        Ok(Some(l)) if started && l.starts_with(&cycles_prefix) => {
                            if let (Some(rule), Ok(cycles)) =
                                (spec.timeout_rule, l[cycles_prefix.len()..].trim().parse::<u64>())
                            {
                                let mut sized = rule.timeout_for(cycles);
                                if let Some(cap) = spec.timeout_cap {
                                    sized = sized.min(cap);
                                }
                                if sized > timeout {
                                    tracing::info!(
                                        slot = %self.config.name,
                                        cycles,
                                        rate = rule.cycles_per_sec,
                                        timeout_secs = sized.as_secs_f64(),
                                        "attempt timeout sized from its cycles and the measured rate"
                                    );
                                    timeout = sized;
                                    deadline = started_at + sized;
                                }
                            }
                        }
                        Ok(Some(l)) if l == retire_line => retire_asked = true,
                        Ok(Some(l)) if l.starts_with(&note_prefix) => {
                            tracing::info!(
                                slot = %self.config.name,
                                task = %spec.task_id,
                                backend = %spec.backend,
                                "{}",
                                &l[note_prefix.len()..]
                            );
                        }
                        Ok(Some(_)) => {}
                        _ => break Ending::Exited,
                    },
                    _ = tick.tick(), if !caged => {
                        if resident_bytes(pid).is_some_and(|rss| rss > limit) {
                            break Ending::Watchdog;
                        }
                    }
                }
            }
        };
        Watched {
            ending,
            started,
            retire_asked,
            startup_limit,
            timeout,
        }
    }

    /// Step 4: what the ending means for the task, and whether the worker
    /// stays warm.
    async fn conclude(
        &mut self,
        n: u64,
        spec: &AttemptSpec,
        watched: Watched,
        oom_before: u64,
    ) -> AttemptResult {
        let mode = self.mode_for(&spec.backend);
        let Some(w) = self.worker.as_mut() else {
            return AttemptResult::Infrastructure {
                detail: "no worker".into(),
            };
        };
        let (pid, limit) = (w.pid, w.cage.limit_bytes);
        let result = match watched.ending {
            Ending::Done => {
                let result = read_response(&w.dir, n).await;
                w.served += 1;
                cleanup(&w.dir, n).await;
                let recycle = watched.retire_asked
                    || match mode {
                        WorkerMode::Fresh => true,
                        WorkerMode::Warm {
                            max_attempts,
                            max_rss_bytes,
                        } => {
                            w.served >= max_attempts
                                || resident_bytes(pid).is_none_or(|rss| rss > max_rss_bytes)
                        }
                    };
                let tail = w.stderr_tail();
                if watched.retire_asked {
                    tracing::info!(slot = %self.config.name, pid, "the worker's backend asked to be replaced after this attempt");
                }
                if recycle {
                    // Fresh workers end after every attempt by design: only
                    // a warm worker's replacement is a recycle.
                    let reason = if watched.retire_asked {
                        Some("backend_asked")
                    } else if matches!(mode, WorkerMode::Warm { .. }) {
                        Some("limits")
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        metrics::counter!("provernode_worker_recycles_total", "backend" => spec.backend.clone(), "reason" => reason)
                            .increment(1);
                    }
                    self.retire().await;
                }
                return match result {
                    Ok(r) => r,
                    Err(e) => AttemptResult::Failed {
                        cause: Cause::BackendError,
                        retryable: true,
                        detail: e,
                        stderr_tail: tail,
                    },
                };
            }
            Ending::Timeout => {
                w.kill_group();
                failed(
                    Cause::Timeout,
                    true,
                    if watched.started {
                        format!(
                            "the attempt ran past its wall-clock limit of {:.1} s; its worker (pid {pid}) and process group were killed ({TIMEOUT_HINT})",
                            watched.timeout.as_secs_f64()
                        )
                    } else {
                        format!(
                            "the backend did not start and set up the program within {:.1} s; its worker (pid {pid}) and process group were killed ({TIMEOUT_HINT})",
                            watched.startup_limit.as_secs_f64()
                        )
                    },
                )
            }
            Ending::Watchdog => {
                w.kill_group();
                failed(
                    Cause::OutOfMemory,
                    true,
                    format!(
                        "the worker (pid {pid}) passed its memory limit of {} MiB (resident-memory watchdog) and was killed ({MEMORY_HINT})",
                        limit >> 20
                    ),
                )
            }
            Ending::Stopped(reason) => {
                w.kill_group();
                match reason {
                    StopReason::LeaseLost => failed(
                        Cause::LeaseLost,
                        true,
                        "the lease was lost; the attempt was stopped".into(),
                    ),
                    StopReason::Cancelled => failed(
                        Cause::Cancelled,
                        false,
                        "the task was cancelled; the attempt was stopped".into(),
                    ),
                    StopReason::DeadlinePassed => failed(
                        Cause::DeadlinePassed,
                        false,
                        "the task's deadline passed during the attempt".into(),
                    ),
                    StopReason::Shutdown => AttemptResult::Interrupted {
                        detail: "the node stopped before the attempt finished; requeued uncharged".into(),
                    },
                }
            }
            Ending::Exited | Ending::StdinClosed => {
                let status = match tokio::time::timeout(Duration::from_secs(5), w.child.wait()).await {
                    Ok(Ok(s)) => Some(s),
                    _ => {
                        w.kill_group();
                        w.child.wait().await.ok()
                    }
                };
                let oom = w.cage.oom_kills() > oom_before;
                match status.and_then(|s| s.signal()) {
                    Some(_) if oom => failed(
                        Cause::OutOfMemory,
                        true,
                        format!(
                            "the worker (pid {pid}) passed its memory limit of {} MiB and the kernel killed it (cgroup; {MEMORY_HINT})",
                            limit >> 20
                        ),
                    ),
                    Some(sig) => {
                        let name = Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("unknown signal");
                        failed(
                            Cause::Crashed(sig),
                            true,
                            format!("the worker (pid {pid}) was killed by signal {sig} ({name})"),
                        )
                    }
                    None => failed(
                        Cause::Crashed(0),
                        true,
                        format!(
                            "the worker (pid {pid}) exited with {} before finishing the attempt",
                            status.map_or("an unknown status".to_owned(), |s| s.to_string())
                        ),
                    ),
                }
            }
        };
        // Every ending but Done leaves the worker dead or doomed.
        let tail = self.worker.as_ref().map(|w| w.stderr_tail()).unwrap_or_default();
        self.retire().await;
        match result {
            AttemptResult::Failed {
                cause,
                retryable,
                detail,
                ..
            } => AttemptResult::Failed {
                cause,
                retryable,
                detail,
                stderr_tail: tail,
            },
            other => other,
        }
    }

    fn mode_for(&self, backend: &str) -> WorkerMode {
        self.config
            .modes
            .iter()
            .find(|(b, _)| b == backend)
            .map_or(self.config.default_mode, |(_, m)| *m)
    }
}

/// Removes the private directories of workers whose node died without
/// cleaning up (`provernode-PID-...` where no process PID exists), once per
/// process.
fn remove_stale_scratch_once(scratch: &Path) {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| remove_stale_scratch(scratch, Path::new("/proc")));
}

fn remove_stale_scratch(scratch: &Path, proc_dir: &Path) {
    let own = std::process::id();
    for entry in std::fs::read_dir(scratch).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("provernode-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != own && !proc_dir.join(pid.to_string()).exists() && entry.path().is_dir() {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::info!(dir = %entry.path().display(), "removed a dead node's worker directory")
                }
                Err(e) => {
                    tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove a dead node's worker directory")
                }
            }
        }
    }
}

fn remove_stale_cages_once(kind: &LimiterKind) {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| remove_stale_cages(kind));
}

async fn write_request(dir: &Path, n: u64, spec: &AttemptSpec) -> std::io::Result<()> {
    let req = Request {
        task_id: spec.task_id.clone(),
        attempt: spec.attempt,
        backend: spec.backend.clone(),
        program_name: spec.program_name.clone(),
        proof_kind: spec.proof_kind.clone(),
        max_cycles: spec.max_cycles,
        max_guest_memory_bytes: spec.max_guest_memory_bytes,
        prover_memory_bytes: Some(spec.memory_limit_bytes),
        split_po2: spec.split_po2,
        report_cycles: spec.timeout_rule.is_some(),
    };
    tokio::fs::write(dir.join(protocol::request_elf(n)), &spec.elf).await?;
    tokio::fs::write(dir.join(protocol::request_input(n)), &spec.input).await?;
    let json = serde_json::to_vec(&req).map_err(std::io::Error::other)?;
    tokio::fs::write(dir.join(protocol::request_json(n)), json).await
}

async fn read_response(dir: &Path, n: u64) -> Result<AttemptResult, String> {
    let path = dir.join(protocol::response_json(n));
    let raw = tokio::fs::read(&path)
        .await
        .map_err(|e| format!("the worker said done but {} is unreadable: {e}", path.display()))?;
    let resp: Response =
        serde_json::from_slice(&raw).map_err(|e| format!("the worker's response is malformed: {e}"))?;
    match resp {
        Response::Proved { .. } => {
            let proof = dir.join(protocol::response_proof(n));
            let envelope = tokio::fs::read(&proof)
                .await
                .map_err(|e| format!("the worker's proof {} is unreadable: {e}", proof.display()))?;
            Ok(AttemptResult::Proved { envelope })
        }
        Response::Failed {
            cause,
            retryable,
            message,
        } => Ok(AttemptResult::Failed {
            cause: cause.parse().unwrap_or(Cause::BackendError),
            retryable,
            detail: message,
            stderr_tail: String::new(),
        }),
    }
}

async fn cleanup(dir: &Path, n: u64) {
    for name in [
        protocol::request_json(n),
        protocol::request_elf(n),
        protocol::request_input(n),
        protocol::response_json(n),
        protocol::response_proof(n),
    ] {
        let _ = tokio::fs::remove_file(dir.join(name)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_tells_the_worker_its_memory_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = AttemptSpec {
            task_id: "t".into(),
            attempt: 1,
            backend: "risc0".into(),
            program_name: "fibonacci".into(),
            proof_kind: None,
            elf: b"elf".to_vec(),
            input: Vec::new(),
            max_cycles: 1000,
            max_guest_memory_bytes: 1 << 20,
            timeout: std::time::Duration::from_secs(1),
            memory_limit_bytes: 3 << 30,
            split_po2: None,
            timeout_rule: None,
            timeout_cap: None,
        };
        write_request(dir.path(), 7, &spec).await.expect("write");
        let json = std::fs::read(dir.path().join(protocol::request_json(7))).expect("read");
        let req: Request = serde_json::from_slice(&json).expect("parse");
        assert_eq!(req.prover_memory_bytes, Some(3 << 30));

        // A request written by a node from before the field: no limit known.
        let mut old = serde_json::to_value(&req).expect("value");
        old.as_object_mut().expect("object").remove("prover_memory_bytes");
        let req: Request = serde_json::from_value(old).expect("parse");
        assert_eq!(req.prover_memory_bytes, None);
    }

    #[test]
    fn only_dead_nodes_worker_directories_are_removed() {
        let root = tempfile::tempdir().expect("temp dir");
        let (scratch, proc_dir) = (root.path().join("scratch"), root.path().join("proc"));
        for dir in [
            "provernode-4000001-w0-1", // node dead
            "provernode-4000002-w1-3", // node alive
            "provernode-probe-4000001",
            "unrelated-4000001",
        ] {
            std::fs::create_dir_all(scratch.join(dir)).expect("mkdir");
        }
        std::fs::write(scratch.join("provernode-4000001-w0-1/req-1.elf"), b"elf").expect("write");
        std::fs::create_dir_all(proc_dir.join("4000002")).expect("mkdir");
        let own = scratch.join(format!("provernode-{}-w0-1", std::process::id()));
        std::fs::create_dir_all(&own).expect("mkdir");

        remove_stale_scratch(&scratch, &proc_dir);

        assert!(!scratch.join("provernode-4000001-w0-1").exists());
        for kept in [
            "provernode-4000002-w1-3",
            "provernode-probe-4000001",
            "unrelated-4000001",
        ] {
            assert!(scratch.join(kept).exists(), "{kept} was removed");
        }
        assert!(own.exists(), "this process's own directory was removed");
    }
}
