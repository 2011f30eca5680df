//! A cluster on loopback for the scenario tests: a throwaway PostgreSQL,
//! brokers and agents as real processes of the test's binary, each with a
//! log file that failures print.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use provernode_core::ProofEnvelope;
use serde_json::Value;
use test_postgres::TempPostgres;

use super::{children, kill9};

pub const CLIENT_TOKEN: &str = "client-secret";
pub const AGENT_TOKEN: &str = "agent-secret";
pub const LONG: Duration = Duration::from_secs(240);

pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, dir: &Path, args: &[String], env: &[(&str, &str)]) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_provernode"));
        cmd.args(args)
            .env("PROVERNODE_LOG", "info")
            .env_remove("PROVERNODE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        match lines.next() {
            Some(Ok(_ready)) => {}
            _ => panic!(
                "{name} did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
        std::thread::spawn(move || for _ in lines {});
        Proc {
            child,
            log,
            name: name.to_owned(),
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Workers live in their own process groups: take them down too.
        for w in children(self.child.id()) {
            kill9(w);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Cluster {
    pub pg: TempPostgres,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub brokers: Vec<(u16, Option<Proc>)>,
    pub agents: Vec<Proc>,
    pub http: reqwest::blocking::Client,
    /// How long `wait_until` waits: LONG for trace proofs; real proofs on
    /// 2 cores take minutes per part.
    pub patience: Duration,
}

impl Cluster {
    pub fn new(brokers: usize) -> Cluster {
        let pg = TempPostgres::start().unwrap_or_else(|e| panic!("{e}"));
        let url = pg.create_database().unwrap_or_else(|e| panic!("{e}"));
        let mut c = Cluster {
            pg,
            url,
            dir: tempfile::tempdir().unwrap(),
            brokers: Vec::new(),
            agents: Vec::new(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            patience: LONG,
        };
        for _ in 0..brokers {
            let port = free_port();
            c.brokers.push((port, None));
            c.start_broker(c.brokers.len() - 1);
        }
        c
    }

    pub fn start_broker(&mut self, i: usize) {
        let port = self.brokers[i].0;
        let args: Vec<String> = [
            "broker",
            "--database-url",
            &self.url,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--client-token",
            CLIENT_TOKEN,
            "--agent-token",
            AGENT_TOKEN,
            "--sweep-secs",
            "0.5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.brokers[i].1 = Some(Proc::spawn(&format!("broker{i}"), self.dir.path(), &args, &[]));
    }

    pub fn broker_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.brokers[i].0)
    }

    pub fn add_agent(&mut self, broker: usize, env: &[(&str, &str)]) -> usize {
        self.add_agent_with(broker, env, &[])
    }

    pub fn add_agent_with(&mut self, broker: usize, env: &[(&str, &str)], extra: &[&str]) -> usize {
        let i = self.agents.len();
        let mut args: Vec<String> = [
            "agent",
            "--broker",
            &self.broker_url(broker),
            "--token",
            AGENT_TOKEN,
            "--name",
            &format!("agent{i}"),
            "--workers",
            "1",
            "--lease-secs",
            "3",
            "--scratch-dir",
            &self.dir.path().join(format!("scratch{i}")).display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        self.agents
            .push(Proc::spawn(&format!("agent{i}"), self.dir.path(), &args, env));
        i
    }

    pub fn submit(&self, broker: usize, body: Value) -> String {
        let resp = self
            .http
            .post(format!("{}/v1/tasks", self.broker_url(broker)))
            .bearer_auth(CLIENT_TOKEN)
            .json(&body)
            .send()
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().unwrap();
        assert!(status.is_success(), "submit: {status} {v}");
        v["id"].as_str().unwrap().to_owned()
    }

    pub fn task(&self, broker: usize, id: &str) -> Option<Value> {
        let resp = self
            .http
            .get(format!("{}/v1/tasks/{id}", self.broker_url(broker)))
            .bearer_auth(CLIENT_TOKEN)
            .send()
            .ok()?;
        resp.status().is_success().then(|| resp.json().ok()).flatten()
    }

    pub fn wait_until(&self, broker: usize, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(t) = self.task(broker, id) {
                if done(&t) {
                    return t;
                }
            }
            assert!(
                start.elapsed() < self.patience,
                "task {id} did not get there in {:?}:\n{}",
                self.patience,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_terminal(&self, broker: usize, id: &str) -> Value {
        self.wait_until(broker, id, |t| {
            !matches!(t["state"].as_str(), Some("queued") | Some("leased"))
        })
    }

    /// Every task succeeded exactly once and its stored proof verifies.
    pub fn assert_all_proved_once(
        &self,
        broker: usize,
        ids: &[String],
        expected: impl Fn(usize) -> Vec<u8>,
    ) -> usize {
        let registry = provernode_backends::Registry::default();
        let mut lost = 0;
        for (i, id) in ids.iter().enumerate() {
            let t = self.wait_terminal(broker, id);
            assert_eq!(t["state"], "succeeded", "{t}\n{}", self.logs());
            let history = t["attempt_history"].as_array().unwrap();
            assert_eq!(
                history.iter().filter(|a| a["outcome"] == "succeeded").count(),
                1,
                "{t}"
            );
            lost += history.iter().filter(|a| a["outcome"] == "lease_lost").count();
            let bytes = self
                .http
                .get(format!("{}/v1/tasks/{id}/proof", self.broker_url(broker)))
                .bearer_auth(CLIENT_TOKEN)
                .send()
                .unwrap()
                .bytes()
                .unwrap();
            let verified = registry.verify(&ProofEnvelope::decode(&bytes).unwrap()).unwrap();
            assert_eq!(verified.public_output, expected(i), "task {id}");
        }
        lost
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (_, b) in &self.brokers {
            if let Some(b) = b {
                out += &format!("---- {} ----\n{}\n", b.name, tail(&b.log_text()));
            }
        }
        for a in &self.agents {
            out += &format!("---- {} ----\n{}\n", a.name, tail(&a.log_text()));
        }
        out
    }
}

pub fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Every part of the split task `parent`, from broker `broker`'s task list.
pub fn parts_of(c: &Cluster, broker: usize, parent: &str) -> Vec<Value> {
    let list: Value = c
        .http
        .get(format!(
            "{}/v1/tasks?limit=1000&parent={parent}",
            c.broker_url(broker)
        ))
        .bearer_auth(CLIENT_TOKEN)
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

impl Cluster {
    /// Agent `i` and its workers SIGKILLed together, as when a machine is
    /// lost (workers live in process groups of their own).
    pub fn kill_agent(&mut self, i: usize) {
        for w in children(self.agents[i].pid()) {
            kill9(w);
        }
        self.agents[i].kill9();
    }

    /// The whole cluster stopped and started again: every agent (with its
    /// workers) and broker killed, PostgreSQL stopped and restarted, the
    /// brokers started, and one new agent per entry of `agents_on` (the
    /// broker it talks to) with `env` and `extra` arguments.
    pub fn restart_everything(&mut self, agents_on: &[usize], env: &[(&str, &str)], extra: &[&str]) {
        for i in 0..self.agents.len() {
            self.kill_agent(i);
        }
        for b in &mut self.brokers {
            if let Some(p) = b.1.as_mut() {
                p.kill9();
            }
        }
        self.pg.stop().unwrap();
        std::thread::sleep(Duration::from_secs(1));
        self.pg.restart().unwrap();
        for i in 0..self.brokers.len() {
            self.start_broker(i);
        }
        for &broker in agents_on {
            self.add_agent_with(broker, env, extra);
        }
    }

    /// The stored proof of task `id`, from broker `broker`.
    pub fn proof(&self, broker: usize, id: &str) -> Vec<u8> {
        self.http
            .get(format!("{}/v1/tasks/{id}/proof", self.broker_url(broker)))
            .bearer_auth(CLIENT_TOKEN)
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec()
    }

    /// Damages the stored proof of one segment of split task `parent`
    /// (from segment `min_lo` on) that succeeded and waits for its
    /// neighbour, and returns its id; `None` while no segment waits. It
    /// locks the parent's row, which the store also takes to join parts,
    /// and the segment's own, so that a join committed meanwhile (having
    /// read the proof before the damage) makes the re-check `joined_into
    /// IS NULL` fail: without the locks a proof already joined could be
    /// damaged, and never read again.
    pub fn damage_a_waiting_segment(&self, parent: &str, min_lo: u32) -> Option<String> {
        let damage = format!(
            "WITH parent AS MATERIALIZED (SELECT id FROM tasks WHERE id = '{parent}' FOR UPDATE), \
             damaged AS (UPDATE results SET envelope = substr(envelope, 1, 40) WHERE task_id IN \
             (SELECT t.id FROM tasks t JOIN parent p ON t.parent_id = p.id WHERE t.state = 'succeeded' \
              AND t.joined_into IS NULL AND t.part_hi - t.part_lo = 1 AND t.part_lo >= {min_lo} \
              LIMIT 1 FOR UPDATE OF t) \
             RETURNING task_id) SELECT task_id FROM damaged"
        );
        let out = self.pg.psql(&self.url, &damage).unwrap();
        let id = out.trim();
        (!id.is_empty()).then(|| id.to_owned())
    }
}

/// The agent (its index, from its name `agentN`) that holds a lease on
/// `part` if it is a segment (one segment wide); `None` otherwise.
pub fn segment_holder(part: &Value) -> Option<usize> {
    let owner = part["lease"]["owner"].as_str()?.split('/').next()?;
    let one_segment = part["part"]["hi"].as_u64()? - part["part"]["lo"].as_u64()? == 1;
    (part["state"] == "leased" && one_segment)
        .then(|| owner.trim_start_matches("agent").parse().ok())
        .flatten()
}
