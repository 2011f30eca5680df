//! Issue 24: the container image, tested for real. The runtime image is
//! built (`Dockerfile`, target `runtime-prebuilt`) from the binary under
//! test on the base image that `deploy/docker/base-image.sh` makes without a
//! registry; then:
//! - `demo` runs inside it, and a damaged image refuses to start;
//! - a node container with a data volume takes tasks submitted from the
//!   host, is `docker kill`ed mid-run, started again, and every task ends
//!   once with a proof that verifies;
//! - a broker and an agent container work against a PostgreSQL on loopback.
//!
//! Needs a running Docker daemon (`.ci/run` starts `dockerd --bridge=none
//! --iptables=false`) and the base image; fails saying so otherwise.
//! Containers use the host's network and talk over 127.0.0.1 only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::verify;
use serde_json::Value;

const BASE: &str = "provernode-base:bookworm";

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker ({e}): install Debian's docker.io package"))
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The runtime image of this very binary, built once per test run.
fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
        assert!(
            info.status.success(),
            "no Docker daemon answers ({}): install docker.io and start `dockerd --bridge=none --iptables=false` as root (.ci/run does)",
            String::from_utf8_lossy(&info.stderr).trim()
        );
        let base = docker(&["image", "inspect", BASE]);
        assert!(
            base.status.success(),
            "the base image {BASE} is missing: make it with deploy/docker/base-image.sh (debootstrap; .ci/run does)"
        );
        // A build context of its own: what the Dockerfile copies, and the
        // binary under test as dist/provernode.
        let context = tempfile::tempdir().unwrap().keep();
        let root = repo_root();
        std::fs::copy(root.join("Dockerfile"), context.join("Dockerfile")).unwrap();
        for dir in ["deploy/docker", "crates/provernode-guests/elf/risc0", "crates/provernode-guests/elf/sp1"] {
            std::fs::create_dir_all(context.join(dir)).unwrap();
            for f in std::fs::read_dir(root.join(dir)).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, context.join(dir).join(f.file_name().unwrap())).unwrap();
            }
        }
        std::fs::create_dir_all(context.join("dist")).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_provernode"), context.join("dist/provernode")).unwrap();
        let tag = format!("provernode-test:{}", std::process::id());
        docker_ok(&[
            "build",
            "-q",
            "--target",
            "runtime-prebuilt",
            "--build-arg",
            &format!("BASE={BASE}"),
            "-t",
            &tag,
            context.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_dir_all(&context);
        tag
    })
}

/// A container removed when dropped.
struct Container(String);

impl Container {
    fn run(name: &str, args: &[&str]) -> Container {
        let name = format!("{name}-{}", std::process::id());
        let _ = docker(&["rm", "-f", &name]);
        let mut all = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "host",
            "--shm-size",
            "1g",
        ];
        all.extend_from_slice(args);
        docker_ok(&all);
        Container(name)
    }

    fn logs(&self) -> String {
        let out = docker(&["logs", &self.0]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- container {} ----\n{}", self.0, self.logs());
        }
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = docker(&["volume", "rm", "-f", &self.0]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn host(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(args)
        .env_remove("PROVERNODE_CONFIG")
        .output()
        .unwrap()
}

/// Waits for `provernode ready` against `url`.
fn wait_ready(url: &str, token: Option<&str>, container: &Container) {
    let start = Instant::now();
    loop {
        let mut args = vec!["ready", "--node", url];
        if let Some(t) = token {
            args.extend_from_slice(&["--token", t]);
        }
        if host(&args).status.success() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{url} never became ready:\n{}",
            container.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn get(url: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut r = http().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

fn submit(base: &str, token: Option<&str>, body: &Value) -> String {
    let mut r = http().post(format!("{base}/v1/tasks")).json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().unwrap();
    let status = resp.status();
    let v: Value = resp.json().unwrap();
    assert!(status.is_success(), "{status} {v}");
    v["id"].as_str().unwrap().to_owned()
}

fn wait_all_terminal(base: &str, token: Option<&str>, ids: &[String], container: &Container) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let tasks: Vec<Value> = ids
            .iter()
            .map(|id| get(&format!("{base}/v1/tasks/{id}"), token).json().unwrap())
            .collect();
        if tasks
            .iter()
            .all(|t| !matches!(t["state"].as_str(), Some("queued") | Some("leased")))
        {
            return tasks;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "tasks still running: {tasks:?}\n{}",
            container.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_image_runs_demo_and_a_damaged_image_refuses_to_start() {
    let image = image();
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        image,
        "demo",
        "--backend",
        "trace",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("proofs made through the node and verified"),
        "{text}"
    );
    // The image runs as its own user, never root.
    let user = docker_ok(&["run", "--rm", "--entrypoint", "id", image, "-u"]);
    assert_eq!(user, "10001");
    // A built-in program damaged in the image (both copies): the
    // entrypoint's verification stops the start, naming it.
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "for d in artifacts artifacts-backup; do printf x >> /opt/provernode/$d/files/file/builtin-risc0-fibonacci.elf; done; exec provernode-entrypoint run",
    ]);
    assert_eq!(out.status.code(), Some(70), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("builtin-risc0-fibonacci.elf") && stderr.contains("image is damaged"),
        "{stderr}"
    );
}

#[test]
fn a_node_container_killed_mid_run_ends_every_task_once_with_a_verifying_proof() {
    let image = image();
    let volume = Volume(format!("provernode-test-data-{}", std::process::id()));
    docker_ok(&["volume", "create", &volume.0]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let mount = format!("{}:/var/lib/provernode", volume.0);
    let started = Instant::now();
    let node = Container::run(
        "provernode-node",
        &[
            "-v",
            &mount,
            image,
            "run",
            "--listen",
            &listen,
            "--workers",
            "2",
            "--lease-secs",
            "3",
        ],
    );
    wait_ready(&base, None, &node);
    let cold = started.elapsed();
    let ids: Vec<String> = (0..10u32)
        .map(|i| {
            submit(
                &base,
                None,
                &serde_json::json!({"program": "sha256-chain", "input": {"rounds": 30000 + i}}),
            )
        })
        .collect();
    // Killed (SIGKILL, no drain) once work is under way.
    let start = Instant::now();
    loop {
        let list: Value = get(&format!("{base}/v1/tasks?state=leased"), None)
            .json()
            .unwrap();
        if !list["tasks"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nothing ran:\n{}",
            node.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    docker_ok(&["kill", &node.0]);
    let started = Instant::now();
    docker_ok(&["start", &node.0]);
    wait_ready(&base, None, &node);
    let warm = started.elapsed();
    eprintln!(
        "measured: docker run to ready {:.2} s (first start), docker start to ready {:.2} s (warm data volume)",
        cold.as_secs_f64(),
        warm.as_secs_f64()
    );
    let tasks = wait_all_terminal(&base, None, &ids, &node);
    for t in &tasks {
        assert_eq!(t["state"], "succeeded", "{t}");
        let id = t["id"].as_str().unwrap();
        let full: Value = get(&format!("{base}/v1/tasks/{id}"), None).json().unwrap();
        let accepted = full["attempt_history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["outcome"] == "succeeded")
            .count();
        assert_eq!(accepted, 1, "one accepted result: {full}");
        let proof = get(&format!("{base}/v1/tasks/{id}/proof"), None).bytes().unwrap();
        let output = verify(&proof);
        assert_eq!(output.len(), 32, "{t}");
    }
    assert!(
        node.logs().contains("recovered leases left by a previous run"),
        "{}",
        node.logs()
    );
}

#[test]
fn a_broker_and_an_agent_in_containers_prove_against_postgresql_on_loopback() {
    let image = image();
    let pg = test_postgres::TempPostgres::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg.create_database().unwrap_or_else(|e| panic!("{e}"));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let broker = Container::run(
        "provernode-broker",
        &[
            "-e",
            &format!("PROVERNODE_DATABASE_URL={url}"),
            "-e",
            "PROVERNODE_CLIENT_TOKENS=client-secret",
            "-e",
            "PROVERNODE_AGENT_TOKENS=agent-secret",
            image,
            "broker",
            "--listen",
            &listen,
        ],
    );
    wait_ready(&base, Some("client-secret"), &broker);
    let agent = Container::run(
        "provernode-agent",
        &[
            "-e",
            "PROVERNODE_AGENT_TOKEN=agent-secret",
            image,
            "agent",
            "--broker",
            &base,
            "--workers",
            "2",
            "--scratch-dir",
            "/var/lib/provernode/agent",
        ],
    );
    let ids: Vec<String> = (0..4u32)
        .map(|n| {
            submit(
                &base,
                Some("client-secret"),
                &serde_json::json!({"program": "fibonacci", "input": {"n": 100 + n}}),
            )
        })
        .collect();
    let tasks = wait_all_terminal(&base, Some("client-secret"), &ids, &agent);
    for t in &tasks {
        assert_eq!(t["state"], "succeeded", "{t}");
        let id = t["id"].as_str().unwrap();
        let proof = get(&format!("{base}/v1/tasks/{id}/proof"), Some("client-secret"))
            .bytes()
            .unwrap();
        verify(&proof);
    }
    assert!(agent.logs().contains("provernode agent"), "{}", agent.logs());
}
