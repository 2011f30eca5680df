//! Cluster scenarios: a real PostgreSQL (throwaway server), real brokers,
//! real agents with real worker processes, all on loopback; each scenario
//! kills or stops one part for real and asserts every task's terminal state
//! and that every stored proof verifies.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod common;

use common::{children, kill9};

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use provernode_core::ProofEnvelope;
use serde_json::{json, Value};
use test_postgres::TempPostgres;

const CLIENT_TOKEN: &str = "client-secret";
const AGENT_TOKEN: &str = "agent-secret";
const LONG: Duration = Duration::from_secs(240);

struct Proc {
    child: Child,
    log: PathBuf,
    name: String,
}

impl Proc {
    fn spawn(name: &str, dir: &Path, args: &[String], env: &[(&str, &str)]) -> Proc {
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

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Cluster {
    pg: TempPostgres,
    url: String,
    dir: tempfile::TempDir,
    brokers: Vec<(u16, Option<Proc>)>,
    agents: Vec<Proc>,
    http: reqwest::blocking::Client,
}

impl Cluster {
    fn new(brokers: usize) -> Cluster {
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
        };
        for _ in 0..brokers {
            let port = free_port();
            c.brokers.push((port, None));
            c.start_broker(c.brokers.len() - 1);
        }
        c
    }

    fn start_broker(&mut self, i: usize) {
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

    fn broker_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.brokers[i].0)
    }

    fn add_agent(&mut self, broker: usize, env: &[(&str, &str)]) -> usize {
        let i = self.agents.len();
        let args: Vec<String> = [
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
        self.agents
            .push(Proc::spawn(&format!("agent{i}"), self.dir.path(), &args, env));
        i
    }

    fn submit(&self, broker: usize, body: Value) -> String {
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

    fn task(&self, broker: usize, id: &str) -> Option<Value> {
        let resp = self
            .http
            .get(format!("{}/v1/tasks/{id}", self.broker_url(broker)))
            .bearer_auth(CLIENT_TOKEN)
            .send()
            .ok()?;
        resp.status().is_success().then(|| resp.json().ok()).flatten()
    }

    fn wait_until(&self, broker: usize, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(t) = self.task(broker, id) {
                if done(&t) {
                    return t;
                }
            }
            assert!(
                start.elapsed() < LONG,
                "task {id} did not get there in time:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_terminal(&self, broker: usize, id: &str) -> Value {
        self.wait_until(broker, id, |t| {
            !matches!(t["state"].as_str(), Some("queued") | Some("leased"))
        })
    }

    /// Every task succeeded exactly once and its stored proof verifies.
    fn assert_all_proved_once(
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

    fn logs(&self) -> String {
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

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn fib_output(n: u32) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    v.extend_from_slice(&provernode_guests::fibonacci(n).to_le_bytes());
    v
}

fn chain_output(rounds: u32) -> Vec<u8> {
    let mut input = vec![0u8; 32];
    input.extend_from_slice(&rounds.to_le_bytes());
    provernode_guests::find("sha256-chain")
        .unwrap()
        .reference_output(&input)
        .unwrap()
}

#[test]
fn a_thousand_tasks_through_two_brokers_and_three_agents_all_succeed_exactly_once() {
    let mut c = Cluster::new(2);
    c.add_agent(0, &[]);
    c.add_agent(1, &[]);
    c.add_agent(0, &[]);
    let ids: Vec<String> = (0..1000u32)
        .map(|i| {
            c.submit(
                (i % 2) as usize,
                json!({"program": "fibonacci", "input": {"n": i % 90}}),
            )
        })
        .collect();
    let lost = c.assert_all_proved_once(1, &ids, |i| fib_output(i as u32 % 90));
    assert_eq!(lost, 0, "nothing was killed, so no lease should be lost");
    // Work was shared: every agent proved something.
    let mut owners: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let t = c.task(0, id).unwrap();
        let owner = t["attempt_history"][0]["owner"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        *owners.entry(owner).or_default() += 1;
    }
    assert_eq!(owners.len(), 3, "{owners:?}");
}

#[test]
fn an_agent_killed_mid_attempt_loses_a_counted_attempt_and_the_task_completes_elsewhere() {
    let mut c = Cluster::new(1);
    c.add_agent(0, &[]);
    c.add_agent(0, &[]);
    let id = c.submit(0, json!({"program": "sha256-chain", "input": {"rounds": 100000}}));
    let t = c.wait_until(0, &id, |t| t["state"] == "leased");
    let owner = t["lease"]["owner"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let victim = owner.trim_start_matches("agent").parse::<usize>().unwrap();
    let started = Instant::now();
    // The agent and its worker die together, as when a machine is lost.
    for w in children(c.agents[victim].pid()) {
        kill9(w);
    }
    c.agents[victim].kill9();
    c.wait_until(0, &id, |t| t["attempts"].as_u64() == Some(2));
    let noticed = started.elapsed();
    let t = c.wait_terminal(0, &id);
    assert_eq!(t["state"], "succeeded", "{t}\n{}", c.logs());
    let history = t["attempt_history"].as_array().unwrap();
    assert_eq!(history[0]["outcome"], "lease_lost", "{t}");
    assert_eq!(history[1]["outcome"], "succeeded", "{t}");
    assert_ne!(
        history[1]["owner"].as_str().unwrap().split('/').next().unwrap(),
        owner
    );
    eprintln!("the cluster re-claimed the dead agent's task {noticed:?} after the kill (lease 3 s, sweep every 0.5 s)");
    c.assert_all_proved_once(0, &[id], |_| chain_output(100000));
}

#[test]
fn a_broker_killed_and_restarted_loses_nothing() {
    let mut c = Cluster::new(2);
    c.add_agent(0, &[]);
    c.add_agent(1, &[]);
    let ids: Vec<String> = (0..60u32)
        .map(|i| {
            c.submit(
                1,
                json!({"program": "sha256-chain", "input": {"rounds": 2000 + i}}),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    c.brokers[0].1.as_mut().unwrap().kill9();
    std::thread::sleep(Duration::from_secs(2));
    c.start_broker(0);
    c.assert_all_proved_once(1, &ids, |i| chain_output(2000 + i as u32));
}

#[test]
fn postgres_restarted_mid_run_loses_nothing() {
    let mut c = Cluster::new(1);
    c.add_agent(0, &[]);
    c.add_agent(0, &[]);
    let ids: Vec<String> = (0..60u32)
        .map(|i| {
            c.submit(
                0,
                json!({"program": "sha256-chain", "input": {"rounds": 3000 + i}}),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    c.pg.stop().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    c.pg.restart().unwrap();
    c.assert_all_proved_once(0, &ids, |i| chain_output(3000 + i as u32));
}

#[test]
fn the_only_broker_stopped_for_a_minute_loses_nothing_and_no_agent_crashes() {
    let mut c = Cluster::new(1);
    c.add_agent(0, &[]);
    c.add_agent(0, &[]);
    let ids: Vec<String> = (0..20u32)
        .map(|i| {
            c.submit(
                0,
                json!({"program": "sha256-chain", "input": {"rounds": 20000 + i}}),
            )
        })
        .collect();
    c.wait_until(0, &ids[0], |t| t["state"] != "queued");
    c.brokers[0].1.as_mut().unwrap().kill9();
    std::thread::sleep(Duration::from_secs(60));
    for a in &mut c.agents {
        assert!(
            a.child.try_wait().unwrap().is_none(),
            "{} died while the broker was away:\n{}",
            a.name,
            a.log_text()
        );
    }
    c.start_broker(0);
    c.assert_all_proved_once(0, &ids, |i| chain_output(20000 + i as u32));
}

#[test]
fn a_late_report_from_an_agent_whose_lease_expired_is_ignored() {
    let mut c = Cluster::new(1);
    c.add_agent(0, &[("PROVERNODE_FAULT_HOLD_FIRST_RESULT_MS", "6000")]);
    let id = c.submit(0, json!({"program": "fibonacci", "input": {"n": 77}}));
    c.wait_until(0, &id, |t| t["state"] == "leased");
    // A second agent joins after the first has claimed: it picks the task
    // up once the first one's lease expires.
    c.add_agent(0, &[]);
    let t = c.wait_terminal(0, &id);
    assert_eq!(t["state"], "succeeded", "{t}\n{}", c.logs());
    let history = t["attempt_history"].as_array().unwrap();
    assert_eq!(history[0]["outcome"], "lease_lost", "{t}");
    assert_eq!(history[0]["owner"].as_str().unwrap(), "agent0/w0");
    assert_eq!(history[1]["owner"].as_str().unwrap(), "agent1/w0");
    let start = Instant::now();
    while !c.brokers[0]
        .1
        .as_ref()
        .unwrap()
        .log_text()
        .contains("late or duplicate result ignored")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no late report arrived:\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.assert_all_proved_once(0, &[id], |_| fib_output(77));
}

#[test]
fn tokens_are_kept_to_their_roles() {
    let c = Cluster::new(1);
    let claim = json!({"agent": "x/w0", "backends": ["trace"], "lease_ms": 5000});
    let as_client = c
        .http
        .post(format!("{}/v1/agent/claim", c.broker_url(0)))
        .bearer_auth(CLIENT_TOKEN)
        .json(&claim)
        .send()
        .unwrap();
    assert_eq!(as_client.status(), 401, "a client token must not claim work");
    let as_agent = c
        .http
        .post(format!("{}/v1/tasks", c.broker_url(0)))
        .bearer_auth(AGENT_TOKEN)
        .json(&json!({"program": "fibonacci", "input": {"n": 1}}))
        .send()
        .unwrap();
    assert_eq!(as_agent.status(), 401, "an agent token must not submit tasks");
    let ok = c
        .http
        .post(format!("{}/v1/agent/claim", c.broker_url(0)))
        .bearer_auth(AGENT_TOKEN)
        .json(&claim)
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    let logs = c.logs();
    assert!(
        !logs.contains(CLIENT_TOKEN) && !logs.contains(AGENT_TOKEN),
        "a token was logged"
    );
}

/// Issue 19, item 13: holding only an agent token, a proof with a flipped
/// public output and a recomputed checksum was accepted, stored as the
/// task's result, and failed `provernode verify`. The broker now verifies
/// every reported proof before storing it.
#[test]
fn a_forged_proof_reported_with_an_agent_token_is_not_stored() {
    let c = Cluster::new(1);
    let id = c.submit(0, json!({"program": "fibonacci", "input": {"n": 12}}));
    let agent = |path: &str, body: Value| {
        let resp = c
            .http
            .post(format!("{}{path}", c.broker_url(0)))
            .bearer_auth(AGENT_TOKEN)
            .json(&body)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().unwrap_or(Value::Null))
    };
    let (status, claimed) = agent(
        "/v1/agent/claim",
        json!({"agent": "mallory/w0", "backends": ["trace"], "lease_ms": 60000}),
    );
    assert_eq!(status, 200, "{claimed}");
    let lease = &claimed["lease"];
    assert_eq!(lease["task_id"], id.as_str(), "{claimed}");
    // An honest proof of the task, then the same with another output.
    let guest = provernode_guests::find("fibonacci").unwrap();
    let program = guest.program(provernode_core::Abi::Risc0);
    let input = 12u32.to_le_bytes();
    let registry = provernode_backends::Registry::default();
    let trace = registry.get("trace").unwrap();
    let honest = trace
        .prove(&program, &input, &provernode_core::ProveOptions::default())
        .unwrap();
    let mut forged = honest.clone();
    let last = forged.public_output.len() - 1;
    forged.public_output[last] ^= 1;
    let b64 = |e: &ProofEnvelope| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(e.encode().unwrap())
    };
    let report = |e: &ProofEnvelope| {
        agent(
            "/v1/agent/complete",
            json!({"task_id": id, "token": lease["token"], "envelope_base64": b64(e)}),
        )
    };
    let (status, answer) = report(&forged);
    assert_eq!(status, 422, "a forged proof was answered {status}: {answer}");
    assert_eq!(answer["error"]["code"], "proof_rejected", "{answer}");
    let t = c.task(0, &id).unwrap();
    assert_eq!(t["state"], "leased", "{t}");
    // The honest proof is still welcome on the same lease.
    let (status, answer) = report(&honest);
    assert_eq!(
        (status, answer["accepted"].as_bool()),
        (200, Some(true)),
        "{answer}"
    );
    c.assert_all_proved_once(0, &[id], |_| fib_output(12));
}

/// Issue 21: an aggregate in the cluster, with an agent SIGKILLed (and its
/// worker) while inner tasks run and a broker SIGKILLed and restarted: every
/// task ends once, and the aggregate proves the claims of the stored inner
/// proofs, its input assembled by whichever broker handed it out.
#[test]
fn an_aggregate_survives_an_agent_and_a_broker_killed_mid_flight() {
    let mut c = Cluster::new(2);
    c.add_agent(0, &[]);
    c.add_agent(1, &[]);
    let inner: Vec<String> = (0..6u32)
        .map(|i| {
            c.submit(
                (i % 2) as usize,
                json!({"program": "sha256-chain", "input": {"rounds": 30000 + i}}),
            )
        })
        .collect();
    let aggregate = c.submit(1, json!({"program": "aggregate", "aggregate_of": inner}));
    let t = c.wait_until(0, &inner[0], |t| t["state"] == "leased");
    let owner = t["lease"]["owner"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let victim = owner.trim_start_matches("agent").parse::<usize>().unwrap();
    for w in children(c.agents[victim].pid()) {
        kill9(w);
    }
    c.agents[victim].kill9();
    c.brokers[0].1.as_mut().unwrap().kill9();
    std::thread::sleep(Duration::from_secs(1));
    c.start_broker(0);
    c.add_agent(0, &[]);
    c.assert_all_proved_once(1, &inner, |i| chain_output(30000 + i as u32));
    let proofs: Vec<ProofEnvelope> = inner
        .iter()
        .map(|id| {
            let bytes = c
                .http
                .get(format!("{}/v1/tasks/{id}/proof", c.broker_url(0)))
                .bearer_auth(CLIENT_TOKEN)
                .send()
                .unwrap()
                .bytes()
                .unwrap();
            ProofEnvelope::decode(&bytes).unwrap()
        })
        .collect();
    let registry = provernode_backends::Registry::default();
    let claims: Vec<_> = proofs.iter().map(|p| registry.claim_of(p).unwrap()).collect();
    let expected = provernode_core::aggregate::AggregateOutput::of_digests(claims).encode();
    c.assert_all_proved_once(0, &[aggregate], |_| expected.clone());
}
