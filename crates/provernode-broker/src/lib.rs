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
mod programs;
mod serve;
mod state;
mod sweeper;

use axum::extract::DefaultBodyLimit;
use axum::Router;

pub use api::ROUTES;
pub use error::{ApiError, ErrorCode};
pub use extract::{MAX_IDEMPOTENCY_KEY_CHARS, MAX_KIND_CHARS, MAX_NAME_CHARS};
pub use serve::{serve, ServeLimits, MAX_REFUSING};
pub use state::{ApiConfig, ApiState};
pub use sweeper::sweep_forever;

/// The whole API: the client routes and health, the agent routes where
/// agent tokens are configured, JSON answers for unknown paths and methods,
/// and the body limit.
/// An agent's own HTTP endpoints (`agent --status-listen`): `/healthz`,
/// `/readyz` with its components (workers, broker, each backend warm or
/// cold) and `/metrics`. No token: it tells nothing but health and counts;
/// bind it to an address only the monitoring can reach.
pub fn status_router(
    readiness: std::sync::Arc<provernode_core::Readiness>,
    registry: provernode_backends::Registry,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> Router {
    use axum::routing::get;
    let ready = readiness.clone();
    Router::new()
        .route("/healthz", get(api::healthz))
        .route(
            "/readyz",
            get(move || {
                let (readiness, registry) = (ready.clone(), registry.clone());
                async move { api::readiness_response(&readiness, &registry) }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let text = metrics.as_ref().map(|h| h.render()).unwrap_or_default();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        text,
                    )
                }
            }),
        )
}

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

/// The API's OpenAPI document, derived from the handlers and the bodies of
/// `provernode-api`: what `provernode openapi` prints and
/// `docs/openapi.json` holds (a test keeps them equal).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "provernode node API",
        version = "1",
        description = "The HTTP API of `provernode run` and `provernode broker`. Every error is JSON {\"error\": {\"code\", \"message\"}} with a stable code. /v1 and /metrics need `Authorization: Bearer <token>` when the node has a token (always, when it listens beyond loopback; the scheme is case-insensitive). The agent API (/v1/agent/...) is served by cluster brokers only and accepts agent tokens only; client tokens are refused there, and agent tokens on the client API. Beyond --max-http-connections a client is answered 503 overloaded as soon as it has sent its request. Generated from the code: `provernode openapi`."
    ),
    paths(
        api::submit,
        api::list,
        api::task,
        api::proof,
        api::cancel,
        api::retry,
        programs::upload,
        programs::list,
        programs::get_one,
        programs::delete,
        api::healthz,
        api::readyz,
        api::metrics_text,
        agent_api::check,
        agent_api::claim,
        agent_api::heartbeat,
        agent_api::complete,
        agent_api::fail,
        agent_api::release,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document as pretty JSON (what `docs/openapi.json` holds).
pub fn openapi_json() -> String {
    let doc = <ApiDoc as utoipa::OpenApi>::openapi();
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
