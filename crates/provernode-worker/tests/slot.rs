//! A slot against a scripted worker (a shell script speaking the worker
//! protocol), so that what the supervisor does with each line is tested
//! without any backend: a worker that asks to be retired is replaced, one
//! that does not stays warm, and the exit hook runs once a worker is gone;
//! an idle warm worker killed or stopped is replaced without charging the
//! next task; a worker that cannot be started is the machine's fault.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use provernode_worker::{
    AttemptResult, AttemptSpec, ExitHook, LimiterKind, Slot, SlotConfig, StopReason, WorkerMode,
};
use tokio::sync::watch;

/// Proves everything in no time; says `retire` after each attempt when its
/// first argument is `retire`. The slot appends `--dir DIR --parent PID`.
const FAKE_WORKER: &str = r#"
mode="$1"; dir="$3"
echo "provernode-worker: ready"
while read -r cmd n; do
  if [ "$cmd" = ping ]; then echo "provernode-worker: pong"; continue; fi
  printf '{"status":"proved","cycles":7}' > "$dir/resp-$n.json"
  printf 'PROOF %s' "$$" > "$dir/resp-$n.proof"
  echo "provernode-worker: started $n"
  [ "$mode" = retire ] && echo "provernode-worker: retire"
  echo "provernode-worker: done $n"
done
"#;

fn slot(mode: &str, scratch: &std::path::Path, exits: Arc<AtomicUsize>) -> Slot {
    Slot::new(config(mode, scratch, exits))
}

fn config(mode: &str, scratch: &std::path::Path, exits: Arc<AtomicUsize>) -> SlotConfig {
    SlotConfig {
        exe: "/bin/sh".into(),
        exe_args: vec!["-c".into(), FAKE_WORKER.into(), "fake-worker".into(), mode.into()],
        name: "t0".into(),
        scratch: scratch.to_path_buf(),
        limiter: LimiterKind::Watchdog {
            why: "tests use no cgroup".into(),
        },
        modes: Vec::new(),
        default_mode: WorkerMode::Warm {
            max_attempts: 100,
            max_rss_bytes: u64::MAX,
        },
        startup_timeout: Duration::from_secs(20),
        after_worker_exit: ExitHook::new(move || {
            exits.fetch_add(1, Ordering::SeqCst);
        }),
        env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
        record_dir: None,
    }
}

fn spec(attempt: u32) -> AttemptSpec {
    AttemptSpec {
        task_id: "t".into(),
        attempt,
        backend: "fake".into(),
        program_name: "fake".into(),
        proof_kind: None,
        elf: vec![0x7f, b'E', b'L', b'F'],
        input: Vec::new(),
        max_cycles: 1000,
        max_guest_memory_bytes: 1 << 20,
        timeout: Duration::from_secs(20),
        memory_limit_bytes: 1 << 30,
        split_po2: None,
        timeout_rule: None,
        timeout_cap: None,
    }
}

/// Runs two attempts; returns the worker pid that served each.
async fn two_attempts(slot: &mut Slot) -> Vec<u32> {
    let (_stop_tx, mut stop) = watch::channel::<Option<StopReason>>(None);
    let mut pids = Vec::new();
    for attempt in 1..=2 {
        match slot.run(&spec(attempt), &mut stop).await {
            AttemptResult::Proved { envelope } => {
                let text = String::from_utf8(envelope).expect("the fake proof is text");
                let pid = text
                    .strip_prefix("PROOF ")
                    .and_then(|p| p.parse().ok())
                    .expect("the fake proof names its worker");
                pids.push(pid);
            }
            other => panic!("attempt {attempt} failed: {other:?}"),
        }
    }
    pids
}

#[tokio::test]
async fn a_worker_that_asks_to_retire_is_replaced_and_the_exit_hook_runs() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let exits = Arc::new(AtomicUsize::new(0));
    let mut slot = slot("retire", scratch.path(), exits.clone());
    let pids = two_attempts(&mut slot).await;
    assert_ne!(pids[0], pids[1], "the worker asked to retire but served again");
    // Retired twice (once per attempt), each time followed by the hook.
    assert_eq!(exits.load(Ordering::SeqCst), 2, "exit hook runs");
    assert_eq!(slot.worker_pid(), None, "the retired worker is still listed");
}

#[tokio::test]
async fn a_warm_worker_that_does_not_ask_serves_again() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let exits = Arc::new(AtomicUsize::new(0));
    let mut slot = slot("stay", scratch.path(), exits.clone());
    let pids = two_attempts(&mut slot).await;
    assert_eq!(pids[0], pids[1], "a warm worker was replaced without being asked");
    assert_eq!(slot.worker_pid(), Some(pids[0]));
    assert_eq!(
        exits.load(Ordering::SeqCst),
        0,
        "the hook ran while the worker lived"
    );
    slot.retire().await;
    assert_eq!(
        exits.load(Ordering::SeqCst),
        1,
        "the exit hook did not run after retire"
    );
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

fn proved_by(result: &AttemptResult) -> u32 {
    match result {
        AttemptResult::Proved { envelope } => String::from_utf8_lossy(envelope)
            .strip_prefix("PROOF ")
            .and_then(|p| p.parse().ok())
            .expect("the fake proof names its worker"),
        other => panic!("the attempt did not prove: {other:?}"),
    }
}

/// Issue 19: a warm worker killed between attempts was charged to the next
/// task as `crashed(9)`.
#[tokio::test]
async fn an_idle_warm_worker_killed_is_replaced_and_the_next_task_proves() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let exits = Arc::new(AtomicUsize::new(0));
    let mut slot = slot("stay", scratch.path(), exits.clone());
    let (_stop_tx, mut stop) = watch::channel::<Option<StopReason>>(None);
    let first = proved_by(&slot.run(&spec(1), &mut stop).await);
    signal(first, nix::sys::signal::Signal::SIGKILL);
    std::thread::sleep(Duration::from_millis(100));
    let second = proved_by(&slot.run(&spec(2), &mut stop).await);
    assert_ne!(first, second, "the dead worker was not replaced");
    assert_eq!(
        exits.load(Ordering::SeqCst),
        1,
        "the dead worker's exit hook ran once"
    );
}

/// Issue 19: a stopped (SIGSTOP) idle warm worker held the next task for the
/// 600 s start-up limit although the task's timeout was 5 s.
#[tokio::test]
async fn an_idle_warm_worker_stopped_is_replaced_within_seconds() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let exits = Arc::new(AtomicUsize::new(0));
    let mut config = config("stay", scratch.path(), exits);
    config.startup_timeout = Duration::from_secs(600);
    let mut slot = Slot::new(config);
    let (_stop_tx, mut stop) = watch::channel::<Option<StopReason>>(None);
    let first = proved_by(&slot.run(&spec(1), &mut stop).await);
    signal(first, nix::sys::signal::Signal::SIGSTOP);
    let started = std::time::Instant::now();
    let second = proved_by(&slot.run(&spec(2), &mut stop).await);
    assert_ne!(first, second);
    // Not a timed assertion on speed: the bound is the ping's 5 s against
    // the 600 s start-up limit the task used to wait out.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// A warm worker that hangs after it has served bounds the next attempt by
/// the task's own timeout, not the worker start-up limit.
#[tokio::test]
async fn a_warm_worker_is_bounded_by_the_tasks_timeout_before_it_starts() {
    const HANGS_ON_SECOND: &str = r#"
dir="$2"; runs=0
echo "provernode-worker: ready"
while read -r cmd n; do
  if [ "$cmd" = ping ]; then echo "provernode-worker: pong"; continue; fi
  runs=$((runs + 1))
  [ "$runs" -gt 1 ] && sleep 600
  printf '{"status":"proved","cycles":7}' > "$dir/resp-$n.json"
  printf 'PROOF %s' "$$" > "$dir/resp-$n.proof"
  echo "provernode-worker: started $n"
  echo "provernode-worker: done $n"
done
"#;
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut config = config("stay", scratch.path(), Arc::new(AtomicUsize::new(0)));
    config.exe_args = vec!["-c".into(), HANGS_ON_SECOND.into(), "fake-worker".into()];
    config.startup_timeout = Duration::from_secs(600);
    let mut slot = Slot::new(config);
    let (_stop_tx, mut stop) = watch::channel::<Option<StopReason>>(None);
    proved_by(&slot.run(&spec(1), &mut stop).await);
    let mut short = spec(2);
    short.timeout = Duration::from_secs(2);
    match slot.run(&short, &mut stop).await {
        AttemptResult::Failed { cause, detail, .. } => {
            assert_eq!(cause, provernode_core::Cause::Timeout);
            assert!(detail.contains("2.0 s"), "{detail}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

/// A worker executable that cannot be started is the machine's fault, not
/// the task's: no cause is charged.
#[tokio::test]
async fn a_worker_that_cannot_be_started_is_an_infrastructure_fault() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut config = config("stay", scratch.path(), Arc::new(AtomicUsize::new(0)));
    config.exe = "/nonexistent/provernode".into();
    let mut slot = Slot::new(config);
    let (_stop_tx, mut stop) = watch::channel::<Option<StopReason>>(None);
    match slot.run(&spec(1), &mut stop).await {
        AttemptResult::Infrastructure { detail } => {
            assert!(detail.contains("could not start a worker"), "{detail}")
        }
        other => panic!("expected an infrastructure fault, got {other:?}"),
    }
}

/// Workers get the environment they are given, nothing of the node's own.
#[tokio::test]
async fn a_worker_sees_only_its_explicit_environment() {
    const PRINTS_ENV: &str = r#"
dir="$2"
echo "provernode-worker: ready"
while read -r cmd n; do
  if [ "$cmd" = ping ]; then echo "provernode-worker: pong"; continue; fi
  printf '{"status":"proved","cycles":7}' > "$dir/resp-$n.json"
  env > "$dir/resp-$n.proof"
  echo "provernode-worker: done $n"
done
"#;
    std::env::set_var("PROVERNODE_TOKEN", "node-secret");
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut config = config("stay", scratch.path(), Arc::new(AtomicUsize::new(0)));
    config.exe_args = vec!["-c".into(), PRINTS_ENV.into(), "fake-worker".into()];
    config
        .env
        .push(("PROVERNODE_RISC0_SEGMENT_PO2".into(), "18".into()));
    let mut slot = Slot::new(config);
    let (_stop_tx, mut stop) = watch::channel::<Option<StopReason>>(None);
    let AttemptResult::Proved { envelope } = slot.run(&spec(1), &mut stop).await else {
        panic!("no proof")
    };
    let env = String::from_utf8_lossy(&envelope);
    assert!(env.contains("PROVERNODE_RISC0_SEGMENT_PO2=18"), "{env}");
    assert!(
        !env.contains("node-secret"),
        "the worker saw the node's token:\n{env}"
    );
}
