//! Bearer-token guards for /v1 and /admin, checked before anything else is looked at.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::secret::Secret;

/// Lets the request through only with `Authorization: Bearer <token>`, compared in constant time.
pub async fn require_bearer(
    State(token): State<Secret>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(candidate) if token.matches(candidate.as_bytes()) => Ok(next.run(request).await),
        _ => Err(ApiError::unauthorized()),
    }
}
