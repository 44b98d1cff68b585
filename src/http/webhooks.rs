//! `POST /webhooks/stripe`: verify the signature over the raw body, record the event, answer fast.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::http::wire;
use crate::ingest;
use crate::purchase::lifecycle::Outcome;
use crate::state::AppState;
use crate::stripe::signature;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// Stripe's webhook endpoint; the body must be signed (`Stripe-Signature`).
#[utoipa::path(post, path = "/webhooks/stripe", tag = "webhooks",
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hmac>")),
    request_body(content = Object, description = "A Stripe event, exactly as Stripe sent it"),
    responses(
        (status = 200, description = "Recorded (or already recorded)", body = wire::WebhookAck),
        (status = 400, description = "Bad signature or timestamp, or not an event", body = crate::error::ErrorResponse),
        (status = 413, description = "Body too large", body = crate::error::ErrorResponse),
        (status = 503, description = "Not recorded; Stripe retries", body = crate::error::ErrorResponse)))]
///
/// Never calls Stripe: the event is recorded with the work it schedules, then a worker takes over.
async fn receive(State(state): State<AppState>, request: Request) -> Response {
    let metrics = &state.services.metrics;
    let signature_header = request
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match axum::body::to_bytes(request.into_body(), state.webhook.max_body_bytes).await {
        Ok(body) => body,
        Err(_) => {
            metrics.webhook("rejected", "too_large");
            let limit = state.webhook.max_body_bytes;
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("body exceeds {limit} bytes"),
            )
            .into_response();
        }
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(error) = signature::verify(
        signature_header.as_deref(),
        &body,
        &state.webhook.secrets,
        now,
        state.webhook.tolerance_secs,
    ) {
        metrics.webhook("rejected", error.reason());
        tracing::warn!(reason = error.reason(), %error, "webhook rejected");
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "signature_invalid",
            error.to_string(),
        )
        .into_response();
    }
    let (event, raw) = match ingest::parse_event(&body) {
        Ok(parsed) => parsed,
        Err(error) => {
            metrics.webhook("rejected", "malformed");
            tracing::warn!(%error, "webhook rejected: not a Stripe event");
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_event",
                format!("body is not a Stripe event: {error}"),
            )
            .into_response();
        }
    };
    let (invoice_id, _) = event.invoice_refs();
    match ingest::ingest(&state.services, &event, &raw, "webhook").await {
        Ok(recorded) => {
            let outcome = recorded.outcome.unwrap_or(Outcome::Duplicate);
            let label = match outcome {
                Outcome::Duplicate => "duplicate",
                Outcome::Ignored => "ignored",
                _ => "accepted",
            };
            metrics.webhook(label, "");
            tracing::info!(event_id = %event.id, event_type = %event.event_type, invoice_id, purchase_id = recorded.purchase_id.as_deref(), %outcome, "webhook recorded");
            let body = wire::WebhookAck {
                received: true,
                event_id: event.id.clone(),
                duplicate: !recorded.new,
                outcome,
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(error) => {
            metrics.webhook("rejected", "unavailable");
            tracing::error!(event_id = %event.id, %error, "webhook not recorded; Stripe will retry");
            ApiError::unavailable().into_response()
        }
    }
}
