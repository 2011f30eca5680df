//! The binary as `.ci/run` builds it, with the real backends (`--features
//! risc0,sp1`): every backend says it is available, and an SP1 process
//! reclaims the shared memory a dead one left in `/dev/shm` while keeping
//! what a live process holds. Proofs themselves are tested in each
//! backend's `tests/prove.rs`.

#![cfg(all(feature = "risc0", feature = "sp1"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

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
