//! The API's one error type: every failure becomes a JSON body that names the problem.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable machine-readable code, such as `invalid_field` or `signature_invalid`.
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid_field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_field",
            message: format!("{field} {message}"),
            field: Some(field),
        }
    }

    pub fn bad_json(error: &serde_json::Error) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("body is not valid JSON: {error}"),
        )
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token",
        )
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} with id '{id}'"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// The database could not be reached in time. The message stays generic: driver errors can
    /// carry connection details.
    pub fn unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; retry later",
        )
    }
}

mod database;
pub use database::OnConstraint;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// Every error answer, on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "invalid_field")]
    pub code: String,
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;
