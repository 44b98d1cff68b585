//! The HTTP surface: one router per file, assembled here with auth and body limits.

pub mod admin;
pub mod auth;
pub mod credits;
pub mod health;
pub mod purchases;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use tower_http::trace::TraceLayer;

use crate::app::AppState;

/// Request bodies of the JSON APIs; webhooks enforce their own, larger limit.
const API_BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .merge(purchases::router())
        .merge(credits::router())
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .route_layer(from_fn_with_state(
            state.api_token.clone(),
            auth::require_bearer,
        ));
    // Only ADMIN_TOKEN opens /admin; API_TOKEN gets 401 there like any other wrong token.
    let admin = Router::new()
        .merge(admin::router())
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .route_layer(from_fn_with_state(
            state.admin_token.clone(),
            auth::require_bearer,
        ));
    Router::new()
        .merge(v1)
        .merge(admin)
        .merge(webhooks::router())
        .merge(health::router())
        .fallback(not_found)
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such route",
    )
}

/// One span per request with a request id, so every log line of a request can be found together.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| crate::purchase::new_purchase_id().replacen("pur_", "req_", 1));
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
}
