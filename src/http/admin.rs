//! `/admin/*`: re-sync, replay, operator views and retries, behind the admin bearer token.
//! Every action that changes something is written to the audit trail.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admin::replay::ReplayError;
use crate::admin::resync::ResyncParams;
use crate::admin::retry::RetryError;
use crate::admin::{ACTOR_HTTP, audit, replay, resync, retry};
use crate::db;
use crate::error::ErrorResponse;
use crate::error::{ApiError, ApiResult};
use crate::http::purchases::{ListQuery, list_purchases};
use crate::http::wire;
use crate::ids::{EventId, InvalidId, PurchaseId, ResyncId};
use crate::state::AppState;

/// Rejects a malformed path id before anything (a lookup, an audit row, a Stripe call) happens.
fn check_id<T>(field: &str, parsed: Result<T, InvalidId>) -> ApiResult<T> {
    parsed.map_err(|error| ApiError::invalid_field(field, error))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_resync))
        .routes(routes!(show_resync))
        .routes(routes!(list_events))
        .routes(routes!(replay_event))
        .routes(routes!(list_admin_purchases))
        .routes(routes!(explain_purchase))
        .routes(routes!(retry_purchase))
}

fn json_body(body: &Bytes) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_json(&e))
}

/// Validates, stores the re-sync leased to this process, and runs it in the background. Should
/// this process stop, another one resumes it from its cursor once the lease expires.
#[utoipa::path(post, path = "/admin/resync", tag = "admin", security(("admin_token" = [])),
    request_body(content = Object, description = "{since, until?, types?, only_undelivered?, dry_run?, source?: events|invoices}"),
    responses((status = 202, description = "Started", body = wire::ResyncStarted), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorResponse)))]
async fn start_resync(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<wire::ResyncStarted>)> {
    let value = json_body(&body)?;
    let params = ResyncParams::parse(&value, chrono::Utc::now().timestamp())
        .map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    let services = state.services.clone();
    let owner = format!("resync-{}", crate::worker::owner_name(0));
    let created = resync::create(&services, &params, ACTOR_HTTP, &owner).await?;
    let answer = wire::ResyncStarted::from(&created);
    audit::record(&services, "resync.start", ACTOR_HTTP, &value, &answer).await?;
    tokio::spawn(async move {
        let id = created.id.clone();
        if let Err(error) = resync::run(&services, created, &owner, &mut |_| {}).await {
            tracing::error!(resync_id = %id, error = format!("{error:#}"), "re-sync aborted; it resumes when its lease expires");
        }
    });
    Ok((StatusCode::ACCEPTED, axum::Json(answer)))
}

#[derive(Debug, serde::Deserialize)]
struct OutcomeQuery {
    outcomes_limit: Option<i64>,
}

#[utoipa::path(get, path = "/admin/resync/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Re-sync id (rsy_...)"), ("outcomes_limit" = Option<i64>, Query, description = "Most per-event outcomes to return")),
    responses((status = 200, description = "Status, counts, cursor and per-event outcomes", body = wire::Resync), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such re-sync", body = ErrorResponse),
        (status = 422, description = "Not a re-sync id (rsy_...)", body = ErrorResponse)))]
async fn show_resync(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<OutcomeQuery>,
) -> ApiResult<axum::Json<wire::Resync>> {
    let id = check_id("id", ResyncId::parse(&id))?;
    let db = &state.services.db;
    let resync = db::resyncs::find(db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("re-sync", &id))?;
    let limit = query.outcomes_limit.unwrap_or(10_000).clamp(0, 100_000);
    let outcomes = db::resync_events::outcomes(db, &id, limit).await?;
    Ok(axum::Json(wire::Resync::new(&resync, outcomes)))
}

#[derive(Debug, serde::Deserialize)]
struct EventsQuery {
    status: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    limit: Option<i64>,
    starting_after: Option<String>,
}

/// Recorded events, newest first, with the outcome recorded for each (`status` filters on it).
#[utoipa::path(get, path = "/admin/events", tag = "admin", security(("admin_token" = [])),
    params(("status" = Option<String>, Query, description = "Stored outcome"), ("type" = Option<String>, Query), ("limit" = Option<i64>, Query), ("starting_after" = Option<String>, Query)),
    responses((status = 200, description = "Recorded events with their outcome, newest first", body = wire::EventList), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 422, description = "A query parameter is invalid", body = ErrorResponse)))]
async fn list_events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
) -> ApiResult<axum::Json<wire::EventList>> {
    let limit = query.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 100",
        ));
    }
    let page = db::event_listing::page(
        &state.services.db,
        query.status.as_deref(),
        query.event_type.as_deref(),
        query.starting_after.as_deref(),
        limit + 1,
    )
    .await?
    .ok_or_else(|| ApiError::invalid_field("starting_after", "is not a recorded event id"))?;
    let has_more = page.len() as i64 > limit;
    let data = page
        .into_iter()
        .take(limit as usize)
        .map(wire::RecordedEvent::from)
        .collect();
    Ok(axum::Json(wire::EventList {
        object: "list".into(),
        data,
        has_more,
    }))
}

#[utoipa::path(post, path = "/admin/events/{event_id}/replay", tag = "admin", security(("admin_token" = [])),
    params(("event_id" = String, Path, description = "Stripe event id (evt_...)")),
    responses((status = 200, description = "What the replay did", body = wire::Replayed), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "Neither creditd nor Stripe knows the event", body = ErrorResponse),
        (status = 422, description = "Not an event id (evt_...)", body = ErrorResponse),
        (status = 503, description = "Stripe or the database unavailable", body = ErrorResponse)))]
async fn replay_event(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> ApiResult<axum::Json<wire::Replayed>> {
    check_id("event_id", EventId::parse(&event_id))?;
    let services = &state.services;
    let arguments = json!({"event_id": event_id});
    let result = replay::replay(services, &event_id).await;
    let recorded = match &result {
        Ok(replayed) => serde_json::to_value(replayed).expect("plain data serializes"),
        Err(error) => json!({"error": error.to_string()}),
    };
    if !matches!(result, Err(ReplayError::Database(_))) {
        audit::record(services, "event.replay", ACTOR_HTTP, &arguments, &recorded).await?;
    }
    match result {
        Ok(replayed) => Ok(axum::Json(wire::Replayed::from(&replayed))),
        Err(ReplayError::NotFound(id)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Stripe does not know event '{id}' (events are kept for 30 days)"),
        )),
        Err(ReplayError::Database(error)) => Err(error.into()),
        Err(error) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "stripe_unavailable",
            error.to_string(),
        )),
    }
}

#[utoipa::path(get, path = "/admin/purchases", tag = "admin", security(("admin_token" = [])), params(ListQuery),
    responses((status = 200, body = wire::PurchaseList), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 422, description = "A query parameter is invalid", body = ErrorResponse)))]
async fn list_admin_purchases(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<axum::Json<wire::PurchaseList>> {
    Ok(axum::Json(list_purchases(&state, &query).await?))
}

/// One purchase with everything that explains it: status history, the events that touched it,
/// every Stripe call made for it, and its grant.
#[utoipa::path(get, path = "/admin/purchases/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Purchase id (pur_...)")),
    responses((status = 200, description = "The purchase, its status history, events, Stripe calls and grant", body = wire::PurchaseExplained), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such purchase", body = ErrorResponse),
        (status = 422, description = "Not a purchase id (pur_...)", body = ErrorResponse)))]
async fn explain_purchase(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<wire::PurchaseExplained>> {
    let id = check_id("id", PurchaseId::parse(&id))?;
    let db = &state.services.db;
    let purchase = db::purchases::find(db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("purchase", &id))?;
    let history = db::transitions::of_purchase(db, &id).await?;
    let events = db::event_listing::of_purchase(db, &id).await?;
    let calls = db::calls::of_purchase(db, &id).await?;
    let reversals = db::grant_moves::views_for(db, &[&purchase.id]).await?;
    let grant_moves = db::grant_moves::moves_of(db, &purchase.id).await?;
    Ok(axum::Json(wire::PurchaseExplained {
        purchase: wire::Purchase::from(&purchase).with_reversals(&reversals),
        grant_moves: grant_moves.into_iter().map(wire::GrantMove::from).collect(),
        grant: wire::GrantState {
            id: purchase.credit_grant_id.clone(),
            requested: purchase.grant_requested,
            idempotency_key: purchase.grant_idempotency_key(),
        },
        paid_event_id: purchase.paid_event_id.as_ref().map(ToString::to_string),
        history: history.into_iter().map(wire::StatusChange::from).collect(),
        events: events.into_iter().map(wire::PurchaseEvent::from).collect(),
        stripe_calls: calls.into_iter().map(wire::StripeCall::from).collect(),
    }))
}

#[utoipa::path(post, path = "/admin/purchases/{id}/retry", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Purchase id (pur_...)")),
    request_body(content = Object, description = "Optional {\"force\": true} to retry a rejected purchase"),
    responses((status = 200, description = "Sent back to the workers", body = wire::Purchase), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such purchase", body = ErrorResponse),
        (status = 409, description = "Not failed (or rejected without force)", body = ErrorResponse),
        (status = 422, description = "Not a purchase id (pur_...), or `force` not a boolean", body = ErrorResponse)))]
async fn retry_purchase(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<wire::Purchase>> {
    check_id("id", PurchaseId::parse(&id))?;
    let value = json_body(&body)?;
    let force = match value.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(force)) => *force,
        Some(_) => return Err(ApiError::invalid_field("force", "must be true or false")),
    };
    let services = &state.services;
    let action = if force {
        "purchase.force_retry"
    } else {
        "purchase.retry"
    };
    let arguments = json!({"purchase_id": id, "force": force});
    let result = retry::retry(services, &id, force).await;
    let recorded = match &result {
        Ok(purchase) => json!({"status": purchase.status}),
        Err(error) => json!({"error": error.to_string()}),
    };
    if !matches!(result, Err(RetryError::Database(_))) {
        audit::record(services, action, ACTOR_HTTP, &arguments, &recorded).await?;
    }
    match result {
        Ok(purchase) => Ok(axum::Json(wire::Purchase::from(&purchase))),
        Err(RetryError::NotFound(id)) => Err(ApiError::not_found("purchase", &id)),
        Err(RetryError::Database(error)) => Err(error.into()),
        Err(error @ RetryError::NeedsForce) => {
            Err(ApiError::conflict("purchase_rejected", error.to_string()))
        }
        Err(error) => Err(ApiError::conflict(
            "purchase_not_retryable",
            error.to_string(),
        )),
    }
}
