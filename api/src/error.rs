//! Errors as clients see them: an HTTP status and a JSON body with a stable code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::backend::{FailureKind, SqlFailure, SqlPosition};

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's code, message and, for SQL errors, where it happened.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable lowercase code: `unauthorized`, `syntax_error`, `unique_violation`, ...
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// Line and column in the SQL text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<SqlPosition>,
    /// Which statement of a script failed (0-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<usize>,
}

/// An error a handler returns.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Body.
    pub detail: ErrorDetail,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: ErrorDetail {
                code: code.to_string(),
                message: message.into(),
                position: None,
                statement: None,
            },
        }
    }

    /// 400 with code `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500: something on our side failed; the message is still shown, without internals.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// 503 before `nqdb init` created the first key.
    pub fn not_initialized() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_initialized",
            "no API key exists yet: run `nqdb init --data-dir DIR` on the server to create the \
             first admin key",
        )
    }
}

impl From<SqlFailure> for ApiError {
    fn from(f: SqlFailure) -> ApiError {
        let status = match f.kind {
            FailureKind::Invalid => StatusCode::BAD_REQUEST,
            FailureKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            FailureKind::Conflict => StatusCode::CONFLICT,
            FailureKind::Timeout => StatusCode::REQUEST_TIMEOUT,
            FailureKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            FailureKind::Forbidden => StatusCode::FORBIDDEN,
            FailureKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            detail: ErrorDetail {
                code: f.code,
                message: f.message,
                position: f.position,
                statement: f.statement,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.detail })).into_response()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.detail.code,
            self.detail.message
        )
    }
}

impl std::error::Error for ApiError {}
