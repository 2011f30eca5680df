//! Cluster scenarios: a real PostgreSQL (throwaway server), real brokers,
//! real agents with real worker processes, all on loopback; each scenario
//! kills or stops one part for real and asserts every task's terminal state
//! and that every stored proof verifies.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod common;

use common::cluster::{free_port, parts_of, segment_holder, tail, Cluster, AGENT_TOKEN, CLIENT_TOKEN, LONG};
use common::Node;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use provernode_core::ProofEnvelope;
use serde_json::{json, Value};

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
    c.kill_agent(victim);
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

fn doctor(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .arg("doctor")
        .args(args)
        .env_remove("PROVERNODE_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `doctor broker` reads PostgreSQL and its migrations without changing
/// them; `doctor agent` tells a wrong agent token from an unreachable broker.
#[test]
fn doctor_checks_postgresql_its_migrations_and_the_agent_token() {
    let mut c = Cluster::new(0);
    let url = c.url.clone();
    let broker = [
        "broker",
        "--database-url",
        &url,
        "--agent-token",
        AGENT_TOKEN,
        "--listen",
        "127.0.0.1:0",
    ];
    let (ok, out) = doctor(&broker);
    assert!(ok, "{out}");
    assert!(
        out.contains("WARN  migrations") && out.contains("0 applied"),
        "{out}"
    );
    assert!(
        out.contains("pass  clock") && out.contains("PostgreSQL's clock"),
        "{out}"
    );

    c.brokers.push((free_port(), None));
    c.start_broker(0);
    let (ok, out) = doctor(&broker);
    assert!(
        ok && out.contains("pass  migrations") && out.contains("applied"),
        "{out}"
    );
    assert!(
        !out.contains(&c.url),
        "the database URL (with its password) was printed: {out}"
    );

    let dead = c.url.replace(&format!(":{}/", c.pg.port()), ":1/");
    let (ok, out) = doctor(&["broker", "--database-url", &dead, "--agent-token", AGENT_TOKEN]);
    assert!(!ok && out.contains("FAIL  postgresql"), "{out}");

    let url = c.broker_url(0);
    let agent = |token: &str| {
        let c = &c;
        doctor(&[
            "agent",
            "--broker",
            &url,
            "--token",
            token,
            "--scratch-dir",
            &c.dir.path().join("s").display().to_string(),
        ])
    };
    let (ok, out) = agent(AGENT_TOKEN);
    assert!(ok && out.contains("accepts this agent token"), "{out}");
    let (ok, out) = agent(CLIENT_TOKEN);
    assert!(
        !ok && out.contains("refuses this agent token") && out.contains("not a client token"),
        "{out}"
    );
    // An agent with a wrong token does not start (the same check, at start).
    let out = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(["agent", "--broker", &url, "--token", "wrong", "--scratch-dir"])
        .arg(c.dir.path().join("s2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to start") && stderr.contains("refuses this agent token"),
        "{stderr}"
    );
}

/// The metric families of one /metrics text: every one must have `# HELP`
/// and be in the catalogue that the dashboard and alerts are checked against.
fn check_families(what: &str, text: &str) -> Vec<String> {
    let catalogue: Vec<&str> = provernode_node::telemetry::CATALOGUE
        .iter()
        .map(|(n, _, _)| *n)
        .collect();
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap().to_owned();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{what}: {name} has no # HELP"
            );
            assert!(
                catalogue.contains(&name.as_str()),
                "{what}: {name} is exported but not in telemetry::CATALOGUE"
            );
            families.push(name);
        }
    }
    families
}

/// A real Prometheus (Debian's package) scrapes a node, a broker and an
/// agent's status port; the metrics are queried through its HTTP API.
#[test]
fn a_real_prometheus_scrapes_a_node_a_broker_and_an_agent() {
    let prometheus = Command::new("prometheus").arg("--version").output();
    assert!(
        prometheus.is_ok_and(|o| o.status.success()),
        "prometheus is missing: install Debian's prometheus package (`apt-get install --no-install-recommends prometheus`; .ci/run does)"
    );
    let mut c = Cluster::new(1);
    let status_port = free_port();
    c.add_agent_with(0, &[], &["--status-listen", &format!("127.0.0.1:{status_port}")]);
    let node_dir = c.dir.path().join("node");
    let node = Node::start(&node_dir, &["--workers", "1"], &[]);
    let id = c.submit(0, json!({"program": "fibonacci", "input": {"n": 30}}));
    assert_eq!(c.wait_terminal(0, &id)["state"], "succeeded");
    let nid = node.submit(common::fib(20));
    assert_eq!(node.wait_terminal(&nid, LONG)["state"], "succeeded");

    // Every family each role exports has help text and is catalogued.
    let agent_text = c
        .http
        .get(format!("http://127.0.0.1:{status_port}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let agent_families = check_families("agent", &agent_text);
    for f in [
        "provernode_attempts_total",
        "provernode_attempt_duration_seconds",
        "provernode_prove_seconds",
        "provernode_build_info",
    ] {
        assert!(
            agent_families.iter().any(|a| a == f),
            "the agent exports no {f}:\n{agent_text}"
        );
    }
    assert!(
        agent_text.contains("provernode_attempt_duration_seconds_bucket{"),
        "durations must be histograms:\n{agent_text}"
    );
    let broker_text = c
        .http
        .get(format!("{}/metrics", c.broker_url(0)))
        .bearer_auth(CLIENT_TOKEN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    check_families("broker", &broker_text);
    let node_text = node.metrics();
    check_families("node", &node_text);
    let ready: Value = c
        .http
        .get(format!("http://127.0.0.1:{status_port}/readyz"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["components"]["claims"]["status"], "ok", "{ready}");
    assert!(
        ready["components"]["backend:trace"]["detail"]
            .as_str()
            .unwrap()
            .contains("warm"),
        "{ready}"
    );

    let web_port = free_port();
    let config = c.dir.path().join("prometheus.yml");
    let node_target = node.base.trim_start_matches("http://").to_owned();
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: provernode-node\n    static_configs: [{{targets: ['{node_target}']}}]\n  - job_name: provernode-broker\n    authorization: {{credentials: {CLIENT_TOKEN}}}\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n  - job_name: provernode-agent\n    static_configs: [{{targets: ['127.0.0.1:{status_port}']}}]\n",
            c.brokers[0].0
        ),
    )
    .unwrap();
    let log = std::fs::File::create(c.dir.path().join("prometheus.log")).unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            c.dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let query = |q: &str| -> Option<Vec<Value>> {
        let v: Value = c
            .http
            .get(format!("http://127.0.0.1:{web_port}/api/v1/query"))
            .query(&[("query", q)])
            .send()
            .ok()?
            .json()
            .ok()?;
        v["data"]["result"].as_array().cloned()
    };
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(60) {
        last = query("provernode_build_info");
        if last.as_ref().is_some_and(|r| r.len() == 3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let build = last.unwrap_or_default();
    let mut roles: Vec<&str> = build
        .iter()
        .map(|r| r["metric"]["role"].as_str().unwrap())
        .collect();
    roles.sort();
    let prom_log = std::fs::read_to_string(c.dir.path().join("prometheus.log")).unwrap_or_default();
    assert_eq!(
        roles,
        ["agent", "broker", "run"],
        "{build:?}\n{}",
        tail(&prom_log)
    );
    let up = query("up").unwrap();
    assert!(up.iter().all(|r| r["value"][1] == "1"), "{up:?}");
    let attempts = query(r#"sum by (job) (provernode_attempts_total{outcome="succeeded"})"#).unwrap();
    assert_eq!(
        attempts.len(),
        2,
        "attempts from the node and the agent: {attempts:?}"
    );
    let queued = query(r#"max(provernode_tasks{state="succeeded"})"#).unwrap();
    assert_eq!(queued[0]["value"][1], "1", "the broker's store count: {queued:?}");
    let _ = prom.kill();
    let _ = prom.wait();
}

/// Everything in a bundle, decompressed, as one text.
fn bundle_text(path: &Path) -> String {
    let out = Command::new("tar").arg("xzOf").arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `provernode diagnose` of a broker (PostgreSQL with a password, client and
/// agent tokens) and of an agent: the bundles hold what support needs, and
/// no secret appears anywhere in them.
#[test]
fn support_bundles_hold_no_token_and_no_database_password() {
    const PASSWORD: &str = "pg-S3cret-pw";
    let mut c = Cluster::new(0);
    c.url = c.url.replace("postgres@", &format!("postgres:{PASSWORD}@"));
    assert!(c.url.contains(PASSWORD));
    c.brokers.push((free_port(), None));
    c.start_broker(0);
    let status_port = free_port();
    c.add_agent_with(0, &[], &["--status-listen", &format!("127.0.0.1:{status_port}")]);
    let ok = c.submit(0, json!({"program": "fibonacci", "input": {"n": 12}}));
    let bad = c.submit(
        0,
        json!({"program": "sha256-chain", "input": {"rounds": 1}, "max_cycles": 1000}),
    );
    assert_eq!(c.wait_terminal(0, &ok)["state"], "succeeded");
    assert_ne!(c.wait_terminal(0, &bad)["state"], "succeeded");

    let broker_bundle = c.dir.path().join("broker.tar.gz");
    let out = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args(["diagnose", "broker", "--database-url", &c.url, "--listen"])
        .arg(format!("127.0.0.1:{}", c.brokers[0].0))
        .args(["--client-token", CLIENT_TOKEN, "--agent-token", AGENT_TOKEN, "-o"])
        .arg(&broker_bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let agent_bundle = c.dir.path().join("agent.tar.gz");
    let out = Command::new(env!("CARGO_BIN_EXE_provernode"))
        .args([
            "diagnose",
            "agent",
            "--broker",
            &c.broker_url(0),
            "--token",
            AGENT_TOKEN,
        ])
        .args([
            "--status-listen",
            &format!("127.0.0.1:{status_port}"),
            "--scratch-dir",
        ])
        .arg(c.dir.path().join("diag-scratch"))
        .arg("-o")
        .arg(&agent_bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let broker = bundle_text(&broker_bundle);
    let agent = bundle_text(&agent_bundle);
    for (name, text) in [("broker", &broker), ("agent", &agent)] {
        for secret in [PASSWORD, CLIENT_TOKEN, AGENT_TOKEN] {
            assert!(!text.contains(secret), "the {name} bundle contains {secret}");
        }
        assert!(
            text.contains("provernode_build_info"),
            "{name}: no metrics snapshot"
        );
        assert!(text.contains("checks of `provernode"), "{name}: no doctor report");
        assert!(text.contains("MemTotal"), "{name}: no system facts");
    }
    // What support needs from the queue: tasks by state and the failure's cause.
    assert!(broker.contains("\"state\": \"succeeded\""), "{broker}");
    assert!(
        broker.contains("postgres://postgres:[redacted]@127.0.0.1"),
        "the redacted URL is shown"
    );
    assert!(agent.contains("\"claims\""), "the agent's readiness: {agent}");
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
    c.kill_agent(victim);
    c.brokers[0].1.as_mut().unwrap().kill9();
    std::thread::sleep(Duration::from_secs(1));
    c.start_broker(0);
    c.add_agent(0, &[]);
    c.assert_all_proved_once(1, &inner, |i| chain_output(30000 + i as u32));
    let proofs: Vec<ProofEnvelope> = inner
        .iter()
        .map(|id| ProofEnvelope::decode(&c.proof(0, id)).unwrap())
        .collect();
    let registry = provernode_backends::Registry::default();
    let claims: Vec<_> = proofs.iter().map(|p| registry.claim_of(p).unwrap()).collect();
    let expected = provernode_core::aggregate::AggregateOutput::of_digests(claims).encode();
    c.assert_all_proved_once(0, &[aggregate], |_| expected.clone());
}

/// Issue 22's scenarios on one split proof, in turn: every agent takes
/// part; an agent is SIGKILLed while it proves a segment; a broker is
/// restarted mid-tree; a part's stored proof is damaged; the whole cluster
/// (PostgreSQL included) is stopped and started mid-tree. It ends with one
/// proof, the unsplit one byte for byte.
#[test]
fn a_split_proof_survives_a_killed_agent_a_restarted_broker_a_damaged_part_and_a_cluster_restart() {
    use provernode_core::Backend as _;
    let mut c = Cluster::new(2);
    let split = ["--split-backends", "trace", "--split-po2", "13"];
    // Parts take 200 ms each, so every fault lands with parts in flight.
    let env = [("PROVERNODE_FAULT_PART_DELAY_MS", "200")];
    for broker in [0, 1, 0] {
        c.add_agent_with(broker, &env, &split);
    }
    let id = c.submit(1, json!({"program": "fibonacci", "input": {"n": 20000}}));
    let t = c.wait_until(0, &id, |t| t["split"]["segments"].as_u64().is_some());
    let segments = t["split"]["segments"].as_u64().unwrap();
    assert!(segments >= 30, "{t}");

    // An agent SIGKILLed (with its worker) while it proves a segment.
    let start = Instant::now();
    let victim = loop {
        if let Some(holder) = parts_of(&c, 0, &id).iter().find_map(segment_holder) {
            break holder;
        }
        assert!(
            start.elapsed() < LONG,
            "no segment was ever leased:\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    c.kill_agent(victim);
    c.add_agent_with(1, &env, &split);

    // A broker restarted mid-tree.
    c.brokers[0].1.as_mut().unwrap().kill9();
    std::thread::sleep(Duration::from_millis(500));
    c.start_broker(0);

    // A segment's stored proof (not the first's) damaged while it waits
    // for its neighbour.
    let start = Instant::now();
    let damaged = loop {
        if let Some(part) = c.damage_a_waiting_segment(&id, 1) {
            break part;
        }
        assert!(start.elapsed() < LONG, "no segment ever waited for its neighbour");
        std::thread::sleep(Duration::from_millis(10));
    };

    // The whole cluster stopped (agents and brokers killed, PostgreSQL
    // stopped) and started again mid-tree.
    let t = c.wait_until(1, &id, |t| {
        t["split"]["segments_proved"].as_u64().unwrap_or(0) >= 8
    });
    assert_eq!(t["state"], "leased", "still in progress: {t}");
    c.restart_everything(&[0, 1, 0], &env, &split);

    let t = c.wait_terminal(1, &id);
    assert_eq!(t["state"], "succeeded", "{t}\n{}", c.logs());
    assert_eq!(t["split"]["segments_proved"], segments, "{t}");
    assert_eq!(t["split"]["joins_done"], segments - 1, "{t}");
    let proof = c.proof(0, &id);
    let whole = provernode_backend_trace::TraceBackend::new()
        .prove(
            &provernode_guests::find("fibonacci")
                .unwrap()
                .program(provernode_core::Abi::Risc0),
            &20000u32.to_le_bytes(),
            &provernode_core::ProveOptions::default(),
        )
        .unwrap()
        .encode()
        .unwrap();
    assert_eq!(proof, whole, "the split proof is the unsplit one, byte for byte");

    let parts = parts_of(&c, 0, &id);
    assert_eq!(parts.len() as u64, 2 * segments - 1, "segments and joins");
    let mut owners = std::collections::BTreeSet::new();
    for part in &parts {
        let pid = part["id"].as_str().unwrap();
        let p = c.task(0, pid).unwrap();
        assert_eq!(p["state"], "succeeded", "{p}");
        let history = p["attempt_history"].as_array().unwrap();
        let succeeded = history.iter().filter(|a| a["outcome"] == "succeeded").count();
        // The damaged part was accepted, found damaged, and proved again.
        let expected = if pid == damaged { 2 } else { 1 };
        assert_eq!(succeeded, expected, "{p}");
        for a in history {
            owners.insert(a["owner"].as_str().unwrap().split('/').next().unwrap().to_owned());
        }
    }
    for agent in ["agent0", "agent1", "agent2"] {
        assert!(owners.contains(agent), "{agent} took no part: {owners:?}");
    }
}
