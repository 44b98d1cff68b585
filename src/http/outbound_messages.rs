//! `/admin/webhook_messages`: what was sent to the merchant, every attempt of it, and a retry.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::outbound::json_body;
use crate::admin::{ACTOR_HTTP, audit};
use crate::db;
use crate::db::webhook_messages::Filter;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::http::wire;
use crate::ids::{EndpointId, MessageId, PurchaseId};
use crate::outbound::event::DeliveryStatus;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(retry))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Messages with a delivery in this status: pending, delivered or failed.
    status: Option<String>,
    /// Messages with a delivery to this endpoint (we_...); only that delivery is shown.
    endpoint: Option<String>,
    /// Messages about this purchase (pur_...).
    purchase: Option<String>,
    limit: Option<i64>,
    starting_after: Option<String>,
}

/// Messages, newest first, each with its deliveries and their attempts.
#[utoipa::path(get, path = "/admin/webhook_messages", tag = "admin", security(("admin_token" = [])), params(ListQuery),
    responses((status = 200, body = wire::WebhookMessageList), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 422, description = "A query parameter is invalid", body = ErrorResponse)))]
async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<axum::Json<wire::WebhookMessageList>> {
    let status = query
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::invalid_field("status", "must be pending, delivered or failed")
            })
        })
        .transpose()?;
    if let Some(endpoint) = &query.endpoint {
        EndpointId::parse(endpoint).map_err(|e| ApiError::invalid_field("endpoint", e))?;
    }
    if let Some(purchase) = &query.purchase {
        PurchaseId::parse(purchase).map_err(|e| ApiError::invalid_field("purchase", e))?;
    }
    let limit = query.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 100",
        ));
    }
    let filter = Filter {
        status,
        endpoint: query.endpoint.as_deref(),
        purchase: query.purchase.as_deref(),
    };
    let db = &state.services.db;
    let page = db::webhook_messages::list(db, &filter, query.starting_after.as_deref(), limit + 1)
        .await?
        .ok_or_else(|| ApiError::invalid_field("starting_after", "is not a webhook message id"))?;
    let has_more = page.len() as i64 > limit;
    let page: Vec<_> = page.into_iter().take(limit as usize).collect();
    let ids: Vec<String> = page.iter().map(|m| m.id.to_string()).collect();
    let deliveries = db::webhook_messages::deliveries(db, &ids, filter.endpoint).await?;
    let attempts = db::webhook_messages::attempts(db, &ids).await?;
    Ok(axum::Json(wire::WebhookMessageList {
        object: "list".into(),
        data: page
            .iter()
            .map(|m| wire::WebhookMessage::assemble(m, &deliveries, &attempts))
            .collect(),
        has_more,
    }))
}

/// Sends a message's failed deliveries again, with a fresh retry schedule and the same id and
/// body. Delivered ones are not sent again.
#[utoipa::path(post, path = "/admin/webhook_messages/{id}/retry", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Message id (msg_...)")),
    request_body(content = Object, description = "Optional {\"endpoint\": \"we_...\"} to retry only that delivery"),
    responses((status = 200, description = "How many deliveries were queued again", body = wire::Requeued), (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such message", body = ErrorResponse),
        (status = 422, description = "Not a message id, or `endpoint` invalid", body = ErrorResponse)))]
async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<wire::Requeued>> {
    MessageId::parse(&id).map_err(|e| ApiError::invalid_field("id", e))?;
    let value = json_body(&body)?;
    let endpoint = match value.get("endpoint") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(e)) => {
            Some(EndpointId::parse(e).map_err(|e| ApiError::invalid_field("endpoint", e))?)
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "endpoint",
                "must be a webhook endpoint id",
            ));
        }
    };
    let db = &state.services.db;
    db::webhook_messages::find(db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook message", &id))?;
    let requeued = db::webhook_deliveries::retry_message(db, &id, endpoint.as_deref()).await?;
    state.outbound.wake.notify_waiters();
    let answer = wire::Requeued { requeued };
    let arguments = json!({"id": id, "endpoint": endpoint});
    audit::record(
        &state.services,
        "webhook_message.retry",
        ACTOR_HTTP,
        &arguments,
        &answer,
    )
    .await?;
    Ok(axum::Json(answer))
}
