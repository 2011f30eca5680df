//! Issue 24: the program store through the real binary and its HTTP API.
//! A program is uploaded once and tasks name it by id; it survives a
//! restart; a program in use cannot be deleted; bad and oversized uploads
//! are refused with what to do.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod common;

use common::{verify, Node, LONG};
use serde_json::{json, Value};

/// A program no built-in guest is: fibonacci's RISC Zero ELF with a byte
/// after its end (the loader reads what the headers name; the id changes).
fn custom_fibonacci() -> Vec<u8> {
    let mut elf = provernode_guests::find("fibonacci")
        .unwrap()
        .program(provernode_core::Abi::Risc0)
        .elf()
        .to_vec();
    elf.push(0);
    elf
}

fn upload(node: &Node, elf: Vec<u8>, name: &str) -> (u16, Value) {
    let resp = node
        .http()
        .put(format!("{}/v1/programs?name={name}", node.base))
        .header("content-type", "application/octet-stream")
        .body(elf)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap())
}

/// The binary in `dir` (where `submit --wait` writes its proof).
fn provernode(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(args)
        .current_dir(dir)
        .env_remove("PROVERNODE_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn a_program_uploaded_once_serves_every_task_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = Node::start(&data, &["--max-program-mib", "1"], &[]);
    let elf = custom_fibonacci();
    let id = provernode_core::ProgramId::of_elf(&elf).to_string();

    let (status, first) = upload(&node, elf.clone(), "my-fib");
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["id"], id.as_str());
    assert_eq!(
        (first["abi"].as_str(), first["created"].as_bool()),
        (Some("risc0"), Some(true))
    );
    assert_eq!(first["size_bytes"], elf.len());
    let (status, again) = upload(&node, elf.clone(), "other-name");
    assert_eq!(status, 200, "stored already: {again}");
    assert_eq!(
        (again["name"].as_str(), again["created"].as_bool()),
        (Some("my-fib"), Some(false))
    );

    // Tasks name it by id, without its bytes; n = 10 is 55.
    let ids: Vec<String> = (0..3)
        .map(|_| node.submit(json!({"program": id, "input_hex": "0a000000"})))
        .collect();
    for task in &ids {
        let t = node.wait_terminal(task, LONG);
        assert_eq!(t["state"], "succeeded", "{t}");
        assert_eq!(t["program"]["id"], id.as_str(), "{t}");
        assert_eq!(t["program"]["name"], "my-fib", "{t}");
        let output = verify(&node.proof(task));
        // n (u32) then fib(n) (u64).
        assert_eq!(output[..4], 10u32.to_le_bytes());
        assert_eq!(output[4..12], 55u64.to_le_bytes());
    }

    // The list counts them; the program survives a restart.
    node.sigterm_and_wait(LONG);
    let node = Node::start(&data, &["--max-program-mib", "1"], &[]);
    let list: Value = node
        .http()
        .get(format!("{}/v1/programs", node.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let stored = list["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} is not listed: {list}"));
    assert_eq!(stored["tasks"], 3, "{list}");
    let one = node.submit(json!({"program": id, "input_hex": "05000000"}));
    assert_eq!(node.wait_terminal(&one, LONG)["state"], "succeeded");

    // In use: not deleted, with the reason.
    let resp = node
        .http()
        .delete(format!("{}/v1/programs/{id}", node.base))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "program_in_use", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("4 task"),
        "{body}"
    );

    // Not a program, too large, unknown: refused, saying what to do.
    let (status, body) = upload(&node, b"not an elf at all".to_vec(), "junk");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input", "{body}");
    let (status, body) = upload(&node, vec![0x7f; 2 << 20], "big");
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-program-mib"),
        "{body}"
    );
    let resp = node
        .http()
        .post(format!("{}/v1/tasks", node.base))
        .json(&json!({"program": "ab".repeat(32), "input_hex": "05000000"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "unknown_program", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("programs upload"),
        "{body}"
    );

    // The CLI: upload prints the id; submit takes it; list shows it; an
    // unused program is deleted.
    let mut spare = custom_fibonacci();
    spare.push(1);
    let file = dir.path().join("spare.elf");
    std::fs::write(&file, &spare).unwrap();
    let out = provernode(
        dir.path(),
        &["programs", "upload", file.to_str().unwrap(), "--node", &node.base],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spare_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(spare_id, provernode_core::ProgramId::of_elf(&spare).to_string());
    let out = provernode(dir.path(), &["programs", "list", "--node", &node.base]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&spare_id) && text.contains("spare.elf"), "{text}");
    // Kept in the artifact store too; with it, keys a backend saved for it.
    let artifacts = node.data_dir.join("artifacts");
    let copy = artifacts.join("files/program").join(&spare_id);
    assert_eq!(std::fs::read(&copy).unwrap(), spare);
    let keys_name = format!("keys/sp1/{spare_id}-v6.1.0");
    provernode_artifacts::ArtifactStore::open(&artifacts, &node.data_dir.join("artifacts-backup"), "test")
        .unwrap()
        .put(&keys_name, provernode_artifacts::KEYS_KIND, b"keys", None)
        .unwrap();
    let out = provernode(
        dir.path(),
        &["programs", "delete", &spare_id, "--node", &node.base],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Its artifacts went with it.
    assert!(!copy.exists());
    let left: Vec<String> = provernode_artifacts::ArtifactStore::open(
        &artifacts,
        &node.data_dir.join("artifacts-backup"),
        "test",
    )
    .unwrap()
    .list()
    .unwrap()
    .into_iter()
    .map(|e| e.name)
    .filter(|name| name.contains(&spare_id))
    .collect();
    assert!(left.is_empty(), "{left:?}");
    let out = provernode(
        dir.path(),
        &["programs", "delete", &spare_id, "--node", &node.base],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no program"),
        "{out:?}"
    );
    // `submit FILE` uploads the file once and names it by id.
    let out = provernode(
        dir.path(),
        &[
            "submit",
            file.to_str().unwrap(),
            "--input-hex",
            "07000000",
            "--wait",
            "--node",
            &node.base,
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Value = node
        .http()
        .get(format!("{}/v1/programs/{spare_id}", node.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["tasks"], 1, "{list}");

    // A program as a user's toolchain builds it: `cargo risczero build`'s
    // R0BF (kernel and user ELF in one file) is uploaded whole, named by the
    // SHA-256 of the file, and runs as it does inline (issue 20's test):
    // with no input, its guest panics on the missing input, once.
    let r0bf = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/official-guests/risc0-povw-log-builder.bin");
    let out = provernode(
        dir.path(),
        &[
            "programs",
            "upload",
            r0bf.to_str().unwrap(),
            "--json",
            "--node",
            &node.base,
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stored: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r0bf_id = provernode_core::ProgramId::of_elf(&std::fs::read(&r0bf).unwrap()).to_string();
    assert_eq!(stored["id"], r0bf_id.as_str(), "{stored}");
    assert_eq!(stored["abi"], "risc0", "{stored}");
    let task = node.submit(json!({"program": r0bf_id}));
    let t = node.wait_terminal(&task, LONG);
    assert_eq!(t["terminal_reason"], "guest_panic", "{t}");
    assert_eq!(t["attempts"], 1, "{t}");
    assert!(t.to_string().contains("DeserializeUnexpectedEnd"), "{t}");
}
