//! The binary as `.ci/run` builds it, with the real backends (`--features
//! risc0,sp1`): every backend says it is available, and an SP1 process
//! reclaims the shared memory a dead one left in `/dev/shm` while keeping
//! what a live process holds; a RISC Zero split's segments shrink to the
//! attempt's memory limit and cancelling it stops its parts; a RISC Zero
//! proof split across a cluster's agents survives their faults. Proofs
//! themselves are tested in each backend's `tests/prove.rs`.

#![cfg(all(feature = "risc0", feature = "sp1"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod common;

use std::path::PathBuf;

use assert_cmd::Command;

fn provernode() -> Command {
    match Command::cargo_bin("provernode") {
        Ok(c) => c,
        Err(e) => panic!("the provernode binary was not built: {e}"),
    }
}

#[test]
fn trace_risc0_and_sp1_are_available() {
    let out = provernode().args(["backends", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for name in ["trace", "risc0", "sp1"] {
        let backend = listed
            .as_array()
            .and_then(|all| all.iter().find(|b| b["name"] == name))
            .unwrap_or_else(|| panic!("{name} is not listed: {listed}"));
        assert_eq!(backend["available"], true, "{name}: {backend}");
    }
}

/// A fake SP1 object in the real `/dev/shm`, removed when the test ends.
struct ShmObject(PathBuf);

impl ShmObject {
    fn new(tag: &str) -> ShmObject {
        let path = PathBuf::from(format!(
            "/dev/shm/sp1_provernode-test-{tag}-{}_t",
            std::process::id()
        ));
        std::fs::write(&path, vec![1u8; 1 << 20]).expect("/dev/shm must be writable for this test");
        ShmObject(path)
    }
}

impl Drop for ShmObject {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn an_sp1_process_reclaims_what_dead_ones_left_and_keeps_what_live_ones_hold() {
    use std::os::unix::process::ExitStatusExt;

    let orphan = ShmObject::new("orphan");
    let held = ShmObject::new("held");
    let handle = std::fs::File::open(&held.0).unwrap();
    // An orphaned SP1 runner: a process executing a file named like SP1's
    // runner, holding its object (here as its stdin) after its parent died.
    let runner_object = ShmObject::new("runner");
    let dir = tempfile::tempdir().unwrap();
    let runner_exe = dir.path().join("sp1-native-runner-bin-provernode-test");
    std::fs::copy("/bin/sleep", &runner_exe).expect("copy /bin/sleep (coreutils) for a stand-in runner");
    let mut runner = std::process::Command::new(&runner_exe)
        .arg("600")
        .stdin(std::fs::File::open(&runner_object.0).unwrap())
        .spawn()
        .unwrap();

    // Any process with the SP1 backend sweeps when the backend is made.
    let out = provernode().args(["backends"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    assert!(!orphan.0.exists(), "{} was left in place", orphan.0.display());
    assert!(
        held.0.exists(),
        "{} was removed while this process held it",
        held.0.display()
    );
    assert!(
        !runner_object.0.exists(),
        "{} was left with its runner",
        runner_object.0.display()
    );
    let status = runner.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the orphaned runner was not killed: {status}"
    );
    for logged in ["orphan", "runner", "an SP1 runner whose process is gone"] {
        assert!(
            stderr.contains("removed what a dead SP1 process left behind") && stderr.contains(logged),
            "the removal of {logged} was not logged: {stderr}"
        );
    }
    drop(handle);
}

/// Issue 22 on the real backend, through the real node: a RISC Zero
/// succinct task split into two 2^16-row segments, the node SIGKILLed once
/// the first part is proved, restarted; the split task ends with one
/// succinct receipt that verifies against the image id and the journal
/// (the claim of the unsplit run). About 8 minutes on 2 cores, so it runs
/// by hand: `cargo test --release --features risc0,sp1 -p provernode --test
/// real_backends -- --ignored --nocapture`.
#[test]
#[ignore = "minutes of real proving; run by hand (see the comment)"]
fn a_risc0_split_proof_survives_the_node_killed_mid_tree() {
    use common::{verify, Node};
    use std::time::Duration;
    let long = Duration::from_secs(3600);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--workers", "2", "--split-backends", "risc0", "--split-po2", "16"];
    let mut node = Node::start(&data, &args, &[]);
    let started = std::time::Instant::now();
    let id = node.submit(serde_json::json!({
        "program": "fibonacci", "input": {"n": 1500}, "backend": "risc0", "proof_kind": "succinct"
    }));
    let t = node.wait_until(&id, long, |t| {
        t["split"]["segments_proved"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(t["split"]["segments"], 2, "{t}");
    assert_eq!(t["split"]["segment_po2"], 16, "the plan's segment size: {t}");
    eprintln!(
        "first segment proved after {:.0} s; killing the node",
        started.elapsed().as_secs_f64()
    );
    node.kill9();
    let node = Node::start(&data, &args, &[]);
    let t = node.wait_terminal(&id, long);
    assert_eq!(t["state"], "succeeded", "{t}\n{}", node.log_text());
    eprintln!("split proof done after {:.0} s", started.elapsed().as_secs_f64());
    let proof = node.proof(&id);
    let envelope = provernode_core::ProofEnvelope::decode(&proof).unwrap();
    assert_eq!(envelope.proof_kind, "succinct");
    let mut expected = 1500u32.to_le_bytes().to_vec();
    expected.extend_from_slice(&provernode_guests::fibonacci(1500).to_le_bytes());
    assert_eq!(
        verify(&proof),
        expected,
        "the receipt verifies with the image id and this journal"
    );
}

/// The node lowers the segment size a split asks for (`--split-po2 20`)
/// until one segment's proof fits the attempt's memory limit (risc0: 10 KiB
/// a row, so succinct's floor of 1.5 GiB holds 2^17 rows), and the task's
/// status says which size the plan used: at 2^20 this program (about 325 k
/// cycles) is one segment and would not be split at all. Cancelling the
/// task then stops the real segment proof in flight and frees its worker.
/// Seconds: one execution, no proof finished.
#[test]
fn a_risc0_split_shrinks_its_segments_to_the_attempts_memory_and_cancels_with_its_parts() {
    use common::Node;
    use std::time::{Duration, Instant};
    let long = Duration::from_secs(600);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--workers",
        "1",
        "--split-backends",
        "risc0",
        "--split-po2",
        "20",
        "--default-memory-limit-mib",
        "1536",
    ];
    let node = Node::start(&dir.path().join("data"), &args, &[]);
    let id = node.submit(serde_json::json!({
        "program": "fibonacci", "input": {"n": 20000}, "backend": "risc0", "proof_kind": "succinct"
    }));
    // A segment part held by the worker: its proof is under way.
    let t = node.wait_until(&id, long, |t| {
        let open = matches!(t["state"].as_str(), Some("queued") | Some("leased"));
        assert!(open, "the task ended unsplit: {t}");
        t["split"]["segments"].as_u64().is_some() && node.parts(&id).iter().any(|p| p["state"] == "leased")
    });
    assert_eq!(
        t["split"]["segment_po2"], 17,
        "2^20 lowered to what 1.5 GiB holds: {t}"
    );
    assert!(t["split"]["segments"].as_u64() >= Some(2), "{t}");
    let proving = node.workers();
    assert!(!proving.is_empty(), "no worker holds the segment part");
    let resp = node
        .http()
        .post(format!("{}/v1/tasks/{id}/cancel", node.base))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{resp:?}");
    assert_eq!(node.wait_terminal(&id, long)["state"], "cancelled");
    let parts = node.settled_parts(&id, long);
    assert!(
        parts.iter().all(|p| p["state"] == "cancelled"),
        "no part was proved: {parts:?}"
    );
    // The worker proving the part is killed (a segment proof here takes
    // minutes), and the one slot proves again.
    let start = Instant::now();
    while proving.iter().any(|p| node.workers().contains(p)) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the cancelled part's worker still runs: {proving:?}\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let next = node.submit(common::fib(7));
    assert_eq!(
        node.wait_terminal(&next, long)["state"],
        "succeeded",
        "{}",
        node.log_text()
    );
}

/// Issue 22's cluster scenario with real parts: a RISC Zero succinct proof
/// split into two segments of 2^16 rows, through a PostgreSQL cluster of
/// two brokers and three agents proving one part at a time. An agent is
/// SIGKILLed (with its worker) while it holds a segment, and a third agent
/// joins, which starts its parts late; the segment the survivor proves
/// meanwhile is damaged in storage while it waits for its neighbour; broker 0 is restarted while the neighbour is proved;
/// then the whole cluster, PostgreSQL included, is stopped and started
/// again with the neighbour still in flight, and three new agents finish.
/// It ends with one succinct receipt that verifies against the image id and
/// the unsplit run's journal, each part accepted once (the damaged segment
/// twice), proved by agents from before and after the restart. About 6
/// minutes on 2 cores.
#[test]
fn a_risc0_split_proof_through_a_cluster_survives_a_killed_agent_a_damaged_segment_and_restarts() {
    use common::children;
    use common::cluster::{parts_of, segment_holder, Cluster};
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    let mut c = Cluster::new(2);
    c.patience = Duration::from_secs(3600);
    let split = ["--split-backends", "risc0", "--split-po2", "16"];
    for broker in [0, 1] {
        c.add_agent_with(broker, &[], &split);
    }
    let started = Instant::now();
    let id = c.submit(
        1,
        serde_json::json!({"program": "fibonacci", "input": {"n": 1500},
                           "backend": "risc0", "proof_kind": "succinct"}),
    );

    // The first agent seen proving a segment dies with its worker; the
    // other proves its own segment, then (once the dead one's lease has
    // expired) the dead one's.
    let victim = loop {
        if let Some(holder) = parts_of(&c, 0, &id).iter().find_map(segment_holder) {
            if !children(c.agents[holder].pid()).is_empty() {
                break holder;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no segment was ever proved:\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let t = c.task(0, &id).unwrap();
    assert_eq!(t["split"]["segments"], 2, "{t}");
    c.kill_agent(victim);
    eprintln!(
        "agent{victim} killed holding a segment after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // The newcomer starts each part a minute late: whichever segment it
    // takes (the one still queued, or the dead agent's once its lease
    // expires), the survivor's ends first and waits for its neighbour,
    // the window the damage below needs (without it both could end
    // together and be joined at once).
    let late = [("PROVERNODE_FAULT_PART_DELAY_MS", "60000")];
    c.add_agent_with(0, &late, &split);

    // The segment proved first, damaged while its neighbour is proved.
    let damaged = loop {
        if let Some(part) = c.damage_a_waiting_segment(&id, 0) {
            break part;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1200),
            "no segment ever waited for its neighbour:\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "segment {damaged} damaged after {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // Broker 0 restarted while the neighbour is being proved (by the
    // newcomer, which talks to broker 0).
    c.brokers[0].1.as_mut().unwrap().kill9();
    std::thread::sleep(Duration::from_millis(500));
    c.start_broker(0);

    // The whole cluster stopped (agents with their workers and brokers
    // killed, PostgreSQL stopped) and started again while the neighbour
    // is still in flight; three new agents finish the tree.
    let t = c.wait_until(0, &id, |t| {
        t["state"] != "leased" || parts_of(&c, 0, &id).iter().any(|p| segment_holder(p).is_some())
    });
    assert_eq!(t["state"], "leased", "still in progress: {t}");
    c.restart_everything(&[0, 1, 0], &[], &split);
    eprintln!(
        "the cluster stopped and started again after {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let t = c.wait_terminal(1, &id);
    assert_eq!(t["state"], "succeeded", "{t}\n{}", c.logs());
    eprintln!("split proof done after {:.0} s", started.elapsed().as_secs_f64());
    assert_eq!(t["split"]["segments_proved"], 2, "{t}");
    assert_eq!(t["split"]["joins_done"], 1, "{t}");
    let proof = c.proof(0, &id);
    let envelope = provernode_core::ProofEnvelope::decode(&proof).unwrap();
    assert_eq!(envelope.proof_kind, "succinct");
    let mut expected = 1500u32.to_le_bytes().to_vec();
    expected.extend_from_slice(&provernode_guests::fibonacci(1500).to_le_bytes());
    assert_eq!(
        common::verify(&proof),
        expected,
        "the receipt verifies with the image id and the unsplit run's journal"
    );

    let parts = parts_of(&c, 0, &id);
    assert_eq!(parts.len(), 3, "two segments and their join: {parts:?}");
    let mut provers = BTreeSet::new();
    let mut victim_lost_one = false;
    for part in &parts {
        let pid = part["id"].as_str().unwrap();
        let p = c.task(0, pid).unwrap();
        assert_eq!(p["state"], "succeeded", "{p}");
        let history = p["attempt_history"].as_array().unwrap();
        let succeeded: Vec<_> = history.iter().filter(|a| a["outcome"] == "succeeded").collect();
        let expected = if pid == damaged { 2 } else { 1 };
        assert_eq!(succeeded.len(), expected, "{p}");
        for a in &succeeded {
            provers.insert(a["owner"].as_str().unwrap().split('/').next().unwrap().to_owned());
        }
        victim_lost_one |= history.iter().any(|a| {
            a["outcome"] == "lease_lost"
                && a["owner"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("agent{victim}/"))
        });
    }
    assert!(
        victim_lost_one,
        "the killed agent's attempt is recorded as lease_lost: {parts:?}"
    );
    // The survivor proved the damaged segment's first proof before the
    // restart; what was left after it, only the new agents could prove.
    let survivor = format!("agent{}", 1 - victim);
    assert!(
        provers.contains(&survivor),
        "{survivor} proved nothing: {provers:?}"
    );
    assert!(
        ["agent3", "agent4", "agent5"]
            .iter()
            .any(|a| provers.contains(*a)),
        "no agent of the restarted cluster proved a part: {provers:?}"
    );
}
