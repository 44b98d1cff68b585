//! A customer's credits as Stripe holds them: balance summary and balance transactions.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::error::ErrorResponse;
use crate::http::wire;
use crate::money::{Currency, Money};
use crate::state::AppState;
use crate::stripe::StripeError;
use crate::stripe::api::credits::{self as stripe_credits, BalanceFilter};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(balance))
        .routes(routes!(transactions))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct BalanceQuery {
    credit_grant: Option<String>,
    price: Option<String>,
}

/// The customer's credit balance from Stripe's credit balance summary (metered scope by default).
#[utoipa::path(get, path = "/v1/customers/{customer}/credit_balance", tag = "credits", security(("api_token" = [])),
    params(("customer" = String, Path, description = "Stripe customer id"), BalanceQuery),
    responses((status = 200, body = wire::CreditBalance), (status = 401, description = "Missing or wrong bearer token", body = ErrorResponse),
        (status = 422, description = "Invalid id or filter", body = ErrorResponse),
        (status = 503, description = "Stripe unavailable (`stripe_unavailable`: never an empty balance) or its capacity kept for grants (`stripe_busy`, with `Retry-After`)", body = ErrorResponse)))]
async fn balance(
    State(state): State<AppState>,
    Path(customer): Path<String>,
    Query(query): Query<BalanceQuery>,
) -> Result<axum::Json<wire::CreditBalance>, CreditsError> {
    check_id("customer", &customer, "cus_")?;
    let filter = match (&query.credit_grant, &query.price) {
        (Some(_), Some(_)) => {
            return Err(
                ApiError::invalid_field("credit_grant", "cannot be combined with price").into(),
            );
        }
        (Some(grant), None) => BalanceFilter::Grant(grant),
        (None, Some(price)) => {
            check_id("price", price, "price_")?;
            BalanceFilter::Price(price)
        }
        (None, None) => BalanceFilter::Metered,
    };
    let summary: Value = state
        .services
        .stripe
        .send(&stripe_credits::balance_summary(&customer, filter))
        .await
        .map_err(stripe_error)?;
    let balances = summary["balances"]
        .as_array()
        .ok_or_else(|| {
            stripe_error(StripeError::Decode(
                "credit balance summary has no balances".into(),
            ))
        })?
        .iter()
        .map(|entry| wire::CurrencyBalance {
            available: amount(&entry["available_balance"]),
            ledger: amount(&entry["ledger_balance"]),
        })
        .collect();
    Ok(axum::Json(wire::CreditBalance {
        object: "credit_balance".into(),
        customer,
        balances,
    }))
}

fn amount(stripe_amount: &Value) -> wire::Amount {
    let monetary = &stripe_amount["monetary"];
    let value = monetary["value"].as_i64().unwrap_or(0);
    let code = monetary["currency"].as_str().unwrap_or_default();
    let display = Currency::parse(code)
        .map(|currency| Money { value, currency }.display())
        .ok();
    wire::Amount {
        value,
        currency: code.to_owned(),
        display,
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TransactionsQuery {
    credit_grant: Option<String>,
    limit: Option<i64>,
    starting_after: Option<String>,
}

/// The customer's credit balance transactions from Stripe.
#[utoipa::path(get, path = "/v1/customers/{customer}/credit_transactions", tag = "credits", security(("api_token" = [])),
    params(("customer" = String, Path, description = "Stripe customer id"), TransactionsQuery),
    responses((status = 200, body = wire::CreditTransactions), (status = 401, description = "Missing or wrong bearer token", body = ErrorResponse),
        (status = 422, description = "Invalid id or limit", body = ErrorResponse),
        (status = 503, description = "Stripe unavailable (`stripe_unavailable`) or its capacity kept for grants (`stripe_busy`, with `Retry-After`)", body = ErrorResponse)))]
async fn transactions(
    State(state): State<AppState>,
    Path(customer): Path<String>,
    Query(query): Query<TransactionsQuery>,
) -> Result<axum::Json<wire::CreditTransactions>, CreditsError> {
    check_id("customer", &customer, "cus_")?;
    let limit = query.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be between 1 and 100").into());
    }
    let request = stripe_credits::balance_transactions(
        &customer,
        limit,
        query.credit_grant.as_deref(),
        query.starting_after.as_deref(),
    );
    let page: Value = state
        .services
        .stripe
        .send(&request)
        .await
        .map_err(stripe_error)?;
    Ok(axum::Json(wire::CreditTransactions {
        object: "list".into(),
        data: page["data"].as_array().cloned().unwrap_or_default(),
        has_more: page["has_more"].as_bool().unwrap_or(false),
    }))
}

fn check_id(field: &str, value: &str, prefix: &str) -> Result<(), ApiError> {
    let ok = value.len() > prefix.len()
        && value.len() <= 255
        && value.starts_with(prefix)
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            format!("must be a Stripe id starting with '{prefix}'"),
        ))
    }
}

/// An API error, or `stripe_busy` with the `Retry-After` the rate budget gave.
pub enum CreditsError {
    Api(ApiError),
    Busy { retry_after_secs: u64 },
}

impl From<ApiError> for CreditsError {
    fn from(error: ApiError) -> Self {
        CreditsError::Api(error)
    }
}

impl IntoResponse for CreditsError {
    fn into_response(self) -> Response {
        match self {
            CreditsError::Api(error) => error.into_response(),
            CreditsError::Busy { retry_after_secs } => {
                let error = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "stripe_busy",
                    format!(
                        "Stripe capacity is reserved for credit grants right now; retry in {retry_after_secs} s"
                    ),
                );
                ([(header::RETRY_AFTER, retry_after_secs.to_string())], error).into_response()
            }
        }
    }
}

/// Never an empty balance presented as real: when Stripe cannot answer, neither do we.
fn stripe_error(error: StripeError) -> CreditsError {
    if let StripeError::Busy { retry_after } = error {
        // Whole seconds, rounded up: a client retrying early would only be turned away again.
        let retry_after_secs = retry_after.as_millis().div_ceil(1000).max(1) as u64;
        return CreditsError::Busy { retry_after_secs };
    }
    CreditsError::Api(match &error {
        StripeError::Api {
            status: 404,
            message,
            ..
        } => ApiError::new(StatusCode::NOT_FOUND, "stripe_not_found", message.clone()),
        StripeError::Api {
            status, message, ..
        } if *status < 500 && *status != 429 && *status != 409 => {
            ApiError::new(StatusCode::BAD_REQUEST, "stripe_rejected", message.clone())
        }
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stripe_unavailable",
            format!("Stripe could not be reached for the credit balance; try again: {error}"),
        ),
    })
}
