//! A slot against a scripted worker (a shell script speaking the worker
//! protocol), so that what the supervisor does with each line is tested
//! without any backend: a worker that asks to be retired is replaced, one
//! that does not stays warm, and the exit hook runs once a worker is gone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use provernode_worker::{
    AttemptResult, AttemptSpec, ExitHook, LimiterKind, Slot, SlotConfig, StopReason, WorkerMode,
};
use tokio::sync::watch;

/// Proves everything in no time; says `retire` after each attempt when its
/// first argument is `retire`. The slot appends `--dir DIR`.
const FAKE_WORKER: &str = r#"
mode="$1"; dir="$3"
echo "provernode-worker: ready"
while read -r cmd n; do
  printf '{"status":"proved","cycles":7}' > "$dir/resp-$n.json"
  printf 'PROOF %s' "$$" > "$dir/resp-$n.proof"
  echo "provernode-worker: started $n"
  [ "$mode" = retire ] && echo "provernode-worker: retire"
  echo "provernode-worker: done $n"
done
"#;

fn slot(mode: &str, scratch: &std::path::Path, exits: Arc<AtomicUsize>) -> Slot {
    Slot::new(SlotConfig {
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
    })
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
