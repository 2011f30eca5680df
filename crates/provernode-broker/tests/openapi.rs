//! docs/openapi.json is derived from the code (the handlers' annotations
//! and the bodies of `provernode-api`, as `provernode openapi` prints it)
//! and checked against it: the committed file is the derived document, it
//! documents exactly the served routes and error codes, every documented
//! request field is accepted and every served task field documented.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod common;

use std::collections::BTreeSet;

use common::{app, base64_of, call};
use provernode_broker::{ApiConfig, ErrorCode, ROUTES};
use serde_json::{json, Value};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

fn spec() -> Value {
    serde_json::from_str(&provernode_broker::openapi_json()).unwrap()
}

#[test]
fn the_committed_document_is_the_derived_one() {
    let committed = std::fs::read_to_string(COMMITTED).unwrap();
    assert!(
        committed == provernode_broker::openapi_json(),
        "docs/openapi.json is not what the code derives; regenerate it with `cargo run -- openapi > docs/openapi.json`"
    );
}

#[test]
fn the_documented_routes_are_exactly_the_served_ones() {
    let spec = spec();
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served);
}

#[test]
fn the_documented_error_codes_are_exactly_the_codes_in_use() {
    let spec = spec();
    let documented: BTreeSet<String> = spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let used: BTreeSet<String> = ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(documented, used);
}

#[tokio::test]
async fn every_documented_request_field_is_accepted_and_every_task_field_documented() {
    let (app, _dir) = app(ApiConfig::default()).await;
    let spec = spec();
    let props = spec["components"]["schemas"]["SubmitTask"]["properties"]
        .as_object()
        .unwrap();
    // One body per mutually exclusive input form, together covering every field.
    let common = json!({
        "program": "fibonacci", "abi": "risc0", "backend": "trace", "proof_kind": "execution-record",
        "priority": 1, "deadline_ms": 4_000_000_000_000i64, "timeout_secs": 10, "memory_limit_mib": 256,
        "max_attempts": 2, "max_cycles": 1000000, "max_guest_memory_mib": 64,
    });
    let mut covered = BTreeSet::new();
    let elf = base64_of(
        provernode_guests::find("fibonacci")
            .unwrap()
            .elf(provernode_core::Abi::Risc0),
    );
    for (i, extra) in [
        json!({"input": {"n": 5}, "idempotency_key": "a"}),
        json!({"input_hex": "05000000"}),
        json!({"input_base64": "BQAAAA==", "elf_base64": elf}),
        json!({"input_items_base64": ["BQAA", "AA=="]}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = common.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        covered.extend(body.as_object().unwrap().keys().cloned());
        let (status, resp) = call(&app, "POST", "/v1/tasks", Some(body)).await;
        assert_eq!(status, 201, "body {i}: {resp}");
        let (status, task) = call(
            &app,
            "GET",
            &format!("/v1/tasks/{}", resp["id"].as_str().unwrap()),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let documented: BTreeSet<String> = spec["components"]["schemas"]["Task"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let mut served: BTreeSet<String> = task.as_object().unwrap().keys().cloned().collect();
        served.remove("attempt_history");
        served.remove("events");
        assert_eq!(
            served, documented,
            "GET /v1/tasks/{{id}} and the Task schema disagree"
        );
    }
    // An aggregate: the one form with no input, over a task above.
    let (status, first) = call(
        &app,
        "POST",
        "/v1/tasks",
        Some(json!({"program": "fibonacci", "input": {"n": 5}})),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let body = json!({"program": "aggregate", "aggregate_of": [first["id"]]});
    covered.extend(body.as_object().unwrap().keys().cloned());
    let (status, resp) = call(&app, "POST", "/v1/tasks", Some(body)).await;
    assert_eq!(status, 201, "{resp}");
    let (status, task) = call(
        &app,
        "GET",
        &format!("/v1/tasks/{}", resp["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(task["depends_on"][0]["id"], first["id"], "{task}");
    let all: BTreeSet<String> = props.keys().cloned().collect();
    assert_eq!(covered, all, "the test must exercise every documented field");
    let typed: BTreeSet<String> = spec["components"]["schemas"]["TypedInput"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        typed,
        ["n", "rounds", "seed", "text"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    // And an undocumented field is refused.
    let (status, resp) = call(
        &app,
        "POST",
        "/v1/tasks",
        Some(json!({"program": "fibonacci", "colour": 1})),
    )
    .await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn errors_carry_the_documented_shape() {
    let (app, _dir) = app(ApiConfig::default()).await;
    for (method, uri, body, status, code) in [
        ("GET", "/v1/tasks/not-a-uuid", None, 404, "not_found"),
        ("GET", "/v1/tasks?state=bogus", None, 400, "invalid_request"),
        (
            "POST",
            "/v1/tasks",
            Some(json!({"program": "fibonacci", "input": {"n": 1}, "deadline_ms": 1})),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/tasks",
            Some(json!({"program": "fibonacci", "input_hex": "zz"})),
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/v1/tasks",
            Some(json!({"program": "fibonacci", "abi": "sp1", "elf_base64": base64_of(b"junk")})),
            400,
            "invalid_request",
        ),
        ("GET", "/nope", None, 404, "not_found"),
    ] {
        let (got, v) = call(&app, method, uri, body).await;
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {uri}: {v}"
        );
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, v) = call(
        &app,
        "POST",
        "/v1/tasks",
        Some(json!({"program": "fibonacci", "input": {"n": 1}})),
    )
    .await;
    assert_eq!(status, 201);
    let id = v["id"].as_str().unwrap();
    let (status, v) = call(&app, "GET", &format!("/v1/tasks/{id}/proof"), None).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("proof_not_ready"))
    );
}
