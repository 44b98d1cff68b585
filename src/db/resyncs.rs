//! `resyncs`: one row per re-sync job, leased like a purchase so a crashed process's job resumes.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;
use sqlx::types::Json;

use crate::ids::ResyncId;

/// Where a re-sync is (the CHECK on `resyncs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResyncStatus {
    Running,
    Completed,
    Failed,
}

impl ResyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResyncStatus::Running => "running",
            ResyncStatus::Completed => "completed",
            ResyncStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            ResyncStatus::Running,
            ResyncStatus::Completed,
            ResyncStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

impl std::fmt::Display for ResyncStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// `creditd resync` (main.rs) picks its exit code by comparing with the stored spelling.
impl PartialEq<&str> for ResyncStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

crate::text_column::text_column!(ResyncStatus, "re-sync status");

/// What a re-sync did with the objects it saw, recomputed from `resync_events` at every page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ResyncCounts {
    pub seen: i32,
    pub new: i32,
    pub duplicate: i32,
    pub granted: i32,
    pub unmatched: i32,
    pub failed: i32,
}

/// A re-sync as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Resync {
    pub id: ResyncId,
    pub status: ResyncStatus,
    /// The `ResyncParams` it was started with, as stored.
    pub params: Json<Value>,
    #[sqlx(flatten)]
    pub counts: ResyncCounts,
    pub cursor: Option<String>,
    pub pages: i32,
    pub error: Option<String>,
    pub actor: String,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Creates a running re-sync already leased to `owner`, so no other process starts it too.
pub async fn insert(
    db: impl PgExecutor<'_>,
    id: &ResyncId,
    params: &Value,
    actor: &str,
    owner: &str,
    lease: Duration,
) -> sqlx::Result<Resync> {
    sqlx::query_as(
        r#"
        INSERT INTO resyncs (id, status, params, actor, lease_owner, lease_expires_at)
        VALUES ($1, 'running', $2, $3, $4, now() + make_interval(secs => $5))
        RETURNING *
        "#,
    )
    .bind(id)
    .bind(Json(params))
    .bind(actor)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_one(db)
    .await
}

pub async fn find(db: impl PgExecutor<'_>, id: &ResyncId) -> sqlx::Result<Option<Resync>> {
    sqlx::query_as("SELECT * FROM resyncs WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Takes over one running re-sync whose owner stopped renewing its lease (it crashed or was
/// stopped), so it resumes from its cursor.
pub async fn claim_abandoned(
    db: impl PgExecutor<'_>,
    owner: &str,
    lease: Duration,
) -> sqlx::Result<Option<Resync>> {
    sqlx::query_as(
        r#"
        WITH abandoned AS (
            SELECT id FROM resyncs
            WHERE status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < now())
            ORDER BY created_at
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE resyncs r
        SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2), updated_at = now()
        FROM abandoned a
        WHERE r.id = a.id
        RETURNING r.*
        "#,
    )
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_optional(db)
    .await
}

/// Extends the lease; false when another process has taken the re-sync over or it ended.
pub async fn renew_lease(
    db: impl PgExecutor<'_>,
    id: &ResyncId,
    owner: &str,
    lease: Duration,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        r#"
        UPDATE resyncs SET lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
        WHERE id = $1 AND lease_owner = $2 AND status = 'running'
        "#,
    )
    .bind(id)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends a re-sync that cannot go on (Stripe refused the listing, or kept failing).
pub async fn fail(
    db: impl PgExecutor<'_>,
    id: &ResyncId,
    owner: &str,
    error: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        r#"
        UPDATE resyncs
        SET status = 'failed', error = $3, completed_at = now(), lease_owner = NULL,
            lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND lease_owner = $2 AND status = 'running'
        "#,
    )
    .bind(id)
    .bind(owner)
    .bind(error)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}
