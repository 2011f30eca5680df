//! What a broker decides when a task is submitted: the proof kind is checked
//! and the limits sized from the backend's own floors, whether or not this
//! binary has the backend's prover (a broker usually does not: its agents
//! prove).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic by design

mod common;

use common::{app, call};
use provernode_broker::ApiConfig;
use serde_json::{json, Value};

/// A lean broker's settings: built without the real provers, trusting its
/// agents to verify their proofs (`--trust-agents`), the backend need only
/// be known here.
fn broker() -> ApiConfig {
    ApiConfig {
        require_local_backend: false,
        trust_agents: true,
        ..ApiConfig::default()
    }
}

/// Issue 19, item 13: a broker that cannot verify a backend's proofs takes
/// no tasks for it unless told to trust its agents.
#[tokio::test]
async fn a_broker_takes_no_tasks_it_could_not_verify_unless_it_trusts_its_agents() {
    let (app, _dir) = app(ApiConfig {
        require_local_backend: false,
        ..ApiConfig::default()
    })
    .await;
    let registry = provernode_backends::Registry::default();
    for backend in registry.all().iter().filter(|b| b.available().is_err()) {
        let (status, message) = submit(
            &app,
            json!({"program": "fibonacci", "input": {"n": 5}, "backend": backend.name()}),
        )
        .await
        .unwrap_err();
        assert_eq!(status, 400, "{message}");
        assert!(
            message.contains("cannot verify") && message.contains("--trust-agents"),
            "{message}"
        );
    }
    submit(
        &app,
        json!({"program": "fibonacci", "input": {"n": 5}, "backend": "trace"}),
    )
    .await
    .unwrap();
}

/// Submits `body`; the stored task on success, else the status and error.
async fn submit(app: &axum::Router, body: Value) -> Result<Value, (u16, String)> {
    let (status, resp) = call(app, "POST", "/v1/tasks", Some(body)).await;
    if status != 201 {
        let message = resp["error"]["message"].as_str().unwrap_or_default().to_owned();
        return Err((status, message));
    }
    let uri = format!("/v1/tasks/{}", resp["id"].as_str().unwrap());
    let (status, task) = call(app, "GET", &uri, None).await;
    assert_eq!(status, 200, "{task}");
    Ok(task)
}

const GIB: u64 = 1 << 30;

#[tokio::test]
async fn tasks_get_their_backends_floors_when_they_ask_for_no_limits() {
    let (app, _dir) = app(broker()).await;
    let defaults = ApiConfig::default().default_limits;
    // (backend, proof kind, memory, timeout in seconds) the task must get.
    let cases = [
        (
            "trace",
            None,
            defaults.memory_limit_bytes,
            defaults.timeout_ms / 1000,
        ),
        ("sp1", None, 14 * GIB, defaults.timeout_ms / 1000),
        ("sp1", Some("core"), 14 * GIB, defaults.timeout_ms / 1000),
        ("sp1", Some("compressed"), 20 * GIB, 2000),
        (
            "risc0",
            None,
            defaults.memory_limit_bytes,
            defaults.timeout_ms / 1000,
        ),
        ("risc0", Some("succinct"), defaults.memory_limit_bytes, 900),
    ];
    for (backend, kind, memory, timeout_secs) in cases {
        let mut body = json!({"program": "fibonacci", "input": {"n": 5}, "backend": backend});
        if let Some(kind) = kind {
            body["proof_kind"] = kind.into();
        }
        let task = submit(&app, body).await.unwrap();
        assert_eq!(
            (
                task["limits"]["memory_limit_bytes"].as_u64(),
                task["limits"]["timeout_ms"].as_u64()
            ),
            (Some(memory), Some(timeout_secs * 1000)),
            "{backend} {kind:?}: {task}"
        );
    }
}

#[tokio::test]
async fn a_task_that_names_its_limits_keeps_them_unless_too_little_memory() {
    let (app, _dir) = app(broker()).await;
    // A faster machine proves in less: the timeout asked for stands.
    let task = submit(
        &app,
        json!({"program": "fibonacci", "input": {"n": 5}, "backend": "sp1", "proof_kind": "compressed",
               "timeout_secs": 300, "memory_limit_mib": 40_000}),
    )
    .await
    .unwrap();
    assert_eq!(task["limits"]["timeout_ms"], 300_000, "{task}");
    assert_eq!(task["limits"]["memory_limit_bytes"], 40_000u64 << 20, "{task}");
    // Memory below the floor fails every attempt: refused now, saying why.
    for (backend, kind, mib, floor_mib) in [
        ("sp1", "core", 8192, 14336),
        ("sp1", "compressed", 16384, 20480),
        ("risc0", "composite", 512, 640),
        ("risc0", "succinct", 1024, 1536),
    ] {
        let (status, message) = submit(
            &app,
            json!({"program": "fibonacci", "input": {"n": 5}, "backend": backend, "proof_kind": kind, "memory_limit_mib": mib}),
        )
        .await
        .unwrap_err();
        assert_eq!(status, 400, "{message}");
        assert!(
            message.contains(&format!("needs at least {floor_mib} MiB"))
                && message.contains("raise memory_limit_mib"),
            "{backend} {kind}: {message}"
        );
    }
}

#[tokio::test]
async fn a_proof_kind_the_backend_cannot_make_is_refused_with_the_reason() {
    let (app, _dir) = app(broker()).await;
    for (backend, kind, expected) in [
        ("sp1", "groth16", "gnark"),
        ("sp1", "plonk", "gnark"),
        ("sp1", "succinct", "it makes core, compressed"),
        ("risc0", "compressed", "it makes composite, succinct"),
        ("trace", "composite", "it makes execution-record"),
    ] {
        let (status, message) = submit(
            &app,
            json!({"program": "fibonacci", "input": {"n": 5}, "backend": backend, "proof_kind": kind}),
        )
        .await
        .unwrap_err();
        assert_eq!(status, 400, "{message}");
        assert!(
            message.contains(&format!("`{kind}`")) && message.contains(expected),
            "{backend} {kind}: {message}"
        );
    }
    // Every kind a backend lists is accepted.
    for (backend, kind) in [
        ("trace", "execution-record"),
        ("risc0", "composite"),
        ("sp1", "core"),
    ] {
        let task = submit(
            &app,
            json!({"program": "fibonacci", "input": {"n": 5}, "backend": backend, "proof_kind": kind}),
        )
        .await
        .unwrap();
        assert_eq!(task["proof_kind"], kind, "{task}");
    }
}
