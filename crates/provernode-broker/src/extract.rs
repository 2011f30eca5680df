//! Turning requests into typed values, or into the error that says what is
//! wrong with them: bearer tokens, JSON bodies, task ids, bounded strings.
//! Shared by the client API and the agent API, which import from here and
//! never from each other.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

/// Whether the request carries one of `tokens` (always true for none).
/// Every token is compared in constant time, so timing leaks nothing.
pub(crate) fn authorized(headers: &HeaderMap, tokens: &[String]) -> bool {
    if tokens.is_empty() {
        return true;
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    tokens.iter().fold(false, |ok, t| {
        ok | bool::from(given.as_bytes().ct_eq(t.as_bytes()))
    })
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 7235); spaces around the token are not part of it.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(crate) fn bad(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

/// Longest program name (or built-in guest name, or program id) accepted.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest backend or proof kind name accepted.
pub const MAX_KIND_CHARS: usize = 64;
/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// Refuses a string field longer than `max` characters (or empty, unless
/// `may_be_empty`), before anything echoes it back.
pub(crate) fn bounded(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() || value.chars().count() > max {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!(
                "{field} must be 1 to {max} characters (it has {})",
                value.chars().count()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v).map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            bad(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than the node accepts: about twice its largest input, which is set with --max-input-mib",
            )
        } else {
            bad(
                ErrorCode::InvalidRequest,
                format!("the request body is not a valid task: {}", rejection.body_text()),
            )
        }
    })
}

pub(crate) fn parse_task_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| bad(ErrorCode::NotFound, format!("no task {id:?}: task ids are UUIDs")))
}
