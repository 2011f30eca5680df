//! Issue 24: the node's verified artifacts through the real binary. Every
//! copy is checked at start; one bad copy is repaired from the other;
//! an artifact with no good copy keeps readiness false, names itself and
//! the fix, and keeps the tasks of the backend that needs it from being
//! claimed (and only those), until a good copy is imported.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{fib, Node, LONG};
use serde_json::Value;

fn provernode(args: &[&str], data: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("PROVERNODE_DATA_DIR")
        .output()
        .unwrap()
}

fn readyz(node: &Node) -> (u16, Value) {
    let resp = node.http().get(format!("{}/readyz", node.base)).send().unwrap();
    (resp.status().as_u16(), resp.json().unwrap())
}

/// Waits until the artifacts' verification has ended with this status;
/// returns /readyz.
fn artifacts_become(node: &Node, status: &str) -> (u16, Value) {
    let start = Instant::now();
    loop {
        let (code, body) = readyz(node);
        let component = &body["components"]["artifacts"];
        let verifying = component["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("verifying"));
        if component["status"] == status && !verifying {
            return (code, body);
        }
        assert!(
            start.elapsed() < LONG,
            "artifacts never {status}: {body}\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn artifacts_are_verified_repaired_from_their_backup_and_a_lost_one_blocks_only_its_backend() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let params = dir.path().join("params.bin");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&params, &content).unwrap();

    // An operator-supplied file that trace tasks need, imported before start.
    let out = provernode(
        &["artifacts", "import", params.to_str().unwrap(), "--for", "trace"],
        &data,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let primary = data.join("artifacts/files/file/params.bin");
    let backup = data.join("artifacts-backup/files/file/params.bin");
    assert_eq!(std::fs::read(&backup).unwrap(), content);

    // A good store: ready, and a program uploaded is kept as an artifact.
    let mut node = Node::start(&data, &[], &[]);
    let (code, body) = artifacts_become(&node, "ok");
    assert_eq!(code, 200, "{body}");
    let id = node.submit(fib(12));
    assert_eq!(node.wait_terminal(&id, LONG)["state"], "succeeded");
    let elf = provernode_guests::find("sha256")
        .unwrap()
        .program(provernode_core::Abi::Sp1)
        .elf()
        .to_vec();
    let program_id = provernode_core::ProgramId::of_elf(&elf).to_string();
    let resp = node
        .http()
        .put(format!("{}/v1/programs", node.base))
        .body(elf)
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text());
    node.sigterm_and_wait(LONG);
    let out = provernode(&["artifacts", "list", "--json"], &data);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&format!("program/{program_id}").as_str()),
        "{list}"
    );
    assert!(names.contains(&"file/params.bin"), "{list}");

    // One copy damaged: repaired at start, counted, ready.
    flip_a_byte(&primary);
    let mut node = Node::start(&data, &[], &[]);
    let (code, body) = artifacts_become(&node, "ok");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        std::fs::read(&primary).unwrap(),
        content,
        "the primary is rewritten from the backup"
    );
    let metrics = node.metrics();
    assert!(
        metrics.contains("provernode_artifacts_repaired_total{kind=\"file\",copy=\"primary\"} 1"),
        "{metrics}"
    );
    assert!(
        node.log_text().contains("artifact copy was bad"),
        "{}",
        node.log_text()
    );
    node.sigterm_and_wait(LONG);
    // fibonacci, stored by a submission rather than an upload, was kept as
    // an artifact at this start.
    let fib_id = provernode_core::ProgramId::of_elf(
        provernode_guests::find("fibonacci")
            .unwrap()
            .program(provernode_core::Abi::Risc0)
            .elf(),
    );
    let out = provernode(&["artifacts", "list"], &data);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("program/{fib_id}")), "{text}");

    // Both copies bad: not ready, named with the fix; trace tasks wait,
    // and nothing else is held up (sp1 tasks are not built here, so the
    // check is that the node serves and stores).
    flip_a_byte(&primary);
    std::fs::remove_file(&backup).unwrap();
    // doctor sees it cheaply (sizes, no hashing) and warns: the node starts.
    std::fs::write(&primary, b"short").unwrap();
    let out = provernode(&["doctor", "run", "--listen", "127.0.0.1:0"], &data);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "a lost artifact is a warning, not a failure: {report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("WARN") && l.contains("artifacts") && l.contains("file/params.bin")),
        "{report}"
    );
    // And one copy of a program damaged: repaired at this start, and
    // counted once however often the failed file is looked at again.
    flip_a_byte(&data.join(format!("artifacts/files/program/{fib_id}")));
    let node = Node::start(&data, &[], &[]);
    let (code, body) = artifacts_become(&node, "failing");
    assert_eq!(code, 503, "{body}");
    let detail = body["components"]["artifacts"]["detail"].as_str().unwrap();
    assert!(detail.contains("file/params.bin"), "{detail}");
    assert!(
        detail.contains("provernode artifacts import FILE --name params.bin"),
        "{detail}"
    );
    assert!(detail.contains("tasks of trace are not claimed"), "{detail}");
    let waiting = node.submit(fib(10));
    // Past the node's second look at the failed file (every 5 s).
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(
        node.task(&waiting)["state"],
        "queued",
        "a trace task is not claimed meanwhile"
    );
    let metrics = node.metrics();
    assert!(
        metrics.contains("provernode_artifacts_repaired_total{kind=\"program\",copy=\"primary\"} 1\n"),
        "one repair, counted once: {metrics}"
    );
    let log = node.log_text();
    assert_eq!(
        log.matches("artifact file/params.bin (file) has no good copy")
            .count(),
        1,
        "logged when found, not at every look: {log}"
    );
    let out = provernode(&["artifacts", "verify"], &data);
    assert!(
        !out.status.success(),
        "verify fails while an artifact has no good copy"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("FAILED    file/params.bin"),
        "{out:?}"
    );

    // A good copy imported: the running node sees it and claims again.
    let out = provernode(
        &["artifacts", "import", params.to_str().unwrap(), "--for", "trace"],
        &data,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, body) = artifacts_become(&node, "ok");
    assert_eq!(code, 200, "{body}");
    assert_eq!(node.wait_terminal(&waiting, LONG)["state"], "succeeded");
    let out = provernode(&["artifacts", "verify", "--json"], &data);
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["finding"] == "good"),
        "{report}"
    );
}
