//! Outbound messages for the operator's view: a page of messages with their deliveries and every
//! attempt of each.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::ids::{EndpointId, MessageId, PurchaseId};
use crate::outbound::event::{DeliveryStatus, EventType};

#[derive(Debug, Clone)]
pub struct Message {
    pub id: MessageId,
    pub event_type: EventType,
    pub purchase_id: PurchaseId,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub message_id: MessageId,
    pub endpoint_id: EndpointId,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub message_id: MessageId,
    pub endpoint_id: EndpointId,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i32,
    pub response: Option<String>,
    pub at: DateTime<Utc>,
}

/// Which messages to list.
pub struct Filter<'a> {
    pub status: Option<DeliveryStatus>,
    pub endpoint: Option<&'a str>,
    pub purchase: Option<&'a str>,
}

/// A page of messages, newest first, that have a delivery matching the filter. None when
/// `starting_after` names no message.
pub async fn list(
    db: impl PgExecutor<'_> + Copy,
    filter: &Filter<'_>,
    starting_after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Option<Vec<Message>>> {
    let cursor: Option<(DateTime<Utc>,)> = match starting_after {
        None => None,
        Some(id) => {
            let found =
                sqlx::query_scalar!("SELECT created_at FROM webhook_messages WHERE id = $1", id)
                    .fetch_optional(db)
                    .await?;
            match found {
                None => return Ok(None),
                Some(created_at) => Some((created_at,)),
            }
        }
    };
    let rows = sqlx::query_as!(
        Message,
        r#"SELECT m.id AS "id: MessageId", m.event_type AS "event_type: EventType",
                m.purchase_id AS "purchase_id: PurchaseId", m.created_at
         FROM webhook_messages m
         WHERE ($1::text IS NULL AND $2::text IS NULL
                OR EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.message_id = m.id
                           AND ($1::text IS NULL OR d.status = $1)
                           AND ($2::text IS NULL OR d.endpoint_id = $2)))
           AND ($3::text IS NULL OR m.purchase_id = $3)
           AND ($4::timestamptz IS NULL OR (m.created_at, m.id) < ($4, $5))
         ORDER BY m.created_at DESC, m.id DESC LIMIT $6"#,
        filter.status.map(DeliveryStatus::as_str),
        filter.endpoint,
        filter.purchase,
        cursor.map(|c| c.0),
        starting_after,
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(Some(rows))
}

pub async fn find(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<Message>> {
    sqlx::query_as!(
        Message,
        r#"SELECT id AS "id: MessageId", event_type AS "event_type: EventType",
                  purchase_id AS "purchase_id: PurchaseId", created_at
           FROM webhook_messages WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}

/// The deliveries of these messages (to one endpoint, when given).
pub async fn deliveries(
    db: impl PgExecutor<'_>,
    message_ids: &[String],
    endpoint: Option<&str>,
) -> sqlx::Result<Vec<Delivery>> {
    sqlx::query_as!(
        Delivery,
        r#"SELECT message_id AS "message_id: MessageId", endpoint_id AS "endpoint_id: EndpointId",
                  status AS "status: DeliveryStatus", attempts, next_attempt_at, last_error,
                  delivered_at, failed_at
           FROM webhook_deliveries
           WHERE message_id = ANY($1) AND ($2::text IS NULL OR endpoint_id = $2)
           ORDER BY message_id, endpoint_id"#,
        message_ids,
        endpoint,
    )
    .fetch_all(db)
    .await
}

/// Every attempt of these messages, oldest first.
pub async fn attempts(
    db: impl PgExecutor<'_>,
    message_ids: &[String],
) -> sqlx::Result<Vec<Attempt>> {
    sqlx::query_as!(
        Attempt,
        r#"SELECT message_id AS "message_id: MessageId", endpoint_id AS "endpoint_id: EndpointId",
                  http_status, error, latency_ms, response, at
           FROM webhook_attempts WHERE message_id = ANY($1) ORDER BY id"#,
        message_ids,
    )
    .fetch_all(db)
    .await
}
