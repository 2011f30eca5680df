use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub use provernode_api::ErrorCode;

/// The HTTP status of each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidRequest
        | ErrorCode::UnknownProgram
        | ErrorCode::UnknownBackend
        | ErrorCode::BackendUnavailable
        | ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::ProofNotReady
        | ErrorCode::AlreadyTerminal
        | ErrorCode::NotRetryable
        | ErrorCode::ProgramInUse
        | ErrorCode::IdempotencyConflict => StatusCode::CONFLICT,
        ErrorCode::ProofRejected => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::StoreUnavailable | ErrorCode::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::StoreDamaged | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
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
            StoreError::UnknownProgram(_) => ApiError::new(ErrorCode::UnknownProgram, e.to_string()),
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
        let body = provernode_api::ErrorBody {
            error: provernode_api::ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        (status_of(self.code), Json(body)).into_response()
    }
}
