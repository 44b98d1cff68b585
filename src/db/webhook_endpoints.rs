//! The merchant's webhook endpoints. Rows are read without their secrets except by
//! [`signing_keys`], the one query a delivery signs with.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};

use crate::ids::EndpointId;
use crate::outbound::event::EndpointStatus;
use crate::secret::Secret;

/// An endpoint as the admin API shows it: never its secrets. Every statement lists its columns,
/// so no statement can read a secret by accident.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: EndpointId,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub status: EndpointStatus,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    id: &EndpointId,
    url: &str,
    events: &[String],
    description: Option<&str>,
    secret: &Secret,
) -> sqlx::Result<Endpoint> {
    sqlx::query_as!(
        Endpoint,
        r#"INSERT INTO webhook_endpoints (id, url, events, description, status, secret)
         VALUES ($1, $2, $3, $4, 'enabled', $5)
         RETURNING id AS "id: EndpointId", url, events, description,
                   status AS "status: EndpointStatus", disabled_reason, failing_since,
                   previous_secret_expires_at, created_at, updated_at"#,
        id as &EndpointId,
        url,
        events,
        description,
        secret.expose(),
    )
    .fetch_one(db)
    .await
}

/// A live (not deleted) endpoint.
pub async fn find(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<Endpoint>> {
    sqlx::query_as!(
        Endpoint,
        r#"SELECT id AS "id: EndpointId", url, events, description,
                   status AS "status: EndpointStatus", disabled_reason, failing_since,
                   previous_secret_expires_at, created_at, updated_at
            FROM webhook_endpoints WHERE id = $1 AND status <> 'deleted'"#,
        id,
    )
    .fetch_optional(db)
    .await
}

/// Live endpoints, newest first. None when `starting_after` names no endpoint.
pub async fn list(
    db: impl PgExecutor<'_> + Copy,
    starting_after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Option<Vec<Endpoint>>> {
    let cursor: Option<(DateTime<Utc>,)> = match starting_after {
        None => None,
        Some(id) => {
            let found =
                sqlx::query_scalar!("SELECT created_at FROM webhook_endpoints WHERE id = $1", id)
                    .fetch_optional(db)
                    .await?;
            match found {
                None => return Ok(None),
                Some(created_at) => Some((created_at,)),
            }
        }
    };
    let rows = sqlx::query_as!(
        Endpoint,
        r#"SELECT id AS "id: EndpointId", url, events, description,
                   status AS "status: EndpointStatus", disabled_reason, failing_since,
                   previous_secret_expires_at, created_at, updated_at
            FROM webhook_endpoints
         WHERE status <> 'deleted'
           AND ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
         ORDER BY created_at DESC, id DESC LIMIT $3"#,
        cursor.map(|c| c.0),
        starting_after,
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(Some(rows))
}

/// A new secret; the old one is still signed with for `grace`.
pub async fn rotate_secret(
    db: impl PgExecutor<'_>,
    id: &str,
    secret: &Secret,
    grace: Duration,
) -> sqlx::Result<Option<Endpoint>> {
    sqlx::query_as!(
        Endpoint,
        r#"UPDATE webhook_endpoints
         SET previous_secret = secret, secret = $2,
             previous_secret_expires_at = now() + make_interval(secs => $3), updated_at = now()
         WHERE id = $1 AND status <> 'deleted'
         RETURNING id AS "id: EndpointId", url, events, description,
                   status AS "status: EndpointStatus", disabled_reason, failing_since,
                   previous_secret_expires_at, created_at, updated_at"#,
        id,
        secret.expose(),
        grace.as_secs_f64(),
    )
    .fetch_optional(db)
    .await
}

/// Enables (forgetting past failures) or disables by hand.
pub async fn set_enabled(
    db: impl PgExecutor<'_>,
    id: &str,
    enabled: bool,
) -> sqlx::Result<Option<Endpoint>> {
    sqlx::query_as!(
        Endpoint,
        r#"UPDATE webhook_endpoints
         SET status = CASE WHEN $2 THEN 'enabled' ELSE 'disabled' END,
             disabled_reason = CASE WHEN $2 THEN NULL ELSE 'admin' END,
             failing_since = CASE WHEN $2 THEN NULL ELSE failing_since END, updated_at = now()
         WHERE id = $1 AND status <> 'deleted'
         RETURNING id AS "id: EndpointId", url, events, description,
                   status AS "status: EndpointStatus", disabled_reason, failing_since,
                   previous_secret_expires_at, created_at, updated_at"#,
        id,
        enabled,
    )
    .fetch_optional(db)
    .await
}

/// Deletes: the secrets are wiped and what was still pending for it fails; history stays.
pub async fn delete(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
) -> sqlx::Result<Option<Endpoint>> {
    let deleted: Option<Endpoint> = sqlx::query_as!(
        Endpoint,
        r#"UPDATE webhook_endpoints
         SET status = 'deleted', secret = NULL, previous_secret = NULL,
             previous_secret_expires_at = NULL, updated_at = now()
         WHERE id = $1 AND status <> 'deleted'
         RETURNING id AS "id: EndpointId", url, events, description,
                   status AS "status: EndpointStatus", disabled_reason, failing_since,
                   previous_secret_expires_at, created_at, updated_at"#,
        id,
    )
    .fetch_optional(&mut **tx)
    .await?;
    if deleted.is_some() {
        super::webhook_deliveries::fail_pending(&mut **tx, id, "endpoint deleted").await?;
    }
    Ok(deleted)
}

/// The secrets to sign with now: the current one, and the previous one during its grace period.
pub async fn signing_keys(
    db: impl PgExecutor<'_>,
    id: &str,
) -> sqlx::Result<Option<(Secret, Option<Secret>)>> {
    let row = sqlx::query!(
        r#"SELECT secret,
                  CASE WHEN previous_secret_expires_at > now() THEN previous_secret END AS previous
           FROM webhook_endpoints WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|row| {
        let (current, previous) = (row.secret, row.previous);
        Some((
            Secret::from(current?.as_str()),
            previous.map(|p| Secret::from(p.as_str())),
        ))
    }))
}

/// Locks the endpoint row for the rest of the transaction. Taken before a delivery row is
/// touched, in the order deletion and disabling use (endpoint, then its deliveries), so that two
/// workers recording attempts to one endpoint cannot deadlock when one of them disables it.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, id: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT 1 AS locked FROM webhook_endpoints WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(())
}

/// Any 2xx ends the endpoint's run of failures.
pub async fn note_success(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<()> {
    sqlx::query!("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL", id)
        .execute(db)
        .await?;
    Ok(())
}

/// Notes a failed attempt; disables the endpoint when nothing has succeeded for `window`.
/// Returns when its failures began if this call disabled it (the caller audits that).
pub async fn note_failure(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    window: Duration,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query!("UPDATE webhook_endpoints SET failing_since = now() WHERE id = $1 AND failing_since IS NULL", id)
        .execute(&mut **tx)
        .await?;
    let disabled = sqlx::query_scalar!(
        r#"UPDATE webhook_endpoints
           SET status = 'disabled', disabled_reason = 'failing', updated_at = now()
           WHERE id = $1 AND status = 'enabled'
             AND failing_since <= now() - make_interval(secs => $2)
           RETURNING failing_since AS "failing_since!""#,
        id,
        window.as_secs_f64(),
    )
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(since) = disabled {
        let reason = format!("endpoint disabled: every attempt failed since {since}");
        super::webhook_deliveries::fail_pending(&mut **tx, id, &reason).await?;
    }
    Ok(disabled)
}
