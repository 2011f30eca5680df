//! Helpers shared by the broker's API tests.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // test helpers panic by design; each test uses some

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use provernode_backends::Registry;
use provernode_broker::{router, ApiConfig, ApiState};
use provernode_store::{SqliteOptions, SqliteStore, Store};
use serde_json::Value;
use tower::ServiceExt;

/// The client API over a fresh SQLite queue, with this build's registry.
pub async fn app(config: ApiConfig) -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("q.sqlite"), &SqliteOptions::default())
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let state = ApiState {
        store,
        registry: Registry::default(),
        config: Arc::new(config),
        wake: Arc::new(tokio::sync::Notify::new()),
        readiness: {
            let r = Arc::new(provernode_core::Readiness::new());
            r.set_accepting(true);
            r
        },
        metrics: None,
        artifacts: None,
    };
    (router(state), dir)
}

/// One request; the status and the JSON body (null when not JSON).
pub async fn call(app: &axum::Router, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
