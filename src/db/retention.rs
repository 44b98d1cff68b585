//! Deleting what creditd no longer needs: the payloads of old ignored events.

use sqlx::PgExecutor;

/// Replaces the payload of up to `batch` ignored events older than `days` with JSON `null`
/// and marks them pruned; their rows, types and outcomes stay. Returns how many were pruned.
pub async fn prune_ignored_payloads(
    db: impl PgExecutor<'_>,
    days: u32,
    batch: i64,
) -> sqlx::Result<u64> {
    let result = sqlx::query!(
        r#"
        UPDATE stripe_events SET payload = 'null'::json, payload_pruned_at = now()
        WHERE id IN (
            SELECT id FROM stripe_events
            WHERE outcome = 'ignored' AND payload_pruned_at IS NULL
              AND received_at < now() - make_interval(days => $1)
            ORDER BY received_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        "#,
        days as i32,
        batch,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}
