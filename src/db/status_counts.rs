//! Purchases per status for the metrics gauge, from the trigger-kept delta rows (migration
//! 0004), so a scrape never groups the whole purchases table.

use sqlx::PgExecutor;

/// Folds the delta rows into one row per status, so the table stays a handful of rows.
///
/// Rows committed after the statement's snapshot are neither deleted nor folded; the next
/// scrape folds them. Two replicas folding at once cannot count a row twice: the second waits
/// on the first's row locks and then skips the rows it deleted.
async fn fold(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        r#"
        WITH moved AS (
            DELETE FROM purchase_status_deltas RETURNING status, delta
        )
        INSERT INTO purchase_status_deltas (status, delta)
        SELECT status, sum(delta) FROM moved GROUP BY status HAVING sum(delta) <> 0
        "#
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Purchases per status: fold, then sum what is there. The sum is a statement of its own, with
/// a snapshot taken after the fold (and after any concurrent fold it waited for) committed; a
/// sum inside the folding statement would only see the rows that statement itself deleted.
pub async fn by_status(db: impl PgExecutor<'_> + Copy) -> sqlx::Result<Vec<(String, i64)>> {
    fold(db).await?;
    let rows = sqlx::query!(
        r#"SELECT status, sum(delta)::bigint AS "count!" FROM purchase_status_deltas GROUP BY status"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.status, row.count))
        .collect())
}

/// Age of the oldest purchase paid but not granted, in seconds; 0 when none. Reads only the
/// `granting` rows, through the status index.
pub async fn oldest_paid_ungranted_secs(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    let oldest = sqlx::query_scalar!(
        "SELECT extract(epoch FROM now() - min(paid_at))::float8 FROM purchases WHERE status = 'granting'",
    )
    .fetch_one(db)
    .await?;
    Ok(oldest.unwrap_or(0.0) as i64)
}
