//! The operator's tools through the real binary: the config file and the
//! PROVERNODE_* variables (what `provernode config` reports is what a role
//! runs with), and `doctor`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn provernode() -> Command {
    match Command::cargo_bin("provernode") {
        Ok(mut c) => {
            // The tester's own environment must not leak into what is checked.
            for (k, _) in std::env::vars() {
                if k.starts_with("PROVERNODE_") {
                    c.env_remove(k);
                }
            }
            c
        }
        Err(e) => panic!("the provernode binary was not built: {e}"),
    }
}

fn setting<'a>(config: &'a Value, key: &str) -> &'a Value {
    config["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no setting {key} in {config}"))
}

#[test]
fn precedence_is_flag_then_environment_then_file_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("provernode.toml");
    std::fs::write(
        &file,
        "# one file for the machine\nworkers = 3\nlease-secs = 12.5\ndrain-secs = 9\n\n[broker]\ndatabase-url = \"postgres://prover:hunter2@db/queue\"\n",
    )
    .unwrap();
    let out = provernode()
        .args(["config", "run", "--json", "--drain-secs", "1"])
        .arg("--config")
        .arg(&file)
        .env("PROVERNODE_LEASE_SECS", "7")
        .env("PROVERNODE_LISTEN", "127.0.0.1:7001")
        .assert()
        .success();
    let config: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let workers = setting(&config, "workers");
    assert_eq!(workers["value"], "3");
    assert_eq!(workers["source"]["kind"], "file");
    assert_eq!(workers["source"]["line"], 2);
    let lease = setting(&config, "lease-secs");
    assert_eq!(
        (lease["value"].as_str(), lease["source"]["kind"].as_str()),
        (Some("7"), Some("env"))
    );
    let drain = setting(&config, "drain-secs");
    assert_eq!(
        (drain["value"].as_str(), drain["source"]["kind"].as_str()),
        (Some("1"), Some("flag"))
    );
    let listen = setting(&config, "listen");
    assert_eq!(listen["value"], "127.0.0.1:7001");
    assert_eq!(listen["env"], "PROVERNODE_LISTEN");
    let budget = setting(&config, "warm-max-attempts");
    assert_eq!(budget["source"]["kind"], "default");

    // The broker's password never appears; its table applies to the broker only.
    let out = provernode()
        .args(["config", "broker", "--config"])
        .arg(&file)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("postgres://prover:[redacted]@db/queue"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_misspelt_key_stops_every_role_naming_the_file_line_and_closest_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("provernode.toml");
    std::fs::write(&file, "workers = 2\n[agent]\nmax-task-memory-mb = 4096\n").unwrap();
    for role in ["run", "agent"] {
        provernode()
            .args([role, "--config"])
            .arg(&file)
            .args(
                ["--broker", "http://127.0.0.1:1", "--token", "x"]
                    .iter()
                    .filter(|_| role == "agent"),
            )
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("{}:3:", file.display())))
            .stderr(predicate::str::contains("unknown key `max-task-memory-mb`"))
            .stderr(predicate::str::contains(
                "closest valid key is `max-task-memory-mib`",
            ));
    }
    std::fs::write(&file, "workers = \"two\"\n").unwrap();
    provernode()
        .args(["run", "--config"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(":1: `workers` = \"two\""));
}

/// Before this, `PROVERNODE_LISTEN` was silently ignored and a file could
/// not be given at all: a node started from a file and the environment alone.
#[test]
fn a_node_runs_with_the_settings_of_its_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("provernode.toml");
    std::fs::write(
        &file,
        format!(
            "data-dir = {:?}\nworkers = 1\nsqlite-synchronous = \"normal\"\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_provernode"))
        .arg("run")
        .env("PROVERNODE_CONFIG", &file)
        .env("PROVERNODE_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("provernode listening on ")
        .map(str::to_owned);
    let health = base
        .as_ref()
        .map(|b| reqwest::blocking::get(format!("{b}/healthz")));
    let _ = child.kill();
    let _ = child.wait();
    let base = base.unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(health.unwrap().unwrap().status().is_success());
    assert!(
        data.join("queue.sqlite").exists(),
        "the file's data-dir was not used"
    );
}

#[test]
fn doctor_passes_on_this_machine_and_fails_a_public_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = provernode()
        .args(["doctor", "run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for check in [
        "backends",
        "memory limits",
        "/dev/shm",
        "memory",
        "worker slots",
        "data directory",
        "free disk",
        "open files",
        "clock",
    ] {
        assert!(
            text.lines().any(|l| l.contains(check)),
            "no {check} check in:\n{text}"
        );
    }
    // Two slots whose default-sized attempts do not both fit the memory
    // budget: the node would prove one task at a time, and doctor says so.
    provernode()
        .args(["doctor", "run", "--listen", "127.0.0.1:0", "--workers", "2"])
        .args([
            "--memory-budget-mib",
            "8192",
            "--default-memory-limit-mib",
            "6144",
        ])
        .arg("--data-dir")
        .arg(&data)
        .assert()
        .success()
        .stdout(predicate::str::contains("WARN  worker slots"))
        .stdout(predicate::str::contains(
            "only 1 of the 2 slots can prove such an attempt at once",
        ))
        .stdout(predicate::str::contains(
            "--default-memory-limit-mib to 4096 or less",
        ));
    let out = provernode()
        .args(["doctor", "run", "--json", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&data)
        .assert()
        .code(1);
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let token = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "token")
        .unwrap();
    assert_eq!(token["level"], "fail");
    assert!(token["fix"].as_str().unwrap().contains("openssl rand -hex 32"));
    // A port in use: doctor names the command that finds its owner.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    provernode()
        .args(["doctor", "run", "--listen", &addr, "--data-dir"])
        .arg(&data)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL  listen port"))
        .stdout(predicate::str::contains("ss -ltnp"));
    // A data directory that is a file stops the node at start with doctor's message.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    provernode()
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(file.join("data"))
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "refusing to start: 1 preflight check(s) failed",
        ))
        .stderr(predicate::str::contains("is a file, not a directory"));
}

#[test]
fn version_names_the_commit_and_backends_and_completions_and_man_page_render() {
    provernode()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"^provernode \d+\.\d+\.\d+ \(commit [0-9a-f]{12}|unknown").unwrap())
        .stdout(predicate::str::contains("backends trace"));
    for shell in ["bash", "zsh", "fish"] {
        provernode()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("doctor"));
    }
    provernode()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH provernode 1"));
}

/// `provernode retry` of a quarantined task: queued again with a fresh
/// budget, its history kept and the retry recorded; `tasks` finds it by
/// reason and backend, a page at a time; `status` shows the running attempt.
#[test]
fn a_quarantined_task_is_retried_with_a_fresh_budget_and_found_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let node = common::Node::start(&dir.path().join("data"), &["--workers", "1"], &[]);
    let spin = node.submit(serde_json::json!({"program": "spin", "timeout_secs": 0.5, "max_attempts": 1}));
    let ok = node.submit(common::fib(10));
    assert_eq!(
        node.wait_terminal(&spin, std::time::Duration::from_secs(60))["state"],
        "quarantined"
    );
    assert_eq!(
        node.wait_terminal(&ok, std::time::Duration::from_secs(60))["state"],
        "succeeded"
    );
    let cli = |args: &[&str]| {
        let mut c = provernode();
        c.args(args).args(["--node", &node.base]);
        c
    };
    let out = cli(&["tasks", "--reason", "timeout", "--backend", "trace", "--json"])
        .assert()
        .success();
    let list: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let ids: Vec<&str> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [spin.as_str()]);
    // Paging: one task a page, the next page from the `more:` line.
    let out = cli(&["tasks", "--limit", "1"]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let more = text
        .lines()
        .find_map(|l| l.strip_prefix("more: provernode tasks --before "))
        .unwrap()
        .to_owned();
    cli(&["tasks", "--limit", "1", "--before", &more])
        .assert()
        .success()
        .stdout(predicate::str::contains(&spin));

    cli(&["retry", &ok])
        .assert()
        .failure()
        .stderr(predicate::str::contains("only failed or quarantined"));
    cli(&["retry", &spin])
        .assert()
        .success()
        .stdout(predicate::str::contains("queued again"));
    let t = node.wait_until(&spin, std::time::Duration::from_secs(60), |t| {
        t["state"] == "quarantined" && t["attempts"] == 2
    });
    assert_eq!(t["attempt_history"].as_array().unwrap().len(), 2, "{t}");
    assert!(
        t["events"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("retried by an operator"),
        "{t}"
    );
    cli(&["status", &spin])
        .assert()
        .success()
        .stdout(predicate::str::contains("event").and(predicate::str::contains("retried")));

    // A running attempt shows what it does (from its heartbeats), when it
    // started and for how long it has run.
    let long = node.submit(serde_json::json!({"program": "spin", "timeout_secs": 60}));
    let t = node.wait_until(&long, std::time::Duration::from_secs(30), |t| {
        t["attempt_history"][0]["phase"] == "proving"
    });
    assert!(
        t["attempt_history"][0]["elapsed_ms"].as_i64().unwrap() >= 0,
        "{t}"
    );
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let running = r"running   attempt 1 on .*, proving, started 20\d\d-\d\d-\d\d .* UTC, [1-9]\d*\.\d s ago";
    cli(&["status", &long])
        .assert()
        .success()
        .stdout(predicate::str::is_match(running).unwrap());
    cli(&["cancel", &long]).assert().success();
}

/// `submit --wait` outlives the node: killed and started again on the same
/// port, the wait reconnects and returns the proof.
#[test]
fn submit_wait_survives_a_node_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    // Each proof takes 3 s, so the node dies mid-attempt.
    let slow = [("PROVERNODE_FAULT_PROVE_DELAY_MS", "3000")];
    let mut node = common::Node::start(&data, &["--workers", "1", "--listen", &listen], &slow);
    let proof = dir.path().join("fib.proof");
    let waiter = std::process::Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args([
            "submit",
            "fibonacci",
            "--n",
            "10",
            "--wait",
            "--wait-timeout-secs",
            "120",
            "--node",
            &node.base,
            "-o",
        ])
        .arg(&proof)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    node.kill9();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let _node = common::Node::start(&data, &["--workers", "1", "--listen", &listen], &[]);
    let out = waiter.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("node unreachable") && stderr.contains("retrying"),
        "{stderr}"
    );
    assert!(stderr.contains("running attempt 1"), "progress lines: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("succeeded: n=10 fib=55"));
    common::verify(&std::fs::read(&proof).unwrap());
}
