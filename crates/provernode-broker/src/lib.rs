//! The broker: the node's HTTP API over the store.
//!
//! Handlers are plain async functions that translate between HTTP and the
//! store's typed API; one [`ApiError`] maps every failure to a status code
//! and a JSON body with a stable `code` and a message that says what to do.
//! The routes are listed once in [`ROUTES`], which the OpenAPI document in
//! `docs/openapi.json` is checked against.
//!
//! Architecture invariant: the broker never runs a backend or a worker; it
//! validates, stores and serves. Proofs arrive through the store.

mod agent_api;
mod api;
mod error;
mod extract;
mod serve;
mod state;
mod sweeper;

use axum::extract::DefaultBodyLimit;
use axum::Router;

pub use api::ROUTES;
pub use error::{ApiError, ErrorCode};
pub use extract::{MAX_IDEMPOTENCY_KEY_CHARS, MAX_KIND_CHARS, MAX_NAME_CHARS};
pub use serve::{serve, ServeLimits};
pub use state::{ApiConfig, ApiState};
pub use sweeper::sweep_forever;

/// The whole API: the client routes and health, the agent routes where
/// agent tokens are configured, JSON answers for unknown paths and methods,
/// and the body limit.
pub fn router(state: ApiState) -> Router {
    let max_body = state.config.max_body_bytes;
    let mut app = api::routes(state.clone());
    if !state.config.agent_tokens.is_empty() {
        app = app.merge(agent_api::routes(state.clone()));
    }
    app.fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint; see docs/openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this endpoint does not take that method; see docs/openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}
