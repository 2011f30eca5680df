//! Helpers shared by the scenario tests that start real processes.

#![allow(dead_code)] // each test file uses some of them

pub mod cluster;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use provernode_core::ProofEnvelope;
use serde_json::{json, Value};

/// The pids whose parent is `pid` (from /proc).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces) follow ')'.
        let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
        if after
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok())
            == Some(pid)
        {
            out.push(p);
        }
    }
    out
}

/// SIGKILL to one process; gone already is fine.
pub fn kill9(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// How to start a node beyond its flags.
#[derive(Default)]
pub struct Launch {
    /// Another provernode executable than the one cargo built.
    pub exe: Option<PathBuf>,
    /// The node's open-file limit (`ulimit -n`).
    pub open_files: Option<u32>,
    /// Where the node's log goes [default: beside the data directory].
    pub log_dir: Option<PathBuf>,
}

pub struct Node {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Node {
    pub fn start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Node {
        Node::start_with(Launch::default(), data_dir, extra, env)
    }

    /// `provernode run` as `launch` says, on `data_dir`, waiting until it
    /// listens.
    pub fn start_with(launch: Launch, data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Node {
        match Node::try_start_with(launch, data_dir, extra, env) {
            Ok(node) => node,
            Err(log) => panic!("the node did not start:\n{log}"),
        }
    }

    /// Like `start_with`, but a node that refuses to start is an `Err` with
    /// its log.
    pub fn try_start_with(
        launch: Launch,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Node, String> {
        let log = match &launch.log_dir {
            Some(dir) => unique_log(&dir.join("node")),
            None => unique_log(data_dir),
        };
        // PROVERNODE_TEST_BINARY runs the scenarios against another build
        // (an older one, to see a regression test fail before its fix).
        let exe = launch.exe.unwrap_or_else(|| {
            std::env::var_os("PROVERNODE_TEST_BINARY")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_provernode")))
        });
        let mut cmd = match launch.open_files {
            // The shell sets the limit for the node alone, then becomes it.
            Some(n) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.arg("run")
            .args(if extra.contains(&"--listen") {
                &[][..]
            } else {
                &["--listen", "127.0.0.1:0"][..]
            })
            .args(["--sqlite-synchronous", "normal"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .args(if extra.contains(&"--lease-secs") {
                &[][..]
            } else {
                &["--lease-secs", "3"][..]
            })
            .env("PROVERNODE_LOG", "info,provernode_agent=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start provernode run");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let Some(Ok(first)) = lines.next() else {
            let _ = child.wait();
            return Err(std::fs::read_to_string(&log).unwrap_or_default());
        };
        let base = first
            .strip_prefix("provernode listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        std::thread::spawn(move || for _ in lines {});
        Ok(Node {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn http(&self) -> reqwest::blocking::Client {
        // Only against hangs: a debug-built node parsing the 34 MB oversized
        // submission took more than 30 s on 2 busy cores.
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap()
    }

    pub fn submit(&self, body: Value) -> String {
        let resp = self
            .http()
            .post(format!("{}/v1/tasks", self.base))
            .json(&body)
            .send()
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().unwrap();
        assert!(status.is_success(), "submit failed: {status} {v}");
        v["id"].as_str().unwrap().to_owned()
    }

    pub fn task(&self, id: &str) -> Value {
        self.http()
            .get(format!("{}/v1/tasks/{id}", self.base))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// The node's /metrics text.
    pub fn metrics(&self) -> String {
        self.http()
            .get(format!("{}/metrics", self.base))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    pub fn proof(&self, id: &str) -> Vec<u8> {
        let resp = self
            .http()
            .get(format!("{}/v1/tasks/{id}/proof", self.base))
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "no proof for {id}: {}", resp.status());
        resp.bytes().unwrap().to_vec()
    }

    pub fn wait_until(&self, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let t = self.task(id);
            if done(&t) {
                return t;
            }
            assert!(
                start.elapsed() < timeout,
                "task {id} still {} after {timeout:?}: {t}\nnode log:\n{}",
                t["state"],
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn wait_terminal(&self, id: &str, timeout: Duration) -> Value {
        self.wait_until(id, timeout, |t| {
            !matches!(t["state"].as_str(), Some("queued") | Some("leased"))
        })
    }

    /// The parts (segments and joins) of split task `parent`.
    pub fn parts(&self, parent: &str) -> Vec<Value> {
        let list: Value = self
            .http()
            .get(format!("{}/v1/tasks?limit=1000&parent={parent}", self.base))
            .send()
            .unwrap()
            .json()
            .unwrap();
        list["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["part"]["parent_id"] == parent)
            .cloned()
            .collect()
    }

    /// The parts of `parent` once none is queued or leased any more.
    pub fn settled_parts(&self, parent: &str, timeout: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let parts = self.parts(parent);
            let open = parts
                .iter()
                .filter(|p| matches!(p["state"].as_str(), Some("queued") | Some("leased")))
                .count();
            if open == 0 {
                return parts;
            }
            assert!(start.elapsed() < timeout, "{open} parts still open: {parts:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Worker processes: children of the node running `provernode worker`.
    pub fn workers(&self) -> Vec<u32> {
        children(self.pid())
            .into_iter()
            .filter(|&p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains("worker"))
                    .unwrap_or(false)
            })
            .collect()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm_and_wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "node did not stop within {timeout:?}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- node log ({}) ----\n{}", self.log.display(), self.log_text());
        }
        let workers = self.workers();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for w in workers {
            kill9(w);
        }
        let _ = &self.data_dir;
    }
}

pub fn unique_log(base: &Path) -> PathBuf {
    for i in 0.. {
        let p = base.with_extension(format!("log{i}"));
        if !p.exists() {
            return p;
        }
    }
    unreachable!()
}

pub fn verify(bytes: &[u8]) -> Vec<u8> {
    let env = ProofEnvelope::decode(bytes).unwrap();
    provernode_backends::Registry::default()
        .verify(&env)
        .unwrap()
        .public_output
}

pub fn fib(n: u32) -> Value {
    json!({"program": "fibonacci", "input": {"n": n}})
}

pub const LONG: Duration = Duration::from_secs(120);
