use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Stable error codes of the HTTP API (also listed in docs/openapi.json).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    UnknownProgram,
    UnknownBackend,
    BackendUnavailable,
    InvalidInput,
    PayloadTooLarge,
    Unauthorized,
    NotFound,
    ProofNotReady,
    AlreadyTerminal,
    IdempotencyConflict,
    StoreUnavailable,
    InsufficientStorage,
    StoreDamaged,
    Overloaded,
    MethodNotAllowed,
    ProofRejected,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::InvalidRequest,
        ErrorCode::UnknownProgram,
        ErrorCode::UnknownBackend,
        ErrorCode::BackendUnavailable,
        ErrorCode::InvalidInput,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::ProofNotReady,
        ErrorCode::AlreadyTerminal,
        ErrorCode::IdempotencyConflict,
        ErrorCode::StoreUnavailable,
        ErrorCode::InsufficientStorage,
        ErrorCode::StoreDamaged,
        ErrorCode::Overloaded,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ProofRejected,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownProgram => "unknown_program",
            ErrorCode::UnknownBackend => "unknown_backend",
            ErrorCode::BackendUnavailable => "backend_unavailable",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ProofNotReady => "proof_not_ready",
            ErrorCode::AlreadyTerminal => "already_terminal",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::StoreDamaged => "store_damaged",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ProofRejected => "proof_rejected",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::UnknownProgram
            | ErrorCode::UnknownBackend
            | ErrorCode::BackendUnavailable
            | ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::ProofRejected => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ProofNotReady | ErrorCode::AlreadyTerminal | ErrorCode::IdempotencyConflict => {
                StatusCode::CONFLICT
            }
            ErrorCode::StoreUnavailable | ErrorCode::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::StoreDamaged | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<provernode_store::StoreError> for ApiError {
    fn from(e: provernode_store::StoreError) -> Self {
        use provernode_store::StoreError;
        match e {
            StoreError::IdempotencyConflict { .. } => {
                ApiError::new(ErrorCode::IdempotencyConflict, e.to_string())
            }
            // The store logs these itself, once per episode.
            StoreError::DiskFull { .. } => ApiError::new(ErrorCode::InsufficientStorage, e.to_string()),
            StoreError::DatabaseCorrupt { .. } => ApiError::new(ErrorCode::StoreDamaged, e.to_string()),
            StoreError::Database(_) => {
                tracing::error!(error = %e, "store error");
                ApiError::new(
                    ErrorCode::StoreUnavailable,
                    format!("the task store failed ({e}); the request was not applied, retry it"),
                )
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::new(ErrorCode::Internal, other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code.as_str(), "message": self.message}});
        (self.code.status(), Json(body)).into_response()
    }
}
