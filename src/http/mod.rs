//! The HTTP surface: one router per file, assembled here with auth and body limits.

pub mod admin;
pub mod auth;
pub mod credits;
pub mod health;
pub mod outbound;
pub mod outbound_messages;
pub mod purchases;
pub mod server;
pub mod topups;
pub mod webhooks;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::secret::Secret;
use crate::state::AppState;

/// Request bodies of the JSON APIs; webhooks enforce their own, larger limit.
const API_BODY_LIMIT: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "creditd", description = "Turns each paid Stripe invoice into exactly one Stripe billing credit grant."),
    modifiers(&BearerTokens),
    // The body creditd posts to merchants' endpoints: served by no route here, so listed.
    components(schemas(wire::WebhookEvent, wire::WebhookEventData)),
    tags(
        (name = "purchases", description = "Credit purchases (bearer API_TOKEN)"),
        (name = "credits", description = "Customers' credit balances and transactions (bearer API_TOKEN)"),
        (name = "auto_topup", description = "Automatic top-ups: a rule per customer (bearer API_TOKEN)"),
        (name = "webhooks", description = "Stripe's webhook endpoint (signed)"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "admin", description = "Operator tools: re-sync, replay, views, retries, outbound webhook endpoints and messages (bearer ADMIN_TOKEN)"),
    )
)]
struct ApiDoc;

struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["api_token", "admin_token"] {
            let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
    }
}

/// The routes and their OpenAPI document, built from the same annotated handlers so the
/// document cannot drift from what is served.
fn documented(
    api_token: Secret,
    admin_token: Secret,
) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    // Only ADMIN_TOKEN opens /admin; API_TOKEN gets 401 there like any other wrong token.
    let admin = OpenApiRouter::new()
        .merge(admin::router())
        .merge(outbound::router())
        .merge(outbound_messages::router())
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .route_layer(from_fn_with_state(admin_token, auth::require_bearer));
    let v1 = OpenApiRouter::new()
        .merge(purchases::router())
        .merge(credits::router())
        .merge(topups::router())
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .route_layer(from_fn_with_state(api_token, auth::require_bearer));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(v1)
        .merge(admin)
        .merge(webhooks::router())
        .merge(health::router())
        .split_for_parts()
}

/// The OpenAPI document of creditd's HTTP API (checked in at `docs/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented(
        Secret::from("documentation-only"),
        Secret::from("documentation-only"),
    )
    .1
}

pub fn router(state: AppState) -> Router {
    let (routes, document) = documented(state.api_token.clone(), state.admin_token.clone());
    let document = Arc::new(document);
    let request_timeout = state.request_timeout;
    routes
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(document.as_ref().clone()) }),
        )
        .fallback(not_found)
        // Every route, the webhook's body included: a client that stalls mid-body is cut off.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(map_response(json_timeout))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// `TimeoutLayer` answers with an empty 408; no handler answers 408 itself, so every 408 here
/// is the timeout, and gets the API's JSON error like every other failure.
async fn json_timeout(response: Response) -> Response {
    if response.status() != StatusCode::REQUEST_TIMEOUT {
        return response;
    }
    let mut response = crate::error::ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request was not received and answered within HTTP_REQUEST_TIMEOUT_MS",
    )
    .into_response();
    // The rest of a stalled body must not keep the connection open.
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
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
