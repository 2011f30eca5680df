//! Issue 19, items 8 to 12: what the API refuses at the door, with a status
//! and a message that says what to do, instead of storing a task that fails
//! every attempt (or runs something else than was asked).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic by design

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{app, base64_of, call};
use provernode_broker::ApiConfig;
use provernode_core::Abi;
use serde_json::{json, Value};
use tower::ServiceExt;

fn fib(n: u32) -> Value {
    json!({"program": "fibonacci", "input": {"n": n}})
}

async fn refused(app: &axum::Router, body: Value) -> (u16, String, String) {
    let (status, v) = call(app, "POST", "/v1/tasks", Some(body)).await;
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_owned(),
        v["error"]["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Item 8: a 40 MiB program name was stored, and listing 20 such tasks took
/// the node's memory. Every string field is bounded before it is stored or
/// echoed back.
#[tokio::test]
async fn every_string_field_is_bounded() {
    let (app, _dir) = app(ApiConfig::default()).await;
    let long = "x".repeat(300);
    let elf = base64_of(provernode_guests::find("fibonacci").unwrap().elf(Abi::Risc0));
    for (field, body) in [
        (
            "program",
            json!({"program": long, "input_hex": "05000000", "elf_base64": elf}),
        ),
        (
            "backend",
            json!({"program": "fibonacci", "input": {"n": 1}, "backend": long}),
        ),
        (
            "proof_kind",
            json!({"program": "fibonacci", "input": {"n": 1}, "proof_kind": long}),
        ),
        (
            "abi",
            json!({"program": "fibonacci", "input": {"n": 1}, "abi": long}),
        ),
        ("program", json!({"program": "", "input": {"n": 1}})),
    ] {
        let (status, code, message) = refused(&app, body).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_request"),
            "{field}: {message}"
        );
        assert!(
            message.starts_with(field) && message.len() < 200,
            "{field}: {message}"
        );
    }
}

/// Item 9: the risc0 fibonacci's program id with `"abi": "sp1"` silently ran
/// the SP1 fibonacci.
#[tokio::test]
async fn a_program_id_with_another_abi_is_refused() {
    let (app, _dir) = app(ApiConfig::default()).await;
    let risc0_id = provernode_guests::find("fibonacci")
        .unwrap()
        .program(Abi::Risc0)
        .id()
        .to_string();
    let (status, _, message) = refused(
        &app,
        json!({"program": risc0_id, "abi": "sp1", "input": {"n": 3}}),
    )
    .await;
    assert_eq!(status, 400, "{message}");
    assert!(
        message.contains("risc0 build") && message.contains("abi is sp1"),
        "{message}"
    );
    let (status, v) = call(
        &app,
        "POST",
        "/v1/tasks",
        Some(json!({"program": risc0_id, "abi": "risc0", "input": {"n": 3}})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
}

/// Item 10: guest memory the node cannot give or verify is refused at
/// submission: beyond the ABI's address space, or, for trace (verified by
/// re-running the guest in the node's own process), beyond the node's bound.
#[tokio::test]
async fn guest_memory_the_node_cannot_give_or_verify_is_refused() {
    let (app, _dir) = app(ApiConfig {
        max_reexecuted_guest_memory_bytes: 8 << 30,
        ..ApiConfig::default()
    })
    .await;
    let mut body = fib(3);
    body["max_guest_memory_mib"] = json!(4 << 10);
    let (status, _, message) = refused(&app, body.clone()).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("risc0 ABI gives a guest at most"), "{message}");
    body["max_guest_memory_mib"] = json!(2048);
    assert_eq!(call(&app, "POST", "/v1/tasks", Some(body.clone())).await.0, 201);
    let (app, _dir) = app_default().await;
    let (status, _, message) = refused(&app, body).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("--max-trace-guest-memory-mib"), "{message}");
}

async fn app_default() -> (axum::Router, tempfile::TempDir) {
    app(ApiConfig::default()).await
}

/// Item 11: malformed ELFs were accepted at submission and failed every
/// attempt as `backend_error`.
#[tokio::test]
async fn malformed_elfs_are_refused_at_submission() {
    let (app, _dir) = app(ApiConfig::default()).await;
    let good = provernode_guests::find("fibonacci")
        .unwrap()
        .elf(Abi::Risc0)
        .to_vec();
    let mut garbage_after_header = good[..52].to_vec();
    garbage_after_header.extend(std::iter::repeat_n(0xa5u8, 4000));
    let mut many_headers = good.clone();
    many_headers[44..46].copy_from_slice(&u16::MAX.to_le_bytes()); // e_phnum
    let mut offsets_past_end = good.clone();
    let phoff = u32::from_le_bytes(good[28..32].try_into().unwrap()) as usize;
    offsets_past_end[phoff + 4..phoff + 8].copy_from_slice(&u32::MAX.to_le_bytes()); // p_offset
    for (what, elf) in [
        ("garbage after the header", garbage_after_header),
        ("65,535 program headers", many_headers),
        ("segment offsets past the end", offsets_past_end),
    ] {
        let (status, code, message) = refused(
            &app,
            json!({"program": "mine", "input_hex": "05000000", "elf_base64": base64_of(&elf)}),
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_input"),
            "{what}: {message}"
        );
        assert!(message.contains("not a valid risc0 program"), "{what}: {message}");
    }
}

/// Item 12: `submit fibonacci` without `--n` was accepted and failed in the
/// worker; built-in guests' inputs are checked at submission, as `prove`
/// checks them.
#[tokio::test]
async fn a_built_in_guest_without_its_input_is_refused() {
    let (app, _dir) = app(ApiConfig::default()).await;
    let (status, code, message) = refused(&app, json!({"program": "fibonacci"})).await;
    assert_eq!((status, code.as_str()), (400, "invalid_input"), "{message}");
    assert!(message.contains("needs --n"), "{message}");
    // A guest that takes no input needs none.
    assert_eq!(
        call(&app, "POST", "/v1/tasks", Some(json!({"program": "spin"})))
            .await
            .0,
        201
    );
}

async fn with_header(app: &axum::Router, name: &str, value: &[u8], body: &Value) -> (u16, Value) {
    let req = Request::builder()
        .method("POST")
        .uri("/v1/tasks")
        .header("content-type", "application/json")
        .header(name, axum::http::HeaderValue::from_bytes(value).unwrap())
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Item 12: a non-ASCII `Idempotency-Key` was silently ignored (two tasks).
#[tokio::test]
async fn a_non_ascii_idempotency_key_is_refused_not_ignored() {
    let (app, _dir) = app(ApiConfig::default()).await;
    let (status, v) = with_header(&app, "idempotency-key", "clé-1".as_bytes(), &fib(4)).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("visible ASCII"),
        "{v}"
    );
    let (first, a) = with_header(&app, "idempotency-key", b"key-1", &fib(4)).await;
    let (again, b) = with_header(&app, "idempotency-key", b"key-1", &fib(4)).await;
    assert_eq!((first, again), (201, 200));
    assert_eq!(a["id"], b["id"]);
}

/// Item 12: the same key with other limits returned the old task and
/// dropped the new limits silently.
#[tokio::test]
async fn the_same_key_with_other_limits_is_a_conflict() {
    let (app, _dir) = app(ApiConfig::default()).await;
    let mut body = fib(6);
    body["idempotency_key"] = json!("order-9");
    assert_eq!(call(&app, "POST", "/v1/tasks", Some(body.clone())).await.0, 201);
    body["timeout_secs"] = json!(77);
    let (status, code, message) = refused(&app, body).await;
    assert_eq!(
        (status, code.as_str()),
        (409, "idempotency_conflict"),
        "{message}"
    );
    assert!(message.contains("limits"), "{message}");
}

/// Item 12: 405 had an empty body.
#[tokio::test]
async fn a_wrong_method_is_answered_in_json() {
    let (app, _dir) = app(ApiConfig::default()).await;
    let (status, v) = call(&app, "DELETE", "/v1/tasks", None).await;
    assert_eq!(status, 405);
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
}

/// Item 12: the 413 message named a flag that does not exist.
#[tokio::test]
async fn an_oversized_body_names_the_flag_that_sets_the_limit() {
    let (app, _dir) = app(ApiConfig {
        max_body_bytes: 1000,
        ..ApiConfig::default()
    })
    .await;
    let (status, v) = call(
        &app,
        "POST",
        "/v1/tasks",
        Some(json!({"program": "sha256", "input_hex": "00".repeat(2000)})),
    )
    .await;
    assert_eq!(status, 413, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-input-mib"),
        "{v}"
    );
}

/// Item 12: the `Bearer` scheme was case-sensitive (RFC 7235: it is not).
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let (app, _dir) = app(ApiConfig {
        client_tokens: vec!["s3cret".into()],
        ..ApiConfig::default()
    })
    .await;
    for (value, expected) in [
        ("Bearer s3cret", 201),
        ("bearer s3cret", 201),
        ("BEARER  s3cret ", 201),
        ("Basic s3cret", 401),
        ("Bearer wrong", 401),
    ] {
        let (status, v) = with_header(&app, "authorization", value.as_bytes(), &fib(2)).await;
        assert_eq!(status, expected, "{value}: {v}");
    }
}

/// Issue 20: SP1 input is a list of items, as `SP1Stdin` holds them. A list
/// is stored in the canonical encoding of `provernode_core::input`; bytes
/// that claim to be a list but are not one are refused at the door.
#[tokio::test]
async fn sp1_input_items_are_stored_as_a_list_and_a_broken_list_is_refused() {
    let (app, _dir) = app(ApiConfig::default()).await;
    let items = [b"ab".to_vec(), b"cde".to_vec()];
    let body = json!({
        "program": "fibonacci", "abi": "sp1",
        "input_items_base64": items.iter().map(|i| base64_of(i)).collect::<Vec<_>>(),
    });
    let (status, v) = call(&app, "POST", "/v1/tasks", Some(body)).await;
    assert_eq!(status, 201, "{v}");
    let (_, task) = call(
        &app,
        "GET",
        &format!("/v1/tasks/{}", v["id"].as_str().unwrap()),
        None,
    )
    .await;
    let encoded = provernode_core::input::encode_items(&items);
    assert_eq!(task["input_bytes"], encoded.len() as u64, "{task}");
    assert_eq!(
        task["input_digest"],
        provernode_core::sha256(&encoded).to_string(),
        "{task}"
    );

    let mut broken = encoded.clone();
    broken.pop();
    let (status, code, message) = refused(
        &app,
        json!({"program": "fibonacci", "abi": "sp1", "input_base64": base64_of(&broken)}),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_input"), "{message}");
    assert!(message.contains("item list is malformed"), "{message}");

    let (status, code, message) = refused(
        &app,
        json!({"program": "fibonacci", "input_hex": "05000000", "input_items_base64": []}),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"), "{message}");
}
