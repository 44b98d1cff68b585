//! `/v1/purchases`: register or start a purchase, read it, list them, cancel one.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::attempt;
use crate::db;
use crate::error::ErrorResponse;
use crate::error::{ApiError, ApiResult, OnConstraint};
use crate::funding;
use crate::http::wire;
use crate::purchase::lifecycle::{self, Happening};
use crate::purchase::{self, Purchase, PurchaseStatus};
use crate::state::AppState;
use crate::stripe::api::funding as stripe_funding;
use crate::stripe::types::Invoice;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show))
        .routes(routes!(cancel))
}

type Reply = (StatusCode, axum::Json<wire::Purchase>);

fn reply(status: StatusCode, purchase: &Purchase) -> Reply {
    (status, axum::Json(wire::Purchase::from(purchase)))
}

/// Register a purchase for an existing invoice, or let creditd create and finalize the invoice.
#[utoipa::path(post, path = "/v1/purchases", tag = "purchases", security(("api_token" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body, same purchase")),
    request_body = purchase::request::PurchaseRequest,
    responses(
        (status = 201, description = "Created (or replayed for the same Idempotency-Key)", body = wire::Purchase),
        (status = 202, description = "Accepted: Stripe was briefly unavailable, a worker finishes the invoice", body = wire::Purchase),
        (status = 400, description = "Malformed JSON or header", body = ErrorResponse),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorResponse),
        (status = 409, description = "Idempotency-Key reused with another body, or invoice already registered", body = ErrorResponse),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorResponse),
        (status = 502, description = "Stripe refused to create the invoice", body = ErrorResponse),
        (status = 503, description = "Database unavailable", body = ErrorResponse)))]
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Reply> {
    let idempotency_key = idempotency_key(&headers)?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_json(&e))?;
    let now = chrono::Utc::now().timestamp();
    let new = purchase::request::parse(&value, now)
        .map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    let hash = hex::encode(Sha256::digest(value.to_string()));
    let db = &state.services.db;
    if let Some(key) = idempotency_key.as_deref()
        && let Some(existing) = db::purchases::find_by_idempotency_key(db, key).await?
    {
        return replay(&state, existing, &hash).await;
    }
    let id = purchase::new_purchase_id();
    let inserted = db::purchases::insert(
        db,
        &id,
        &new,
        state.services.livemode,
        idempotency_key.as_deref(),
        &hash,
        state.services.policy.lease,
    )
    .await
    .on_constraint("purchases_invoice_id_key", || {
        invoice_taken(new.invoice_id.as_deref())
    })?;
    let Some(created) = inserted else {
        // Another request with the same key won the race.
        let key = idempotency_key.as_deref().unwrap_or_default();
        let existing = db::purchases::find_by_idempotency_key(db, key)
            .await?
            .ok_or_else(ApiError::unavailable)?;
        return replay(&state, existing, &hash).await;
    };
    tracing::info!(purchase_id = %created.id, invoice_id = created.invoice_id.as_deref(), status = %created.status, "purchase created");
    match created.status() {
        PurchaseStatus::Granting => state.services.wake.notify_one(),
        PurchaseStatus::CreatingInvoice => return fund_now(&state, &created).await,
        _ => {}
    }
    Ok(reply(StatusCode::CREATED, &created))
}

/// The same key with the same body returns the same purchase; with another body it is refused.
async fn replay(state: &AppState, existing: Purchase, hash: &str) -> ApiResult<Reply> {
    if existing.request_hash.as_deref() != Some(hash) {
        return Err(ApiError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        ));
    }
    if existing.status() == PurchaseStatus::CreatingInvoice {
        return fund_now(state, &existing).await;
    }
    Ok(reply(StatusCode::CREATED, &existing))
}

/// Creates the invoice while the client waits, so the answer carries the invoice and its URL.
/// If another process holds the purchase, or Stripe is briefly unavailable, the worker finishes.
async fn fund_now(state: &AppState, purchase: &Purchase) -> ApiResult<Reply> {
    let db = &state.services.db;
    let owner = crate::worker::owner_name(0);
    let Some(claimed) =
        db::work::claim_one(db, &purchase.id, &owner, state.services.policy.lease).await?
    else {
        return Ok(reply(StatusCode::ACCEPTED, purchase));
    };
    let funding = funding::advance(&state.services, &claimed, &owner);
    let funded = crate::lease::with_heartbeat(&state.services, &claimed.id, &owner, funding).await;
    let outcome = funded.map_err(|error| {
        tracing::error!(purchase_id = %purchase.id, error = format!("{error:#}"), "funding aborted");
        ApiError::unavailable()
    })?;
    let current = db::purchases::find(db, &purchase.id)
        .await?
        .ok_or_else(ApiError::unavailable)?;
    match (current.status(), outcome) {
        (PurchaseStatus::Failed, _) => Err(ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "stripe_rejected",
            message: format!(
                "Stripe refused to create the invoice for purchase {}: {}",
                current.id,
                current.last_error.clone().unwrap_or_default()
            ),
            field: None,
        }),
        (PurchaseStatus::CreatingInvoice, _) => Ok(reply(StatusCode::ACCEPTED, &current)),
        _ => Ok(reply(StatusCode::CREATED, &current)),
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.trim().is_empty() && key.len() <= 255 => Ok(Some(key.to_owned())),
        _ => Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_header",
            message: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
            field: Some("Idempotency-Key".into()),
        }),
    }
}

/// The invoice's unique key is the last line of defence against two purchases for one invoice.
fn invoice_taken(invoice_id: Option<&str>) -> ApiError {
    let mut error = ApiError::conflict(
        "invoice_already_registered",
        format!(
            "invoice_id {} already belongs to another purchase",
            invoice_id.unwrap_or_default()
        ),
    );
    error.field = Some("invoice_id".into());
    error
}

/// One purchase.
#[utoipa::path(get, path = "/v1/purchases/{id}", tag = "purchases", security(("api_token" = [])),
    params(("id" = String, Path, description = "Purchase id (pur_...)")),
    responses((status = 200, body = wire::Purchase), (status = 401, description = "Missing or wrong bearer token", body = ErrorResponse),
        (status = 404, description = "No such purchase", body = ErrorResponse)))]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply> {
    let purchase = db::purchases::find(&state.services.db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("purchase", &id))?;
    let shown = shown(&state.services.db, &purchase).await?;
    Ok((StatusCode::OK, axum::Json(shown)))
}

/// A purchase as `GET /v1/purchases/{id}` shows it: also the body of its outbound webhooks.
pub async fn shown(db: &sqlx::PgPool, purchase: &Purchase) -> sqlx::Result<wire::Purchase> {
    let reversals = db::grant_moves::views_for(db, &[&purchase.id]).await?;
    Ok(wire::Purchase::from(purchase).with_reversals(&reversals))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub customer: Option<String>,
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
}

impl ListQuery {
    pub fn validated(&self) -> ApiResult<(Option<PurchaseStatus>, i64)> {
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(
                PurchaseStatus::parse(s)
                    .ok_or_else(|| ApiError::invalid_field("status", "is not a purchase status"))?,
            ),
        };
        let limit = self.limit.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid_field(
                "limit",
                "must be between 1 and 100",
            ));
        }
        Ok((status, limit))
    }
}

/// Newest first, Stripe-style: `data`, `has_more`, and `starting_after` = the last id seen.
pub async fn list_purchases(state: &AppState, query: &ListQuery) -> ApiResult<wire::PurchaseList> {
    let (status, limit) = query.validated()?;
    let page = db::purchases::list(
        &state.services.db,
        query.customer.as_deref(),
        status,
        query.starting_after.as_deref(),
        limit + 1,
    )
    .await?
    .ok_or_else(|| ApiError::invalid_field("starting_after", "is not a known purchase id"))?;
    let has_more = page.len() as i64 > limit;
    let shown = &page[..page.len().min(limit as usize)];
    let ids: Vec<&crate::ids::PurchaseId> = shown.iter().map(|p| &p.id).collect();
    let reversals = db::grant_moves::views_for(&state.services.db, &ids).await?;
    let data = shown
        .iter()
        .map(|p| wire::Purchase::from(p).with_reversals(&reversals))
        .collect();
    Ok(wire::PurchaseList {
        object: "list".into(),
        data,
        has_more,
    })
}

/// Purchases, newest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/purchases", tag = "purchases", security(("api_token" = [])), params(ListQuery),
    responses((status = 200, body = wire::PurchaseList), (status = 401, description = "Missing or wrong bearer token", body = ErrorResponse),
        (status = 422, description = "A query parameter is invalid", body = ErrorResponse)))]
async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<axum::Json<wire::PurchaseList>> {
    Ok(axum::Json(list_purchases(&state, &query).await?))
}

/// Voids the open invoice of an unpaid purchase. Paid purchases cannot be canceled.
/// Void the open invoice of an unpaid purchase.
#[utoipa::path(post, path = "/v1/purchases/{id}/cancel", tag = "purchases", security(("api_token" = [])),
    params(("id" = String, Path, description = "Purchase id (pur_...)")),
    responses((status = 200, description = "Canceled", body = wire::Purchase), (status = 401, description = "Missing or wrong bearer token", body = ErrorResponse),
        (status = 404, description = "No such purchase", body = ErrorResponse),
        (status = 409, description = "Already paid, or the invoice is still being created", body = ErrorResponse),
        (status = 503, description = "Stripe unavailable", body = ErrorResponse)))]
async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply> {
    let db = &state.services.db;
    let purchase = db::purchases::find(db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("purchase", &id))?;
    let paid_before = purchase.paid_at.is_some();
    let decision = lifecycle::decide(purchase.status, paid_before, Happening::Voided);
    match purchase.status() {
        PurchaseStatus::Canceled => return Ok(reply(StatusCode::OK, &purchase)),
        PurchaseStatus::CreatingInvoice => {
            return Err(ApiError::conflict(
                "purchase_busy",
                "the invoice is still being created; retry in a moment",
            ));
        }
        _ if decision.next == Some(PurchaseStatus::Canceled) => {}
        status => {
            return Err(ApiError::conflict(
                "purchase_paid",
                format!(
                    "purchase is {}: its invoice was paid, so it cannot be canceled",
                    status.as_str()
                ),
            ));
        }
    }
    if let Some(invoice_id) = purchase.invoice_id.as_deref() {
        void_invoice(&state, &purchase, invoice_id).await?;
    }
    db::lifecycle::apply_to_purchase(db, &id, Happening::Voided).await?;
    let current = db::purchases::find(db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("purchase", &id))?;
    // The invoice.voided webhook may have canceled it first; anything else means it was paid.
    if current.status() == PurchaseStatus::Canceled {
        return Ok(reply(StatusCode::OK, &current));
    }
    Err(ApiError::conflict(
        "purchase_paid",
        format!("purchase became {} while canceling", current.status),
    ))
}

async fn void_invoice(state: &AppState, purchase: &Purchase, invoice_id: &str) -> ApiResult<()> {
    let services = &state.services;
    let request = stripe_funding::void_invoice(purchase, invoice_id);
    let outcome: Result<Invoice, _> =
        attempt::send_and_record(services, &purchase.id, &request).await?;
    match outcome {
        Ok(_) => Ok(()),
        Err(error) if error.is_transient() => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stripe_unavailable",
            format!("could not void the invoice: {error}"),
        )),
        Err(error) => {
            // Most often the invoice was paid meanwhile; Stripe's message says so.
            let request = stripe_funding::get_invoice(invoice_id);
            let current: Option<Invoice> =
                attempt::send_and_record(services, &purchase.id, &request)
                    .await?
                    .ok();
            if current.as_ref().and_then(|i| i.status.as_deref()) == Some("void") {
                return Ok(());
            }
            Err(ApiError::conflict(
                "invoice_not_voidable",
                funding::stripe_message(&error),
            ))
        }
    }
}
