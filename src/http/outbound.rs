//! `/admin/webhook_endpoints`: the merchant's outbound webhook endpoints. Every change is audited;
//! a secret appears only in the answer that created or rotated it, never in the audit trail.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admin::{ACTOR_HTTP, audit};
use crate::db;
use crate::db::webhook_endpoints::Endpoint;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::http::wire;
use crate::ids::EndpointId;
use crate::outbound::{request, signing};
use crate::secret::Secret;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(recover))
}

type Answer = ApiResult<axum::Json<wire::WebhookEndpoint>>;

pub(super) fn json_body(body: &Bytes) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_json(&e))
}

fn field_error(error: request::FieldError) -> ApiError {
    ApiError::invalid_field(error.field, error.message)
}

/// Parses the path id first, so a malformed one changes nothing and is not audited.
fn endpoint_id(id: &str) -> ApiResult<EndpointId> {
    EndpointId::parse(id).map_err(|e| ApiError::invalid_field("id", e))
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found("webhook endpoint", id)
}

/// Audits an action on an endpoint with the endpoint (never a secret) as its result.
async fn audited(state: &AppState, action: &str, arguments: Value, endpoint: &Endpoint) -> Answer {
    let answer = wire::WebhookEndpoint::from(endpoint);
    audit::record(&state.services, action, ACTOR_HTTP, &arguments, &answer).await?;
    Ok(axum::Json(answer))
}

/// The one place a secret is exposed to a client: the answer that made it.
fn with_secret(
    endpoint: wire::WebhookEndpoint,
    secret: &Secret,
) -> axum::Json<wire::WebhookEndpointWithSecret> {
    axum::Json(wire::WebhookEndpointWithSecret {
        endpoint,
        secret: secret.expose().to_owned(),
    })
}

/// Registers an endpoint. The answer is the only place its signing secret is ever shown.
#[utoipa::path(post, path = "/admin/webhook_endpoints", tag = "admin", security(("admin_token" = [])),
    request_body(content = Object, description = "{url, events: [\"purchase.granted\", ...] or [\"*\"], description?}"),
    responses((status = 201, description = "Created, with its `secret`", body = wire::WebhookEndpointWithSecret),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 422, description = "A field is invalid (`field` names it): not https, a private address, an unknown event type", body = ErrorResponse)))]
async fn create(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<wire::WebhookEndpointWithSecret>)> {
    let value = json_body(&body)?;
    let new = request::new_endpoint(&value, state.outbound.settings.allow)
        .await
        .map_err(field_error)?;
    let secret = signing::new_secret();
    let id = EndpointId::generate();
    let endpoint = db::webhook_endpoints::insert(
        &state.services.db,
        &id,
        new.url.as_str(),
        &new.events,
        new.description.as_deref(),
        &secret,
    )
    .await?;
    let arguments =
        json!({"url": new.url.as_str(), "events": new.events, "description": new.description});
    let axum::Json(endpoint) =
        audited(&state, "webhook_endpoint.create", arguments, &endpoint).await?;
    Ok((StatusCode::CREATED, with_secret(endpoint, &secret)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    limit: Option<i64>,
    starting_after: Option<String>,
}

/// Endpoints, newest first, without their secrets.
#[utoipa::path(get, path = "/admin/webhook_endpoints", tag = "admin", security(("admin_token" = [])), params(ListQuery),
    responses((status = 200, body = wire::WebhookEndpointList), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 422, description = "A query parameter is invalid", body = ErrorResponse)))]
async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<axum::Json<wire::WebhookEndpointList>> {
    let limit = query.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 100",
        ));
    }
    let page = db::webhook_endpoints::list(
        &state.services.db,
        query.starting_after.as_deref(),
        limit + 1,
    )
    .await?
    .ok_or_else(|| ApiError::invalid_field("starting_after", "is not a webhook endpoint id"))?;
    let has_more = page.len() as i64 > limit;
    Ok(axum::Json(wire::WebhookEndpointList {
        object: "list".into(),
        data: page
            .iter()
            .take(limit as usize)
            .map(wire::WebhookEndpoint::from)
            .collect(),
        has_more,
    }))
}

#[utoipa::path(get, path = "/admin/webhook_endpoints/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Endpoint id (we_...)")),
    responses((status = 200, body = wire::WebhookEndpoint), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such endpoint", body = ErrorResponse)))]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    endpoint_id(&id)?;
    let endpoint = db::webhook_endpoints::find(&state.services.db, &id)
        .await?
        .ok_or_else(|| missing(&id))?;
    Ok(axum::Json(wire::WebhookEndpoint::from(&endpoint)))
}

/// Deletes an endpoint: its secrets are wiped and what was pending for it fails. History stays.
#[utoipa::path(delete, path = "/admin/webhook_endpoints/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Endpoint id (we_...)")),
    responses((status = 200, description = "Deleted", body = wire::WebhookEndpoint), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such endpoint", body = ErrorResponse)))]
async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    endpoint_id(&id)?;
    let mut tx = state.services.db.begin().await?;
    let endpoint = db::webhook_endpoints::delete(&mut tx, &id)
        .await?
        .ok_or_else(|| missing(&id))?;
    tx.commit().await?;
    audited(
        &state,
        "webhook_endpoint.delete",
        json!({"id": id}),
        &endpoint,
    )
    .await
}

/// A new secret, shown in this answer only. The old one is still signed with (both signatures
/// are sent) for OUTBOUND_SECRET_GRACE_SECS, so receivers can switch without losing events.
#[utoipa::path(post, path = "/admin/webhook_endpoints/{id}/rotate_secret", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Endpoint id (we_...)")),
    responses((status = 200, description = "Rotated, with the new `secret`", body = wire::WebhookEndpointWithSecret), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such endpoint", body = ErrorResponse)))]
async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<wire::WebhookEndpointWithSecret>> {
    endpoint_id(&id)?;
    let secret = signing::new_secret();
    let grace = state.outbound.settings.secret_grace;
    let endpoint = db::webhook_endpoints::rotate_secret(&state.services.db, &id, &secret, grace)
        .await?
        .ok_or_else(|| missing(&id))?;
    let arguments = json!({"id": id, "grace_secs": grace.as_secs()});
    let audited = audited(
        &state,
        "webhook_endpoint.rotate_secret",
        arguments,
        &endpoint,
    );
    let axum::Json(endpoint) = audited.await?;
    Ok(with_secret(endpoint, &secret))
}

#[utoipa::path(post, path = "/admin/webhook_endpoints/{id}/disable", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Endpoint id (we_...)")),
    responses((status = 200, description = "Disabled: nothing is sent; pending messages wait", body = wire::WebhookEndpoint), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such endpoint", body = ErrorResponse)))]
async fn disable(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    endpoint_id(&id)?;
    let endpoint = db::webhook_endpoints::set_enabled(&state.services.db, &id, false)
        .await?
        .ok_or_else(|| missing(&id))?;
    audited(
        &state,
        "webhook_endpoint.disable",
        json!({"id": id}),
        &endpoint,
    )
    .await
}

#[utoipa::path(post, path = "/admin/webhook_endpoints/{id}/enable", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Endpoint id (we_...)")),
    responses((status = 200, description = "Enabled; failed messages are sent again only by `recover`", body = wire::WebhookEndpoint), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such endpoint", body = ErrorResponse)))]
async fn enable(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    endpoint_id(&id)?;
    let endpoint = db::webhook_endpoints::set_enabled(&state.services.db, &id, true)
        .await?
        .ok_or_else(|| missing(&id))?;
    state.outbound.wake.notify_waiters();
    audited(
        &state,
        "webhook_endpoint.enable",
        json!({"id": id}),
        &endpoint,
    )
    .await
}

/// Sends again every message to this endpoint that failed, of those created since `since`.
#[utoipa::path(post, path = "/admin/webhook_endpoints/{id}/recover", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Endpoint id (we_...)")),
    request_body(content = Object, description = "{since: unix seconds or RFC 3339}"),
    responses((status = 200, description = "How many deliveries were queued again", body = wire::Requeued), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such endpoint", body = ErrorResponse),
        (status = 422, description = "`since` is missing or invalid", body = ErrorResponse)))]
async fn recover(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<wire::Requeued>> {
    endpoint_id(&id)?;
    let value = json_body(&body)?;
    let since =
        request::recover_since(&value, chrono::Utc::now().timestamp()).map_err(field_error)?;
    let db = &state.services.db;
    db::webhook_endpoints::find(db, &id)
        .await?
        .ok_or_else(|| missing(&id))?;
    let requeued = db::webhook_deliveries::recover(db, &id, since).await?;
    state.outbound.wake.notify_waiters();
    let answer = wire::Requeued { requeued };
    let arguments = json!({"id": id, "since": since.timestamp()});
    audit::record(
        &state.services,
        "webhook_endpoint.recover",
        ACTOR_HTTP,
        &arguments,
        &answer,
    )
    .await?;
    Ok(axum::Json(answer))
}
