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
mod serve;
mod sweeper;

pub use api::{router, ApiConfig, ApiState, ROUTES};
pub use error::{ApiError, ErrorCode};
pub use serve::{serve, ServeLimits};
pub use sweeper::sweep_forever;
