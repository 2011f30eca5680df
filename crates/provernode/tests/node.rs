//! Scenario tests: the real `provernode run`, real worker processes, real
//! kills. Each scenario injects one fault and asserts every task's terminal
//! state (and that proofs verify).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod common;

use common::{fib, kill9, verify, Node, LONG};

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[test]
fn a_worker_killed_mid_proof_is_recorded_as_crashed_and_the_task_retried() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &["--workers", "1"], &[]);
    // About a second of proving in the worker.
    let id = node.submit(json!({"program": "sha256-chain", "input": {"rounds": 60000}}));
    node.wait_until(&id, LONG, |t| t["state"] == "leased");
    let start = Instant::now();
    let worker = loop {
        if let Some(&w) = node.workers().first() {
            break w;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no worker process appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    kill9(worker);
    let t = node.wait_terminal(&id, LONG);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["attempts"], 2, "{t}");
    let history = t["attempt_history"].as_array().unwrap();
    assert_eq!(history[0]["outcome"], "crashed(9)", "{t}");
    assert_eq!(history[1]["outcome"], "succeeded", "{t}");
    let guest = provernode_guests::find("sha256-chain").unwrap();
    let mut input = vec![0u8; 32];
    input.extend_from_slice(&60000u32.to_le_bytes());
    assert_eq!(verify(&node.proof(&id)), guest.reference_output(&input).unwrap());
}

#[test]
fn an_endless_guest_times_out_and_is_quarantined_while_other_tasks_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &["--workers", "2"], &[]);
    let spin = node.submit(json!({"program": "spin", "timeout_secs": 0.5, "max_attempts": 2}));
    let others: Vec<String> = (0..6).map(|n| node.submit(fib(n * 10))).collect();
    let t = node.wait_terminal(&spin, LONG);
    assert_eq!(t["state"], "quarantined", "{t}");
    assert_eq!(t["terminal_reason"], "timeout", "{t}");
    let history = t["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|a| a["outcome"] == "timeout"), "{t}");
    assert!(t["detail"].as_str().unwrap().contains("#2 timeout"), "{t}");
    // Each attempt says which knob a program that needs longer turns.
    let why = history[0]["detail"].as_str().unwrap();
    assert!(
        why.contains("wall-clock limit of 0.5 s") && why.contains("--timeout-secs"),
        "{t}"
    );
    for (i, id) in others.iter().enumerate() {
        let t = node.wait_terminal(id, LONG);
        assert_eq!(t["state"], "succeeded", "{t}");
        assert_eq!(t["attempts"], 1, "{t}");
        let out = verify(&node.proof(id));
        assert_eq!(
            &out[4..],
            &provernode_guests::fibonacci(i as u32 * 10).to_le_bytes()
        );
    }
}

fn memory_hog_ends_out_of_memory(env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &["--workers", "1"], env);
    let id = node.submit(json!({
        "program": "memhog",
        "memory_limit_mib": 96,
        "max_guest_memory_mib": 1024,
        "max_attempts": 1,
        "timeout_secs": 60
    }));
    let t = node.wait_terminal(&id, LONG);
    assert_eq!(t["state"], "quarantined", "{t}");
    assert_eq!(t["terminal_reason"], "out_of_memory", "{t}");
    assert_eq!(t["attempt_history"][0]["outcome"], "out_of_memory", "{t}");
    let why = t["attempt_history"][0]["detail"].as_str().unwrap();
    assert!(
        why.contains("memory limit of 96 MiB") && why.contains("memory_limit_mib"),
        "{t}"
    );
    // The node is still up and proving.
    let ok = node.submit(fib(20));
    assert_eq!(node.wait_terminal(&ok, LONG)["state"], "succeeded");
}

#[test]
fn a_memory_hog_ends_out_of_memory_under_the_best_limiter() {
    memory_hog_ends_out_of_memory(&[]);
}

#[test]
fn a_memory_hog_ends_out_of_memory_under_the_watchdog() {
    memory_hog_ends_out_of_memory(&[("PROVERNODE_MEMORY_LIMITER", "watchdog")]);
}

#[test]
fn malformed_input_fails_as_invalid_input_without_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &["--workers", "1"], &[]);
    let id = node.submit(json!({"program": "fibonacci", "input_hex": "0102"}));
    let t = node.wait_terminal(&id, LONG);
    assert_eq!(t["state"], "failed", "{t}");
    assert_eq!(t["terminal_reason"], "invalid_input", "{t}");
    assert_eq!(t["attempts"], 1, "{t}");
    // Rejected up front when the typed input is wrong.
    let resp = node
        .http()
        .post(format!("{}/v1/tasks", node.base))
        .json(&json!({"program": "fibonacci", "input": {"rounds": 3}}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().unwrap();
    assert_eq!(v["error"]["code"], "invalid_input");
}

#[test]
fn the_node_killed_with_50_tasks_in_flight_loses_none_and_proves_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = Node::start(&data, &["--workers", "2"], &[]);
    let ids: Vec<String> = (0..50)
        .map(|i| node.submit(json!({"program": "sha256-chain", "input": {"rounds": 3000 + i}})))
        .collect();
    // Kill it while work is in flight: some done, some leased, most queued.
    node.wait_until(&ids[3], LONG, |t| t["state"] != "queued");
    node.kill9();
    let node = Node::start(&data, &["--workers", "2"], &[]);
    let guest = provernode_guests::find("sha256-chain").unwrap();
    let mut lost = 0;
    for (i, id) in ids.iter().enumerate() {
        let t = node.wait_terminal(id, LONG);
        assert_eq!(t["state"], "succeeded", "{t}\n{}", node.log_text());
        let history = t["attempt_history"].as_array().unwrap();
        let successes = history.iter().filter(|a| a["outcome"] == "succeeded").count();
        assert_eq!(successes, 1, "task {id} succeeded {successes} times: {t}");
        lost += history.iter().filter(|a| a["outcome"] == "lease_lost").count();
        let mut input = vec![0u8; 32];
        input.extend_from_slice(&(3000 + i as u32).to_le_bytes());
        assert_eq!(verify(&node.proof(id)), guest.reference_output(&input).unwrap());
    }
    assert!(lost >= 1, "the kill should have cut at least one attempt short");
}

#[test]
fn sigterm_drains_running_attempts_before_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = Node::start(&data, &["--workers", "1", "--drain-secs", "60"], &[]);
    let running = node.submit(json!({"program": "sha256-chain", "input": {"rounds": 40000}}));
    let queued = node.submit(fib(5));
    node.wait_until(&running, LONG, |t| t["state"] == "leased");
    let status = node.sigterm_and_wait(LONG);
    assert!(status.success(), "{status}\n{}", node.log_text());
    // Restart on the same data: the drained attempt succeeded, the queued
    // task was kept and now runs.
    let node = Node::start(&data, &["--workers", "1"], &[]);
    let t = node.task(&running);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["attempts"], 1, "{t}");
    assert_eq!(node.wait_terminal(&queued, LONG)["state"], "succeeded");
}

#[test]
fn cancelling_a_running_task_stops_its_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &["--workers", "1"], &[]);
    let id = node.submit(json!({"program": "spin", "timeout_secs": 120}));
    node.wait_until(&id, LONG, |t| t["state"] == "leased");
    let resp = node
        .http()
        .post(format!("{}/v1/tasks/{id}/cancel", node.base))
        .send()
        .unwrap();
    assert!(resp.status().is_success());
    let t = node.task(&id);
    assert_eq!(
        (t["state"].as_str(), t["terminal_reason"].as_str()),
        (Some("cancelled"), Some("cancelled"))
    );
    // The worker is stopped within a heartbeat, and the slot proves again.
    let next = node.submit(fib(7));
    assert_eq!(
        node.wait_terminal(&next, LONG)["state"],
        "succeeded",
        "{}",
        node.log_text()
    );
    let again = node
        .http()
        .post(format!("{}/v1/tasks/{id}/cancel", node.base))
        .send()
        .unwrap();
    assert_eq!(again.status(), 409);
}

#[test]
fn the_api_answers_bad_requests_with_stable_codes_and_guards_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        &["--workers", "1", "--token", "s3cret"],
        &[],
    );
    let http = node.http();
    let anon = http.get(format!("{}/v1/tasks", node.base)).send().unwrap();
    assert_eq!(anon.status(), 401);
    assert_eq!(anon.json::<Value>().unwrap()["error"]["code"], "unauthorized");
    assert_eq!(
        http.get(format!("{}/healthz", node.base))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{}/readyz", node.base)).send().unwrap().status(),
        200
    );
    let post = |body: Value| {
        let r = http
            .post(format!("{}/v1/tasks", node.base))
            .bearer_auth("s3cret")
            .json(&body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    assert_eq!(
        post(json!({"program": "nope"})).1["error"]["code"],
        "unknown_program"
    );
    assert_eq!(
        post(json!({"program": "fibonacci", "backend": "nexus"})).1["error"]["code"],
        "unknown_backend"
    );
    assert_eq!(
        post(json!({"program": "fibonacci", "backend": "sp1"})).1["error"]["code"],
        "backend_unavailable"
    );
    assert_eq!(
        post(json!({"program": "fibonacci", "color": "red"})).1["error"]["code"],
        "invalid_request"
    );
    let (status, ok) = post(json!({"program": "fibonacci", "input": {"n": 3}, "idempotency_key": "k1"}));
    assert_eq!(status, 201);
    let (status, again) = post(json!({"program": "fibonacci", "input": {"n": 3}, "idempotency_key": "k1"}));
    assert_eq!((status, &again["id"]), (200, &ok["id"]));
    let (status, conflict) =
        post(json!({"program": "fibonacci", "input": {"n": 4}, "idempotency_key": "k1"}));
    assert_eq!(
        (status, conflict["error"]["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );
    let big = "00".repeat(17 << 20);
    let (status, too_big) = post(json!({"program": "sha256", "input_hex": big}));
    assert_eq!(status, 413, "{too_big}");
    let missing = http
        .get(format!("{}/v1/tasks/{}", node.base, uuid_like()))
        .bearer_auth("s3cret")
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    let metrics = http
        .get(format!("{}/metrics", node.base))
        .bearer_auth("s3cret")
        .send()
        .unwrap();
    assert!(metrics.text().unwrap().contains("provernode_tasks"));
}

fn uuid_like() -> &'static str {
    "0190a0b0-0000-7000-8000-000000000000"
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(["run", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("PROVERNODE_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a bearer token"));
}

#[test]
fn the_client_commands_drive_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &["--workers", "1"], &[]);
    let proof = dir.path().join("fib.proof");
    let out = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args([
            "submit",
            "fibonacci",
            "--n",
            "90",
            "--wait",
            "--node",
            &node.base,
            "-o",
        ])
        .arg(&proof)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("fib=2880067194370816120"));
    let verify = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .arg("verify")
        .arg(&proof)
        .output()
        .unwrap();
    assert!(verify.status.success());
    let tasks = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(["tasks", "--state", "succeeded", "--node", &node.base])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&tasks.stdout).contains("fibonacci"));
    let down = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(["status", "x", "--node", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach the node"));
}

#[test]
fn a_late_result_for_an_expired_lease_is_ignored_and_the_task_proved_once() {
    let dir = tempfile::tempdir().unwrap();
    // The first result is held for 5 s without heartbeats: its 2 s lease
    // expires, the sweeper requeues the task, the other worker proves it,
    // and the held result arrives late.
    let node = Node::start(
        &dir.path().join("data"),
        &["--workers", "2", "--lease-secs", "2"],
        &[("PROVERNODE_FAULT_HOLD_FIRST_RESULT_MS", "5000")],
    );
    let id = node.submit(fib(42));
    let t = node.wait_terminal(&id, LONG);
    assert_eq!(t["state"], "succeeded", "{t}");
    let history = t["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{t}");
    assert_eq!(history[0]["outcome"], "lease_lost", "{t}");
    assert_eq!(history[1]["outcome"], "succeeded", "{t}");
    let start = Instant::now();
    while !node.log_text().contains("result ignored (late or duplicate)") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the late result never came:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still exactly one success, and the stored proof verifies.
    let t = node.task(&id);
    assert_eq!(t["attempt_history"].as_array().unwrap().len(), 2, "{t}");
    assert_eq!(
        &verify(&node.proof(&id))[4..],
        &provernode_guests::fibonacci(42).to_le_bytes()
    );
}

#[test]
fn a_second_node_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = Node::start(&data, &["--workers", "1"], &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("another provernode (pid {})", node.pid())),
        "{err}"
    );
    // The first node was not disturbed.
    assert_eq!(
        node.wait_terminal(&node.submit(fib(3)), LONG)["state"],
        "succeeded"
    );
}

#[test]
fn the_memory_budget_runs_large_tasks_one_at_a_time_and_refuses_one_that_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    // Two slots, but a budget that holds one 600 MiB attempt at a time.
    let node = Node::start(
        &dir.path().join("data"),
        &["--workers", "2", "--memory-budget-mib", "1000"],
        &[],
    );
    let too_big = node
        .http()
        .post(format!("{}/v1/tasks", node.base))
        .json(&json!({"program": "fibonacci", "input": {"n": 1}, "memory_limit_mib": 2000}))
        .send()
        .unwrap();
    assert_eq!(too_big.status(), 400);
    let body: Value = too_big.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--memory-budget-mib"),
        "{body}"
    );
    // Each attempt spins until its 1 s timeout; with the budget they cannot overlap.
    let ids: Vec<String> = (0..2)
        .map(|_| {
            node.submit(
                json!({"program": "spin", "timeout_secs": 1.0, "max_attempts": 1, "memory_limit_mib": 600}),
            )
        })
        .collect();
    let spans: Vec<(i64, i64)> = ids
        .iter()
        .map(|id| {
            let t = node.wait_terminal(id, LONG);
            assert_eq!(t["terminal_reason"], "timeout", "{t}");
            let a = &t["attempt_history"][0];
            (a["started_ms"].as_i64().unwrap(), a["ended_ms"].as_i64().unwrap())
        })
        .collect();
    let (first, second) = if spans[0].0 <= spans[1].0 {
        (spans[0], spans[1])
    } else {
        (spans[1], spans[0])
    };
    assert!(
        second.0 >= first.1,
        "the attempts overlapped: {first:?} and {second:?}"
    );
}

#[test]
fn an_idle_warm_worker_counts_against_the_budget_and_gives_its_memory_back() {
    let dir = tempfile::tempdir().unwrap();
    // Room for 1000 MiB of workers. A proof at 600 MiB leaves a warm worker
    // holding its limit; a task at 500 MiB does not fit beside it, so the
    // idle worker must go before the new one starts, whichever slot takes
    // the task (the slot that owns the idle worker replaces it; the other
    // one asks it to retire). Counting only running attempts, the other
    // slot would start a second worker beside the idle one (1100 MiB).
    // Which slot claims is up to the scheduler, so the round is repeated.
    let node = Node::start(
        &dir.path().join("data"),
        &["--workers", "2", "--memory-budget-mib", "1000"],
        &[],
    );
    for round in 0..3 {
        let warm = node.submit(json!({"program": "fibonacci", "input": {"n": 5}, "memory_limit_mib": 600}));
        let t = node.wait_terminal(&warm, LONG);
        assert_eq!(t["state"], "succeeded", "{t}");
        assert_eq!(
            node.workers().len(),
            1,
            "round {round}: the warm worker stays after its proof"
        );

        let big = node.submit(
            json!({"program": "spin", "timeout_secs": 2.0, "max_attempts": 1, "memory_limit_mib": 500}),
        );
        node.wait_until(&big, LONG, |t| t["state"] == "leased");
        let mut samples = 0;
        while node.task(&big)["state"] == "leased" {
            let workers = node.workers();
            assert!(
                workers.len() <= 1,
                "round {round}: {} workers alive ({workers:?}) beside a 500 MiB attempt; the idle 600 MiB one should have gone",
                workers.len()
            );
            samples += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            samples > 5,
            "round {round}: the spin attempt ended too soon to observe ({samples} samples)"
        );
        let t = node.wait_terminal(&big, LONG);
        assert_eq!(t["terminal_reason"], "timeout", "{t}");
    }
    let metrics = node.metrics();
    let held: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("provernode_worker_memory_held_bytes "))
        .unwrap_or_else(|| panic!("no held-memory gauge in:\n{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(held <= (1000u64 << 20) as f64, "{held} bytes held");
}

fn official(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/official-guests")
        .join(name)
}

/// Issue 20: programs built by the official toolchains, submitted over HTTP
/// as users have them (an SP1 ELF with the `SP1Stdin` its project saved, an
/// R0BF `.bin`), are proved as tasks; a guest panic fails the task once as
/// `guest_panic` with the guest's message, without another attempt.
#[test]
fn official_guests_are_proved_as_tasks_and_a_guest_panic_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &["--workers", "1"], &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .arg("submit")
        .arg(official("sp1-cluster-fibonacci.elf"))
        .arg("--stdin-file")
        .arg(official("sp1-cluster-fibonacci.stdin"))
        .args(["--node", &node.base])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let t = node.wait_terminal(&id, LONG);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(
        verify(&node.proof(&id)),
        hex::decode("e80300004d170000430e0000").unwrap()
    );

    // Two items where the guest reads one u32: its bincode read panics.
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, b"ab").unwrap();
    std::fs::write(&b, b"cde").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .arg("submit")
        .arg(official("sp1-cluster-fibonacci.elf"))
        .arg("--input-item")
        .arg(&a)
        .arg("--input-item")
        .arg(&b)
        .args(["--node", &node.base])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let t = node.wait_terminal(&id, LONG);
    assert_eq!(t["state"], "failed", "{t}");
    assert_eq!(t["terminal_reason"], "guest_panic", "{t}");
    assert_eq!(t["attempts"], 1, "{t}");
    assert!(
        t.to_string().contains("deserialization failed"),
        "the guest's panic message is kept with the attempt: {t}"
    );

    // An R0BF is accepted whole: its id is the SHA-256 of the file.
    let body = json!({
        "program": "risc0-povw-log-builder.bin",
        "elf_base64": base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            std::fs::read(official("risc0-povw-log-builder.bin")).unwrap()
        ),
    });
    let id = node.submit(body);
    let t = node.wait_terminal(&id, LONG);
    assert_eq!(t["terminal_reason"], "guest_panic", "{t}");
    assert!(t.to_string().contains("DeserializeUnexpectedEnd"), "{t}");
}

/// The claims an aggregate of these stored proofs must commit.
fn expected_aggregate(proofs: &[Vec<u8>]) -> Vec<u8> {
    let registry = provernode_backends::Registry::default();
    let claims: Vec<_> = proofs
        .iter()
        .map(|p| {
            registry
                .claim_of(&provernode_core::ProofEnvelope::decode(p).unwrap())
                .unwrap()
        })
        .collect();
    provernode_core::aggregate::AggregateOutput::of_digests(claims).encode()
}

/// Issue 21: the node SIGKILLed while an aggregate's inner tasks and the
/// aggregate itself are in flight. After the restart every task ends once,
/// the aggregate (and an aggregate of it) proves the claims of the stored
/// inner proofs, and an aggregate over a task that ends without a proof
/// fails as dependency_failed, naming it.
#[test]
fn aggregates_survive_the_node_killed_mid_flight_and_a_failed_dependency_fails_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = Node::start(&data, &["--workers", "2"], &[]);
    let inner: Vec<String> = (0..6u32)
        .map(|i| node.submit(json!({"program": "sha256-chain", "input": {"rounds": 20000 + i}})))
        .collect();
    let aggregate = node.submit(json!({"program": "aggregate", "aggregate_of": inner}));
    let outer = node.submit(json!({"program": "aggregate", "aggregate_of": [aggregate, inner[0]]}));
    let t = node.task(&aggregate);
    assert_eq!(t["state"], "queued", "{t}");
    assert_eq!(t["depends_on"].as_array().unwrap().len(), 6, "{t}");
    node.wait_until(&inner[1], LONG, |t| t["state"] != "queued");
    node.kill9();
    let mut node = Node::start(&data, &["--workers", "2"], &[]);
    for id in inner.iter().chain([&aggregate, &outer]) {
        let t = node.wait_terminal(id, LONG);
        assert_eq!(t["state"], "succeeded", "{t}\n{}", node.log_text());
        let history = t["attempt_history"].as_array().unwrap();
        assert_eq!(
            history.iter().filter(|a| a["outcome"] == "succeeded").count(),
            1,
            "{t}"
        );
    }
    let proofs: Vec<Vec<u8>> = inner.iter().map(|id| node.proof(id)).collect();
    let aggregate_proof = node.proof(&aggregate);
    assert_eq!(verify(&aggregate_proof), expected_aggregate(&proofs));
    assert_eq!(
        verify(&node.proof(&outer)),
        expected_aggregate(&[aggregate_proof, proofs[0].clone()])
    );

    // A dependency that ends without a proof ends its aggregate, and the
    // aggregate of that aggregate, each naming the one it waited for.
    let doomed = node.submit(json!({"program": "fibonacci", "input_hex": "0102"}));
    let waiting = node.submit(json!({"program": "aggregate", "aggregate_of": [inner[0], doomed]}));
    let above = node.submit(json!({"program": "aggregate", "aggregate_of": [waiting]}));
    for (id, names) in [(&waiting, &doomed), (&above, &waiting)] {
        let t = node.wait_terminal(id, LONG);
        assert_eq!(t["state"], "failed", "{t}");
        assert_eq!(t["terminal_reason"], "dependency_failed", "{t}");
        assert!(t["detail"].as_str().unwrap().contains(names.as_str()), "{t}");
    }
    // Aggregates are refused at the door when they cannot be made.
    let resp = node
        .http()
        .post(format!("{}/v1/tasks", node.base))
        .json(&json!({"program": "aggregate", "aggregate_of": [inner[0]], "input_hex": "00"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = node
        .http()
        .post(format!("{}/v1/tasks", node.base))
        .json(&json!({"program": "aggregate", "aggregate_of": [inner[0], "01a22e44-0000-7000-8000-000000000000"]}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("aggregate_of[1]"),
        "{body}"
    );
    node.kill9();
}

/// The proof `provernode prove` makes of the same program and input, in
/// one process.
fn unsplit_proof(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = dir.join("unsplit.proof");
    let status = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .arg("prove")
        .args(args)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

#[test]
fn a_split_task_survives_the_node_killed_mid_tree_and_ends_in_the_unsplit_proof() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--workers", "2", "--split-backends", "trace", "--split-po2", "13"];
    // Parts take 150 ms each, so the kill lands with parts in flight.
    let env = [("PROVERNODE_FAULT_PART_DELAY_MS", "150")];
    let mut node = Node::start(&data, &args, &env);
    let id = node.submit(fib(20000));
    let t = node.wait_until(&id, LONG, |t| {
        t["split"]["segments_proved"].as_u64().unwrap_or(0) >= 4
    });
    let segments = t["split"]["segments"].as_u64().unwrap();
    assert!(segments >= 30, "{t}");
    assert_eq!(t["split"]["segment_po2"], 13, "the plan's segment size: {t}");
    assert_eq!(t["state"], "leased", "{t}");
    assert_eq!(t["lease"]["owner"], "split", "{t}");
    node.kill9();
    let node = Node::start(&data, &args, &env);
    let t = node.wait_terminal(&id, LONG);
    assert_eq!(t["state"], "succeeded", "{t}\n{}", node.log_text());
    assert_eq!(t["split"]["segments_proved"], segments, "{t}");
    assert_eq!(t["split"]["joins_done"], segments - 1, "{t}");
    let proof = node.proof(&id);
    assert_eq!(
        proof,
        unsplit_proof(dir.path(), &["fibonacci", "--n", "20000"]),
        "the split proof is the unsplit one, byte for byte"
    );
    let parts = node.parts(&id);
    assert_eq!(parts.len() as u64, 2 * segments - 1, "segments and joins");
    let mut lost = 0;
    for part in &parts {
        let p = node.task(part["id"].as_str().unwrap());
        assert_eq!(p["state"], "succeeded", "{p}");
        let history = p["attempt_history"].as_array().unwrap();
        assert_eq!(
            history.iter().filter(|a| a["outcome"] == "succeeded").count(),
            1,
            "{p}"
        );
        lost += history.iter().filter(|a| a["outcome"] == "lease_lost").count();
    }
    assert!(lost >= 1, "the kill cost the parts in flight an attempt each");
    // Lists hold what clients submitted; parts come with `parts` or
    // `parent`, and the CLI's `tasks --parent` shows the tree.
    let listed = |query: &str| -> Vec<String> {
        let list: Value = node
            .http()
            .get(format!("{}/v1/tasks?limit=1000{query}", node.base))
            .send()
            .unwrap()
            .json()
            .unwrap();
        list["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let default = listed("");
    assert!(default.contains(&id), "{default:?}");
    assert!(parts
        .iter()
        .all(|p| !default.contains(&p["id"].as_str().unwrap().to_owned())));
    let everything = listed("&parts=true");
    assert_eq!(everything.len(), default.len() + parts.len(), "{everything:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(["tasks", "--parent", &id, "--limit", "1000", "--node", &node.base])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        table.lines().filter(|l| l.contains("join of segments")).count() as u64,
        segments - 1,
        "{table}"
    );
    let bad = node
        .http()
        .get(format!("{}/v1/tasks?parent=nope", node.base))
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    // Cancelling a split task cancels its parts; no part runs on.
    let id = node.submit(fib(20001));
    node.wait_until(&id, LONG, |t| {
        t["split"]["segments_proved"].as_u64().unwrap_or(0) >= 2
    });
    let resp = node
        .http()
        .post(format!("{}/v1/tasks/{id}/cancel", node.base))
        .send()
        .unwrap();
    assert!(resp.status().is_success());
    let t = node.wait_terminal(&id, LONG);
    assert_eq!(t["state"], "cancelled", "{t}");
    let parts = node.settled_parts(&id, LONG);
    assert!(parts.iter().any(|p| p["state"] == "cancelled"), "{parts:?}");
}

#[test]
fn a_task_without_a_timeout_gets_one_sized_from_its_cycles_and_the_measured_rate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Every attempt takes 4 s more than proving does; the default timeout is 2 s.
    let args = ["--workers", "1", "--default-timeout-secs", "2"];
    let env = [("PROVERNODE_FAULT_PROVE_DELAY_MS", "4000")];
    let node = Node::start(&data, &args, &env);
    let one_attempt = |extra: Value| {
        let mut body = json!({"program": "fibonacci", "input": {"n": 1000}, "max_attempts": 1});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        node.submit(body)
    };
    // No rate is known yet: the default is all a task gets.
    let t = node.wait_terminal(&one_attempt(json!({})), LONG);
    assert_eq!(t["terminal_reason"], "timeout", "{t}");

    let calibrated = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(["calibrate", "--backend", "trace", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&calibrated.stdout);
    assert!(
        calibrated.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&calibrated.stderr)
    );
    assert!(
        table.contains("| trace") && table.contains("calibrate"),
        "{table}"
    );

    // Now a task that names no timeout gets 60 s + 3 × cycles / rate.
    let t = node.wait_terminal(&one_attempt(json!({})), LONG);
    assert_eq!(t["state"], "succeeded", "{t}\n{}", node.log_text());
    assert!(node.log_text().contains("attempt timeout sized from its cycles"));
    // A task that names its timeout keeps it.
    let t = node.wait_terminal(&one_attempt(json!({"timeout_secs": 2})), LONG);
    assert_eq!(t["terminal_reason"], "timeout", "{t}");
}
