//! `/_sandbox/` routes: act as the customer, the bank or Stripe's infrastructure would (pay, void,
//! mark uncollectible, refund (and fail it), dispute, use credits, save or remove a card,
//! complete or expire a Checkout Session, deliver again, inject faults). JSON in, JSON out; errors use
//! Stripe's error body. They need no API key: the sandbox listens on loopback by default.

use super::error::ApiError;
use super::{CardBehaviour, FakeStripe, Fault, FaultKind};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::time::Duration;

type Answer = Result<axum::Json<Value>, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (code, axum::Json(self.body())).into_response()
    }
}

pub fn router() -> Router<FakeStripe> {
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(json!({ "ok": true })) }),
        )
        .route("/customers", post(create_customer))
        .route("/customers/{id}/balance", post(set_balance))
        .route("/customers/{id}/discount", post(set_discount))
        .route("/customers/{id}/use_credits", post(use_credits))
        .route(
            "/customers/{id}/card",
            post(attach_card).delete(remove_card),
        )
        .route("/checkout/{id}", get(show_checkout))
        .route("/checkout/{id}/complete", post(complete_checkout))
        .route("/checkout/{id}/expire", post(expire_checkout))
        .route("/invoices/{id}/pay", post(pay))
        .route("/invoices/{id}/void", post(void))
        .route(
            "/invoices/{id}/mark_uncollectible",
            post(mark_uncollectible),
        )
        .route("/invoices/{id}/refund", post(refund))
        .route("/invoices/{id}/dispute", post(dispute))
        .route("/disputes/{id}/close", post(close_dispute))
        .route("/refunds/{id}/fail", post(fail_refund))
        .route("/events/{id}/deliver", post(deliver_again))
        .route("/faults", post(add_fault).delete(clear_faults))
        .route("/clock/advance", post(advance_clock))
        .route("/grant_list_lag", post(grant_list_lag))
}

/// An empty body reads as `{}` so that `curl -X POST` with no data works.
fn params(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("Invalid JSON body: {e}")))
}

fn int(p: &Value, name: &str) -> Result<i64, ApiError> {
    p[name].as_i64().ok_or_else(|| ApiError::missing(name))
}

fn known_customer(fake: &FakeStripe, id: &str) -> Result<(), ApiError> {
    match fake.has_customer(id) {
        true => Ok(()),
        false => Err(ApiError::not_found("customer", id)),
    }
}

async fn create_customer(State(fake): State<FakeStripe>) -> Answer {
    Ok(axum::Json(json!({ "id": fake.create_customer() })))
}

async fn set_balance(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let amount = int(&params(&body)?, "amount")?;
    known_customer(&fake, &id)?;
    fake.set_customer_balance(&id, amount);
    Ok(axum::Json(json!({ "customer": id, "balance": amount })))
}

async fn set_discount(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let percent = params(&body)?["percent_off"].as_f64();
    known_customer(&fake, &id)?;
    let discount = match percent {
        Some(p) if (0.0..=100.0).contains(&p) => Some(fake.set_customer_discount(&id, p)),
        Some(_) => {
            return Err(ApiError::invalid("percent_off must be 0..=100").param("percent_off"));
        }
        None => {
            fake.remove_customer_discount(&id);
            None
        }
    };
    Ok(axum::Json(json!({ "customer": id, "discount": discount })))
}

async fn use_credits(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let p = params(&body)?;
    let currency = p["currency"].as_str().unwrap_or("usd");
    fake.use_credits(&id, int(&p, "amount")?, currency)
        .map(axum::Json)
}

/// `{"behaviour": "succeeds" | "declines" | "requires_authentication"}` (default `succeeds`):
/// saves a card as the customer's default payment method.
async fn attach_card(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let p = params(&body)?;
    let name = p["behaviour"].as_str().unwrap_or("succeeds");
    let behaviour = CardBehaviour::by_name(name).ok_or_else(|| {
        ApiError::invalid("behaviour must be succeeds, declines or requires_authentication")
            .param("behaviour")
    })?;
    known_customer(&fake, &id)?;
    let pm = fake.attach_card(&id, behaviour);
    Ok(axum::Json(
        json!({ "customer": id, "default_payment_method": pm, "behaviour": name }),
    ))
}

async fn remove_card(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Answer {
    known_customer(&fake, &id)?;
    fake.remove_default_card(&id);
    Ok(axum::Json(
        json!({ "customer": id, "default_payment_method": null }),
    ))
}

/// The session's hosted page, as JSON: what the customer would be asked to pay.
async fn show_checkout(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Answer {
    fake.checkout_session(&id)
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("checkout.session", &id))
}

async fn complete_checkout(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Answer {
    fake.complete_checkout(&id).map(axum::Json)
}

async fn expire_checkout(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Answer {
    fake.expire_checkout(&id).map(axum::Json)
}

async fn pay(State(fake): State<FakeStripe>, Path(id): Path<String>, body: Bytes) -> Answer {
    let out_of_band = params(&body)?["out_of_band"].as_bool().unwrap_or(false);
    fake.try_pay_invoice(&id, out_of_band).map(axum::Json)
}

async fn void(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Answer {
    fake.try_void_invoice(&id).map(axum::Json)
}

async fn mark_uncollectible(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Answer {
    fake.try_mark_uncollectible(&id).map(axum::Json)
}

/// `{"amount": 2000}` refunds part; no amount refunds what is left.
async fn refund(State(fake): State<FakeStripe>, Path(id): Path<String>, body: Bytes) -> Answer {
    let amount = params(&body)?["amount"].as_i64();
    fake.refund_invoice(&id, amount).map(axum::Json)
}

/// `{"inquiry": true}` opens an inquiry (no money moved) instead of a dispute.
async fn dispute(State(fake): State<FakeStripe>, Path(id): Path<String>, body: Bytes) -> Answer {
    let inquiry = params(&body)?["inquiry"].as_bool().unwrap_or(false);
    fake.dispute_invoice(&id, inquiry).map(axum::Json)
}

/// `{"outcome": "won"}` or `{"outcome": "lost"}`.
async fn close_dispute(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let won = match params(&body)?["outcome"].as_str() {
        Some("won") => true,
        Some("lost") => false,
        _ => return Err(ApiError::invalid("outcome must be won or lost").param("outcome")),
    };
    fake.close_dispute(&id, won).map(axum::Json)
}

/// The bank returns the refund: it fails after the fact (`refund.failed`).
async fn fail_refund(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Answer {
    fake.fail_refund(&id).map(axum::Json)
}

/// Delivers the event to the webhook endpoint again, now, and reports the endpoint's answer.
async fn deliver_again(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Answer {
    let event = fake
        .event(&id)
        .ok_or_else(|| ApiError::not_found("event", &id))?;
    if !fake.has_webhook_endpoint() {
        return Err(ApiError::invalid(
            "The sandbox has no webhook endpoint (--webhook-url).",
        ));
    }
    let (status, body) = fake.deliver_event(&event).await;
    Ok(axum::Json(
        json!({ "event": id, "status": status, "body": body }),
    ))
}

/// `{"kind": "500", "method": "POST", "path": "/v1/billing/credit_grants", "times": 1,
/// "delay_ms": 0}`; `times: 0` keeps the fault until cleared.
async fn add_fault(State(fake): State<FakeStripe>, body: Bytes) -> Answer {
    let p = params(&body)?;
    let name = p["kind"]
        .as_str()
        .ok_or_else(|| ApiError::missing("kind"))?;
    let delay = Duration::from_millis(p["delay_ms"].as_u64().unwrap_or(0));
    let kind = FaultKind::by_name(name, delay)
        .ok_or_else(|| ApiError::invalid(format!("Unknown fault kind: {name}")).param("kind"))?;
    let method = p["method"].as_str().unwrap_or("*");
    let path = p["path"].as_str().unwrap_or("/v1/");
    let fault = match p["times"].as_u64().unwrap_or(1) {
        0 => Fault::new(method, path, kind).forever(),
        n => Fault::new(method, path, kind).times(n.min(u32::MAX as u64) as u32),
    };
    fake.inject(fault);
    Ok(axum::Json(
        json!({ "kind": name, "method": method, "path": path, "times": p["times"] }),
    ))
}

async fn clear_faults(State(fake): State<FakeStripe>) -> Answer {
    fake.clear_faults();
    Ok(axum::Json(json!({ "faults": [] })))
}

async fn advance_clock(State(fake): State<FakeStripe>, body: Bytes) -> Answer {
    let secs = int(&params(&body)?, "seconds")?;
    let secs = u64::try_from(secs)
        .map_err(|_| ApiError::invalid("seconds must not be negative").param("seconds"))?;
    fake.advance_clock(Duration::from_secs(secs));
    Ok(axum::Json(json!({ "now": fake.now() })))
}

async fn grant_list_lag(State(fake): State<FakeStripe>, body: Bytes) -> Answer {
    let looks = int(&params(&body)?, "looks")?;
    let looks = u32::try_from(looks)
        .map_err(|_| ApiError::invalid("looks must be 0 or more").param("looks"))?;
    fake.hide_new_grants_from_list(looks);
    Ok(axum::Json(json!({ "looks": looks })))
}
