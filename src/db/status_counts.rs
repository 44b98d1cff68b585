//! Purchases per status for the metrics gauge, from the trigger-kept delta rows (migration
//! 0004), so a scrape never groups the whole purchases table.

use sqlx::PgExecutor;

/// Folds the delta rows into one row per status and returns the counts, in one statement.
///
/// Rows committed after the statement's snapshot are neither deleted nor counted, and are
/// folded by the next scrape. Two replicas folding at once cannot count a row twice: the second
/// waits on the first's row locks and then skips the rows it deleted.
pub const FOLD_AND_COUNT: &str = r#"
WITH moved AS (
    DELETE FROM purchase_status_deltas RETURNING status, delta
), folded AS (
    INSERT INTO purchase_status_deltas (status, delta)
    SELECT status, sum(delta) FROM moved GROUP BY status HAVING sum(delta) <> 0
    RETURNING status, delta
)
SELECT status, delta FROM folded
"#;

pub async fn by_status(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(FOLD_AND_COUNT).fetch_all(db).await
}

/// Age of the oldest purchase paid but not granted, in seconds; 0 when none. Reads only the
/// `granting` rows, through the status index.
pub async fn oldest_paid_ungranted_secs(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    let oldest: (Option<f64>,) = sqlx::query_as(
        "SELECT extract(epoch FROM now() - min(paid_at))::float8 FROM purchases WHERE status = 'granting'",
    )
    .fetch_one(db)
    .await?;
    Ok(oldest.0.unwrap_or(0.0) as i64)
}
