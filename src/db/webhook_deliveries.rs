//! Deliveries as a work queue: claimed with a lease (`FOR UPDATE SKIP LOCKED`, like purchases),
//! each attempt recorded, then delivered, retried later or failed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};

use crate::ids::{EndpointId, MessageId, PurchaseId};
use crate::outbound::event::EventType;
use crate::outbound::send::Answer;

/// A delivery a worker holds: the message, where it goes, and its frozen body if it has one.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub message_id: MessageId,
    pub endpoint_id: EndpointId,
    pub attempts: i32,
    pub event_type: EventType,
    pub purchase_id: PurchaseId,
    pub created_at: DateTime<Utc>,
    pub payload: Option<String>,
    pub url: String,
}

/// Claims due deliveries to enabled endpoints for `owner`. The lease outlasts an attempt's
/// timeout, so a live worker never loses it mid-attempt; a dead one's expires and another worker
/// sends again under the same `webhook-id`.
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    owner: &str,
    lease: Duration,
    limit: i64,
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as!(
        Claimed,
        r#"
        WITH due AS (
            SELECT d.message_id, d.endpoint_id
            FROM webhook_deliveries d
            JOIN webhook_endpoints e ON e.id = d.endpoint_id
            WHERE d.status = 'pending' AND d.next_attempt_at <= now()
              AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now())
              AND e.status = 'enabled'
            ORDER BY d.next_attempt_at
            LIMIT $3
            FOR UPDATE OF d SKIP LOCKED
        ), claimed AS (
            UPDATE webhook_deliveries d
            SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),
                attempts = attempts + 1, updated_at = now()
            FROM due
            WHERE d.message_id = due.message_id AND d.endpoint_id = due.endpoint_id
            RETURNING d.message_id, d.endpoint_id, d.attempts
        )
        SELECT c.message_id AS "message_id!: MessageId", c.endpoint_id AS "endpoint_id!: EndpointId",
               c.attempts AS "attempts!", m.event_type AS "event_type: EventType",
               m.purchase_id AS "purchase_id: PurchaseId", m.created_at, m.payload, e.url
        FROM claimed c
        JOIN webhook_messages m ON m.id = c.message_id
        JOIN webhook_endpoints e ON e.id = c.endpoint_id
        "#,
        owner,
        lease.as_secs_f64(),
        limit,
    )
    .fetch_all(db)
    .await
}

/// Stores the body the first time and returns the stored one: concurrent first claims of one
/// message (one per endpoint) agree on whichever was stored first.
pub async fn freeze_payload(
    db: impl PgExecutor<'_>,
    message_id: &str,
    payload: &str,
) -> sqlx::Result<String> {
    let stored = sqlx::query_scalar!(
        r#"UPDATE webhook_messages SET payload = COALESCE(payload, $2) WHERE id = $1
           RETURNING payload AS "payload!""#,
        message_id,
        payload,
    )
    .fetch_one(db)
    .await?;
    Ok(stored)
}

/// What to do with a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Delivered,
    RetryIn(Duration),
    Failed,
}

/// Records the attempt and moves the delivery on, if `owner` still holds it. The attempt row is
/// written either way: the request was sent.
pub async fn record_attempt(
    tx: &mut Transaction<'_, Postgres>,
    claim: &Claimed,
    owner: &str,
    answer: &Answer,
    next: Next,
) -> sqlx::Result<bool> {
    sqlx::query!(
        "INSERT INTO webhook_attempts (message_id, endpoint_id, http_status, error, latency_ms, response)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &claim.message_id,
        &claim.endpoint_id,
        answer.http_status.map(i32::from),
        answer.error.as_deref(),
        answer.latency.as_millis().min(i32::MAX as u128) as i32,
        answer.response.as_deref(),
    )
    .execute(&mut **tx)
    .await?;
    let (status, delay) = match next {
        Next::Delivered => ("delivered", None),
        Next::RetryIn(delay) => ("pending", Some(delay.as_secs_f64())),
        Next::Failed => ("failed", None),
    };
    let error = answer
        .error
        .clone()
        .or_else(|| answer.http_status.map(|s| format!("HTTP {s}")));
    let updated = sqlx::query!(
        "UPDATE webhook_deliveries
         SET status = $4, lease_owner = NULL, lease_expires_at = NULL,
             next_attempt_at = CASE WHEN $5::float8 IS NULL THEN NULL
                                    ELSE now() + make_interval(secs => $5) END,
             last_error = CASE WHEN $4 = 'delivered' THEN NULL ELSE $6 END,
             delivered_at = CASE WHEN $4 = 'delivered' THEN now() END,
             failed_at = CASE WHEN $4 = 'failed' THEN now() END,
             updated_at = now()
         WHERE message_id = $1 AND endpoint_id = $2 AND lease_owner = $3 AND status = 'pending'",
        &claim.message_id,
        &claim.endpoint_id,
        owner,
        status,
        delay,
        error,
    )
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Fails what is still pending for an endpoint that was deleted or disabled for failing.
pub async fn fail_pending(
    db: impl PgExecutor<'_>,
    endpoint_id: &str,
    reason: &str,
) -> sqlx::Result<u64> {
    let failed = sqlx::query!(
        "UPDATE webhook_deliveries
         SET status = 'failed', failed_at = now(), last_error = $2, lease_owner = NULL,
             lease_expires_at = NULL, next_attempt_at = NULL, updated_at = now()
         WHERE endpoint_id = $1 AND status = 'pending'",
        endpoint_id,
        reason,
    )
    .execute(db)
    .await?;
    Ok(failed.rows_affected())
}

/// Sends a message's failed deliveries again with a fresh schedule (all endpoints, or one).
/// Delivered ones are left alone: the receiver has them.
pub async fn retry_message(
    db: impl PgExecutor<'_>,
    message_id: &str,
    endpoint_id: Option<&str>,
) -> sqlx::Result<u64> {
    let retried = sqlx::query!(
        "UPDATE webhook_deliveries d
         SET status = 'pending', attempts = 0, next_attempt_at = now(), failed_at = NULL,
             updated_at = now()
         FROM webhook_endpoints e
         WHERE e.id = d.endpoint_id AND e.status <> 'deleted'
           AND d.message_id = $1 AND d.status = 'failed' AND ($2::text IS NULL OR d.endpoint_id = $2)",
        message_id,
        endpoint_id,
    )
    .execute(db)
    .await?;
    Ok(retried.rows_affected())
}

/// Sends again every delivery to `endpoint_id` that failed, of messages created since `since`.
pub async fn recover(
    db: impl PgExecutor<'_>,
    endpoint_id: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let recovered = sqlx::query!(
        "UPDATE webhook_deliveries d
         SET status = 'pending', attempts = 0, next_attempt_at = now(), failed_at = NULL,
             updated_at = now()
         FROM webhook_messages m
         WHERE m.id = d.message_id AND d.endpoint_id = $1 AND d.status = 'failed'
           AND m.created_at >= $2",
        endpoint_id,
        since,
    )
    .execute(db)
    .await?;
    Ok(recovered.rows_affected())
}

/// Age of the oldest message still waiting for an enabled endpoint, for the alert; 0 when none.
pub async fn oldest_undelivered_secs(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    let age = sqlx::query_scalar!(
        "SELECT extract(epoch FROM now() - min(m.created_at))::float8
         FROM webhook_deliveries d
         JOIN webhook_messages m ON m.id = d.message_id
         JOIN webhook_endpoints e ON e.id = d.endpoint_id
         WHERE d.status = 'pending' AND e.status = 'enabled'",
    )
    .fetch_one(db)
    .await?;
    Ok(age.unwrap_or(0.0) as i64)
}
