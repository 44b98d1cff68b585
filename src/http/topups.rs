//! `/v1/customers/{customer}/auto_topup`: set, show and remove a customer's auto top-up rule.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::http::wire;
use crate::ids::CustomerId;
use crate::state::AppState;
use crate::stripe::StripeError;
use crate::stripe::api::topup as requests;
use crate::stripe::types::Customer;
use crate::topup::rule_request;

/// Top-ups shown with the rule.
const RECENT_TOPUPS: i64 = 5;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_rule, get_rule, delete_rule))
}

fn customer_id(customer: &str) -> ApiResult<()> {
    CustomerId::parse(customer)
        .map(|_| ())
        .map_err(|e| ApiError::invalid_field("customer", e))
}

async fn shown(state: &AppState, rule: &db::topups::Rule) -> ApiResult<wire::AutoTopup> {
    let recent = db::topups::recent(&state.services.db, &rule.customer, RECENT_TOPUPS).await?;
    Ok(wire::AutoTopup::new(rule, &recent))
}

/// Create or replace the customer's auto top-up rule. The customer must have a saved card
/// (`invoice_settings.default_payment_method`); the balance is checked at once.
#[utoipa::path(put, path = "/v1/customers/{customer}/auto_topup", tag = "auto_topup", security(("api_token" = [])),
    params(("customer" = String, Path, description = "Stripe customer id")),
    request_body = wire::AutoTopupRequest,
    responses((status = 200, body = wire::AutoTopup), (status = 400, description = "Body is not JSON", body = ErrorResponse),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorResponse),
        (status = 422, description = "A field is invalid, or the customer has no saved card; `field` names it", body = ErrorResponse),
        (status = 503, description = "Stripe or the database unavailable", body = ErrorResponse)))]
async fn put_rule(
    State(state): State<AppState>,
    Path(customer): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<wire::AutoTopup>> {
    customer_id(&customer)?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_json(&e))?;
    let now = chrono::Utc::now().timestamp();
    let spec = rule_request::parse(&customer, &value, now)
        .map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    let found: Result<Customer, StripeError> = state
        .services
        .stripe
        .send(&requests::get_customer(&customer))
        .await;
    match found {
        Ok(found) if found.has_saved_card() => {}
        Ok(_) => {
            return Err(ApiError::invalid_field(
                "customer",
                "has no default payment method (invoice_settings.default_payment_method); \
                 save a card first, e.g. with Checkout and save_payment_method",
            ));
        }
        Err(StripeError::Api { status: 404, .. }) => {
            return Err(ApiError::invalid_field(
                "customer",
                "does not exist in Stripe",
            ));
        }
        Err(error) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stripe_unavailable",
                format!(
                    "Stripe could not be asked for the customer's saved card; try again: {error}"
                ),
            ));
        }
    }
    let rule = db::topups::upsert(
        &state.services.db,
        &customer,
        spec.threshold,
        spec.amount,
        spec.top_up_to,
        &spec.credit,
        spec.max_topups_per_month,
        spec.max_amount_per_month,
        spec.pause_after_failures,
        spec.enabled,
    )
    .await?;
    state.services.wake.notify_one();
    tracing::info!(%customer, threshold = rule.threshold, "auto top-up rule set");
    Ok(axum::Json(shown(&state, &rule).await?))
}

/// The customer's rule, the balance last seen, the latest top-ups and any pause reason.
#[utoipa::path(get, path = "/v1/customers/{customer}/auto_topup", tag = "auto_topup", security(("api_token" = [])),
    params(("customer" = String, Path, description = "Stripe customer id")),
    responses((status = 200, body = wire::AutoTopup), (status = 401, description = "Missing or wrong bearer token", body = ErrorResponse),
        (status = 404, description = "The customer has no rule", body = ErrorResponse),
        (status = 422, description = "Invalid customer id", body = ErrorResponse)))]
async fn get_rule(
    State(state): State<AppState>,
    Path(customer): Path<String>,
) -> ApiResult<axum::Json<wire::AutoTopup>> {
    customer_id(&customer)?;
    let rule = db::topups::find(&state.services.db, &customer)
        .await?
        .ok_or_else(|| ApiError::not_found("auto_topup", &customer))?;
    Ok(axum::Json(shown(&state, &rule).await?))
}

/// Removes the rule and answers it one last time, with `state: "deleted"`. A top-up already in
/// flight finishes; its purchase stays.
#[utoipa::path(delete, path = "/v1/customers/{customer}/auto_topup", tag = "auto_topup", security(("api_token" = [])),
    params(("customer" = String, Path, description = "Stripe customer id")),
    responses((status = 200, description = "Removed", body = wire::AutoTopup), (status = 401, description = "Missing or wrong bearer token", body = ErrorResponse),
        (status = 404, description = "The customer has no rule", body = ErrorResponse),
        (status = 422, description = "Invalid customer id", body = ErrorResponse)))]
async fn delete_rule(
    State(state): State<AppState>,
    Path(customer): Path<String>,
) -> ApiResult<axum::Json<wire::AutoTopup>> {
    customer_id(&customer)?;
    let rule = db::topups::delete(&state.services.db, &customer)
        .await?
        .ok_or_else(|| ApiError::not_found("auto_topup", &customer))?;
    tracing::info!(%customer, "auto top-up rule removed");
    let mut shown = shown(&state, &rule).await?;
    shown.state = "deleted".into();
    Ok(axum::Json(shown))
}
