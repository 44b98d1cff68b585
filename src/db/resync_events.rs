//! `resync_events`: what a re-sync did with each object it saw, written page by page, and the
//! counts on `resyncs` recomputed from them.

use sqlx::{PgExecutor, PgPool};

use crate::ids::{PurchaseId, ResyncId};
use crate::purchase::lifecycle::Outcome;

/// Marks the objects of a page as being processed, before any of them is. A page redone after a
/// crash keeps the original time, which tells the redo which events this re-sync itself recorded.
pub async fn mark_pending(db: &PgPool, resync_id: &ResyncId, ids: &[String]) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        INSERT INTO resync_events (resync_id, event_id, outcome)
        SELECT $1, unnest($2::text[]), 'pending'
        ON CONFLICT (resync_id, event_id) DO NOTHING
        "#,
    )
    .bind(resync_id)
    .bind(ids)
    .execute(db)
    .await?;
    Ok(())
}

/// What a re-sync needs to know about an event its recording found already there: the stored
/// outcome and purchase, and whether this re-sync itself recorded it, after marking it pending
/// (a page interrupted by a crash, now being redone, recorded it the first time round). One
/// round trip, and without the payload: re-sync pays it for every duplicate.
pub async fn recorded_event(
    db: impl PgExecutor<'_>,
    resync_id: &ResyncId,
    event_id: &str,
) -> sqlx::Result<Option<RecordedEvent>> {
    sqlx::query_as(
        r#"
        SELECT e.outcome, e.purchase_id,
               EXISTS (SELECT 1 FROM resync_events r
                       WHERE r.resync_id = $1 AND r.event_id = e.id
                         AND e.source = 'resync' AND e.received_at >= r.at) AS by_this_resync
        FROM stripe_events e
        WHERE e.id = $2
        "#,
    )
    .bind(resync_id)
    .bind(event_id)
    .fetch_optional(db)
    .await
}

/// See [`recorded_event`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordedEvent {
    pub outcome: Outcome,
    pub purchase_id: Option<PurchaseId>,
    pub by_this_resync: bool,
}

/// What happened to one object of a page.
#[derive(Debug, Clone)]
pub struct ObjectOutcome {
    pub id: String,
    pub outcome: String,
    pub new: bool,
    pub purchase_id: Option<PurchaseId>,
    pub error: Option<String>,
}

/// Commits one page: its outcomes, the cursor and the counts (recomputed from all outcomes, so a
/// redone page is not counted twice), in one transaction, if `owner` still holds the lease.
/// `finished` completes the re-sync. False when the lease was lost: nothing is written.
pub async fn commit_page(
    db: &PgPool,
    resync_id: &ResyncId,
    owner: &str,
    outcomes: &[ObjectOutcome],
    cursor: Option<&str>,
    finished: bool,
) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let held: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM resyncs WHERE id = $1 AND lease_owner = $2 AND status = 'running' FOR UPDATE",
    )
    .bind(resync_id)
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    if held.is_none() {
        return Ok(false);
    }
    // One statement for the whole page: per-object inserts made a page of 100 cost 100 round
    // trips inside the transaction.
    let column = |field: fn(&ObjectOutcome) -> Option<String>| -> Vec<Option<String>> {
        outcomes.iter().map(field).collect()
    };
    sqlx::query(
        r#"
        INSERT INTO resync_events (resync_id, event_id, outcome, new, purchase_id, error)
        SELECT DISTINCT ON (o.event_id) $1, o.event_id, o.outcome, o.new, o.purchase_id, o.error
        FROM unnest($2::text[], $3::text[], $4::bool[], $5::text[], $6::text[])
             WITH ORDINALITY AS o(event_id, outcome, new, purchase_id, error, position)
        -- An object listed twice in a page counts once, with its last outcome, as the
        -- per-object inserts this replaces left it.
        ORDER BY o.event_id, o.position DESC
        ON CONFLICT (resync_id, event_id) DO UPDATE
        SET outcome = EXCLUDED.outcome, new = EXCLUDED.new, purchase_id = EXCLUDED.purchase_id,
            error = EXCLUDED.error
        "#,
    )
    .bind(resync_id)
    .bind(column(|o| Some(o.id.clone())))
    .bind(column(|o| Some(o.outcome.clone())))
    .bind(outcomes.iter().map(|o| o.new).collect::<Vec<bool>>())
    .bind(column(|o| o.purchase_id.as_ref().map(ToString::to_string)))
    .bind(column(|o| o.error.clone()))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        r#"
        WITH counts AS (
            SELECT count(*) FILTER (WHERE outcome <> 'pending') AS seen,
                   count(*) FILTER (WHERE new) AS new,
                   count(*) FILTER (WHERE outcome = 'duplicate' OR outcome LIKE 'already_%') AS duplicate,
                   count(*) FILTER (WHERE outcome IN ('scheduled', 'would_schedule')) AS granted,
                   count(*) FILTER (WHERE outcome = 'unmatched') AS unmatched,
                   count(*) FILTER (WHERE outcome = 'failed') AS failed
            FROM resync_events WHERE resync_id = $1
        )
        UPDATE resyncs r
        SET seen = c.seen, new = c.new, duplicate = c.duplicate, granted = c.granted,
            unmatched = c.unmatched, failed = c.failed,
            cursor = COALESCE($2, r.cursor), pages = r.pages + 1, updated_at = now(),
            status = CASE WHEN $3 THEN 'completed' ELSE r.status END,
            completed_at = CASE WHEN $3 THEN now() END,
            lease_owner = CASE WHEN $3 THEN NULL ELSE r.lease_owner END,
            lease_expires_at = CASE WHEN $3 THEN NULL ELSE r.lease_expires_at END
        FROM counts c
        WHERE r.id = $1
        "#,
    )
    .bind(resync_id)
    .bind(cursor)
    .bind(finished)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// One object's outcome, as an operator sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResyncOutcome {
    /// An `evt_` id, or an `in_` id when the re-sync lists invoices.
    pub event_id: String,
    /// `pending` until its page is committed, then a recording outcome, a dry run's prediction
    /// (`would_schedule`, ...) or `failed`.
    pub outcome: String,
    pub new: bool,
    pub purchase_id: Option<PurchaseId>,
    pub error: Option<String>,
}

/// The outcomes of a re-sync, in the order it saw the objects.
pub async fn outcomes(
    db: impl PgExecutor<'_>,
    resync_id: &ResyncId,
    limit: i64,
) -> sqlx::Result<Vec<ResyncOutcome>> {
    sqlx::query_as(
        r#"
        SELECT event_id, outcome, new, purchase_id, error
        FROM resync_events WHERE resync_id = $1 ORDER BY seq LIMIT $2
        "#,
    )
    .bind(resync_id)
    .bind(limit)
    .fetch_all(db)
    .await
}
