//! The real `provernode` binary, end to end: the commands a newcomer runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use assert_cmd::Command;
use predicates::prelude::*;
use provernode_core::{sha256, Abi, ProofEnvelope};

fn provernode() -> Command {
    match Command::cargo_bin("provernode") {
        Ok(c) => c,
        Err(e) => panic!("the provernode binary was not built: {e}"),
    }
}

fn reseal(bytes: &mut [u8]) {
    let end = bytes.len() - 32;
    let sum = sha256(&bytes[..end]);
    bytes[end..].copy_from_slice(sum.as_bytes());
}

#[test]
fn programs_lists_every_guest_with_its_program_id_for_each_abi() {
    let fib = provernode_guests::find("fibonacci").unwrap();
    let out = provernode().arg("programs").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for abi in Abi::ALL {
        assert!(text.contains(&fib.program(abi).id().to_string()), "{text}");
    }
    assert!(text.contains("sha256-chain"));
    assert!(!text.contains("memhog"), "test guests only with --all");
    provernode()
        .args(["programs", "--all"])
        .assert()
        .success()
        .stdout(predicate::str::contains("memhog"));
}

#[test]
fn execute_prints_the_known_answer_on_both_abis() {
    for abi in ["risc0", "sp1"] {
        provernode()
            .args(["execute", "fibonacci", "--n", "90", "--abi", abi])
            .assert()
            .success()
            .stdout(predicate::str::contains("fib=2880067194370816120"));
    }
    let out = provernode()
        .args(["execute", "sha256", "--text", "abc", "--json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        v["public_output_hex"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert!(v["cycles"].as_u64().unwrap() > 0);
}

#[test]
fn prove_then_verify_round_trips_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let proof = dir.path().join("fib.proof");
    provernode()
        .args(["prove", "fibonacci", "--n", "30", "--abi", "sp1", "-o"])
        .arg(&proof)
        .assert()
        .success()
        .stdout(predicate::str::contains("fib=832040"));
    provernode()
        .arg("verify")
        .arg(&proof)
        .assert()
        .success()
        .stdout(predicate::str::contains("verified      yes").and(predicate::str::contains("fib=832040")));

    // A flipped byte: the envelope checksum says the file is corrupt.
    let bytes = std::fs::read(&proof).unwrap();
    let mut corrupt = bytes.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x40;
    let corrupt_path = dir.path().join("corrupt.proof");
    std::fs::write(&corrupt_path, &corrupt).unwrap();
    provernode()
        .arg("verify")
        .arg(&corrupt_path)
        .assert()
        .failure()
        .stderr(predicate::str::contains("corrupt"));

    // A forged public output with a valid checksum: the proof does not verify.
    let mut env = ProofEnvelope::decode(&bytes).unwrap();
    env.public_output[4] ^= 1;
    let mut forged = env.encode().unwrap();
    reseal(&mut forged);
    let forged_path = dir.path().join("forged.proof");
    std::fs::write(&forged_path, &forged).unwrap();
    provernode()
        .arg("verify")
        .arg(&forged_path)
        .assert()
        .failure()
        .stderr(predicate::str::contains("does NOT verify").and(predicate::str::contains("public output")));
}

#[test]
fn a_file_that_is_not_an_envelope_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello").unwrap();
    provernode()
        .arg("verify")
        .arg(&path)
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a provernode proof envelope"));
}

#[test]
fn an_elf_path_runs_with_raw_input_and_a_non_elf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("fib.elf");
    std::fs::write(&elf, provernode_guests::find("fibonacci").unwrap().elf(Abi::Sp1)).unwrap();
    provernode()
        .args(["execute"])
        .arg(&elf)
        .args(["--input-hex", "0a000000"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("0a000000" /* n */).and(predicate::str::contains("3700000000000000")),
        );
    provernode()
        .args(["execute"])
        .arg(&elf)
        .args(["--n", "10"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--input-file or --input-hex"));
    provernode()
        .args(["execute"])
        .arg(&elf)
        .args(["--abi", "risc0"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("ELF64"));
    let script = dir.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    provernode()
        .arg("execute")
        .arg(&script)
        .assert()
        .failure()
        .stderr(predicate::str::contains("not an ELF file"));
}

#[test]
fn bad_requests_fail_with_a_message_that_says_what_to_do() {
    provernode()
        .args(["execute", "fibonacci", "--backend", "nexus", "--n", "1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown backend `nexus`").and(predicate::str::contains("trace")));
    provernode()
        .args(["execute", "fibonacci", "--backend", "sp1", "--n", "1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unavailable"));
    provernode()
        .args(["execute", "fibonacci"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("needs --n"));
    provernode()
        .args(["execute", "no-such-guest"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("neither a built-in guest"));
    provernode()
        .args(["execute", "spin", "--max-cycles", "5000"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("cycle limit of 5000").and(predicate::str::contains("pc 0x")));
    provernode()
        .args(["execute", "fibonacci", "--input-hex", "0102"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("rejected its input"));
}

#[test]
fn demo_proves_and_verifies_every_guest_on_every_available_backend() {
    let out = provernode().arg("demo").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let rows = text.lines().filter(|l| l.starts_with("| trace")).count();
    let per_abi: usize = provernode_guests::all()
        .iter()
        .filter(|g| !g.test_only)
        .map(|g| g.demo_inputs().len())
        .sum();
    // Plus one aggregate of each ABI's proofs, whose claims the demo checks.
    assert_eq!(rows, 2 * per_abi + 2, "{text}");
    let aggregates: Vec<_> = text.lines().filter(|l| l.contains("| aggregate ")).collect();
    assert_eq!(aggregates.len(), 2, "{text}");
    assert!(
        aggregates
            .iter()
            .all(|l| l.contains(&format!("{per_abi} proofs"))
                && l.contains(&format!("{per_abi} claims root="))),
        "{text}"
    );
    assert!(text.contains("skipped risc0"), "{text}");
    assert!(
        text.contains(&format!(
            "{} proofs made through the node and verified",
            2 * per_abi + 2
        )),
        "{text}"
    );
}

/// Issue 19, item 12: `prove -o /nonexistent/x.proof` proved for minutes,
/// then failed to write. The endless guest would never get to the write.
#[test]
fn prove_checks_where_the_proof_goes_before_proving() {
    provernode()
        .args(["prove", "spin", "-o", "/nonexistent/dir/x.proof"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .failure()
        .stderr(predicate::str::contains("/nonexistent/dir does not exist"));
}

/// Issue 19, item 12: `demo --backend risc0` on a build without it exited 0
/// with "0 proofs made".
#[test]
fn demo_of_a_backend_this_build_lacks_fails_saying_how_to_get_it() {
    let registry = provernode_backends::Registry::default();
    let missing: Vec<_> = registry.all().iter().filter(|b| b.available().is_err()).collect();
    for backend in missing {
        provernode()
            .args(["demo", "--backend", backend.name()])
            .assert()
            .failure()
            .stderr(predicate::str::contains("rebuild with"));
    }
}

/// Issue 19, item 12: `verify --json` printed plain text on failure.
#[test]
fn verify_json_stays_json_when_the_proof_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.proof");
    std::fs::write(&bad, b"not a proof").unwrap();
    let out = provernode()
        .args(["verify", "--json"])
        .arg(&bad)
        .assert()
        .failure();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["verified"], false, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("not a provernode proof envelope"),
        "{v}"
    );
}

/// Issue 19, item 12: a data directory that is a file said "File exists";
/// start-up errors printed the database's error three times; log lines
/// carried colour codes into files.
#[test]
fn start_up_errors_say_what_is_wrong_once_and_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, b"x").unwrap();
    provernode()
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&file)
        .assert()
        .failure()
        .stderr(predicate::str::contains("is a file, not a directory"));
    let data = dir.path().join("damaged");
    std::fs::create_dir(&data).unwrap();
    let mut junk = b"not a database at all, not even close..".to_vec();
    junk.resize(16384, 0x5a);
    std::fs::write(data.join("queue.sqlite"), junk).unwrap();
    let out = provernode()
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("PROVERNODE_LOG", "info")
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.matches("file is not a database").count(), 1, "{stderr}");
    assert!(stderr.contains("restore the database from a backup"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "colour codes in a log that is not a terminal: {stderr:?}"
    );
}

/// Issue 19, item 12: a token of spaces "protected" a public address.
#[test]
fn a_blank_token_does_not_open_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    provernode()
        .args(["run", "--listen", "0.0.0.0:0", "--token", "   ", "--data-dir"])
        .arg(dir.path().join("data"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("only whitespace"));
}

fn official(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/official-guests")
        .join(name)
}

/// Issue 20, item 1: `programs inspect` says what a file is and which
/// system calls it can make, and which of those trace emulates.
#[test]
fn programs_inspect_reads_an_r0bf_and_an_sp1_elf() {
    let out = provernode()
        .args(["programs", "inspect", "--json"])
        .arg(official("risc0-povw-log-builder.bin"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "RISC Zero program binary (R0BF)");
    assert_eq!(v["abi"], "risc0");
    assert_eq!(v["r0bf"]["kernel_known"], true, "{v}");
    assert_eq!(
        v["program_id"],
        "5ce4caac20a34c131337c4af4ee5cf7b72f89abdd8e3f2a53988a3c38c4b2130"
    );
    let calls = v["system_calls"].to_string();
    assert!(
        calls.contains("SYS_RANDOM") && calls.contains("SYS_VERIFY_INTEGRITY"),
        "{calls}"
    );

    provernode()
        .args(["programs", "inspect"])
        .arg(official("sp1-gpu-trap.elf"))
        .assert()
        .success()
        .stdout(predicate::str::contains("SHA_EXTEND"))
        .stdout(predicate::str::contains("POSEIDON2"))
        .stdout(predicate::str::contains("MPROTECT"))
        .stdout(predicate::str::contains("not yet: stops with its name").not())
        .stdout(predicate::str::contains("untrusted program (.note.succinct"))
        .stdout(predicate::str::contains(
            "trace emulates it, the sp1 backend refuses it",
        ));

    provernode()
        .args(["programs", "inspect"])
        .arg(official("sp1v5-project-template-fibonacci.elf"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("is an SP1 v5 program"));
}
