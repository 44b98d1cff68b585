//! Operator tools: re-sync jobs and their per-event outcomes, the audit trail, and the views that
//! explain an event or a purchase.

use std::time::Duration;

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};

/// A re-sync as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Resync {
    pub id: String,
    pub status: String,
    pub params: Json<Value>,
    pub seen: i32,
    pub new: i32,
    pub duplicate: i32,
    pub granted: i32,
    pub unmatched: i32,
    pub failed: i32,
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

impl Resync {
    pub fn counts_json(&self) -> Value {
        serde_json::json!({
            "seen": self.seen, "new": self.new, "duplicate": self.duplicate,
            "granted": self.granted, "unmatched": self.unmatched, "failed": self.failed,
        })
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "object": "resync",
            "status": self.status,
            "params": self.params.0,
            "counts": self.counts_json(),
            "cursor": self.cursor,
            "pages": self.pages,
            "error": self.error,
            "actor": self.actor,
            "created": self.created_at.timestamp(),
            "updated": self.updated_at.timestamp(),
            "completed": self.completed_at.map(|t| t.timestamp()),
        })
    }
}

/// Creates a running re-sync already leased to `owner`, so no other process starts it too.
pub async fn insert_resync(
    db: impl PgExecutor<'_>,
    id: &str,
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

pub async fn find_resync(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<Resync>> {
    sqlx::query_as("SELECT * FROM resyncs WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Takes over one running re-sync whose owner stopped renewing its lease (it crashed or was
/// stopped), so it resumes from its cursor.
pub async fn claim_abandoned_resync(
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
pub async fn renew_resync_lease(
    db: impl PgExecutor<'_>,
    id: &str,
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

/// Marks the objects of a page as being processed, before any of them is. A page redone after a
/// crash keeps the original time, which tells the redo which events this re-sync itself recorded.
pub async fn mark_pending(db: &PgPool, resync_id: &str, ids: &[String]) -> sqlx::Result<()> {
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
    resync_id: &str,
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
    pub outcome: crate::purchase::lifecycle::Outcome,
    pub purchase_id: Option<crate::ids::PurchaseId>,
    pub by_this_resync: bool,
}

/// What happened to one object of a page.
#[derive(Debug, Clone)]
pub struct ObjectOutcome {
    pub id: String,
    pub outcome: String,
    pub new: bool,
    pub purchase_id: Option<crate::ids::PurchaseId>,
    pub error: Option<String>,
}

/// Commits one page: its outcomes, the cursor and the counts (recomputed from all outcomes, so a
/// redone page is not counted twice), in one transaction, if `owner` still holds the lease.
/// `finished` completes the re-sync. False when the lease was lost: nothing is written.
pub async fn commit_page(
    db: &PgPool,
    resync_id: &str,
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

/// Ends a re-sync that cannot go on (Stripe refused the listing, or kept failing).
pub async fn fail_resync(
    db: impl PgExecutor<'_>,
    resync_id: &str,
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
    .bind(resync_id)
    .bind(owner)
    .bind(error)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The outcomes of a re-sync, in the order it saw the objects.
pub async fn resync_outcomes(
    db: impl PgExecutor<'_>,
    resync_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<Value>> {
    let rows: Vec<(Json<Value>,)> = sqlx::query_as(
        r#"
        SELECT json_build_object('event_id', event_id, 'outcome', outcome, 'new', new,
                                 'purchase_id', purchase_id, 'error', error)
        FROM resync_events WHERE resync_id = $1 ORDER BY seq LIMIT $2
        "#,
    )
    .bind(resync_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}

/// Appends one entry to the audit trail.
pub async fn audit(
    db: impl PgExecutor<'_>,
    action: &str,
    actor: &str,
    arguments: &Value,
    result: &Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO admin_audit (action, actor, arguments, result) VALUES ($1, $2, $3, $4)",
    )
    .bind(action)
    .bind(actor)
    .bind(Json(arguments))
    .bind(Json(result))
    .execute(db)
    .await?;
    Ok(())
}

/// A page of recorded events, newest first, without payloads. None when `starting_after` is unknown.
pub async fn list_events(
    db: impl PgExecutor<'_> + Copy,
    outcome: Option<&str>,
    event_type: Option<&str>,
    starting_after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Option<Vec<Value>>> {
    // The cursor's position is bound as values, so it is an index condition on
    // `stripe_events_received` and a later page does not walk the pages before it.
    let cursor = match starting_after {
        None => None,
        Some(id) => match super::events::find(db, id).await? {
            None => return Ok(None),
            Some(after) => Some((after.received_at, after.id)),
        },
    };
    let (received_before, id_before) = cursor.unzip();
    let rows: Vec<(Json<Value>,)> = sqlx::query_as(
        r#"
        SELECT json_build_object('id', id, 'object', 'event', 'type', type, 'livemode', livemode,
                                 'created', stripe_created, 'invoice_id', invoice_id,
                                 'purchase_id', purchase_id, 'outcome', outcome, 'source', source,
                                 'received', extract(epoch FROM received_at)::bigint)
        FROM stripe_events
        WHERE ($1::text IS NULL OR outcome = $1)
          AND ($2::text IS NULL OR type = $2)
          AND ($3::timestamptz IS NULL OR (received_at, id) < ($3, $4::text))
        ORDER BY received_at DESC, id DESC
        LIMIT $5
        "#,
    )
    .bind(outcome)
    .bind(event_type)
    .bind(received_before)
    .bind(id_before)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(Some(rows.into_iter().map(|r| r.0.0).collect()))
}

/// The events of one purchase, oldest first. Three questions, each answered by its own partial
/// index, so the cost follows the purchase's own events and never the table's size (issue 11):
/// the invoice's `invoice.paid` events (`stripe_events_paid_invoice`), its other events
/// (`stripe_events_other_invoice`, migration 0008), and the payments whose metadata names the
/// purchase (`stripe_events_paid_metadata`). One `OR` of them, as before, could only scan.
///
/// `purchase_id = $1` needs no branch of its own: an event is linked to a purchase only when it
/// belongs to it (`lifecycle::belongs_to_invoice`: the purchase's invoice, or its metadata while
/// the purchase has no invoice yet, which applying the event then stores), and a purchase's
/// invoice is written once. What is left out is an event of another type than `invoice.paid` that
/// names the purchase only in its metadata while the purchase still has no invoice: a moment of
/// funding, and nothing creditd acts on.
const PURCHASE_EVENTS: &str = r#"
WITH p AS (SELECT invoice_id FROM purchases WHERE id = $1)
SELECT json_build_object('id', id, 'type', type, 'created', stripe_created,
                         'outcome', outcome, 'source', source,
                         'received', extract(epoch FROM received_at)::bigint)
FROM (
    SELECT id, type, stripe_created, outcome, source, received_at FROM stripe_events
    WHERE type = 'invoice.paid' AND invoice_id = (SELECT invoice_id FROM p)
    UNION
    SELECT id, type, stripe_created, outcome, source, received_at FROM stripe_events
    WHERE type <> 'invoice.paid' AND invoice_id = (SELECT invoice_id FROM p)
    UNION
    SELECT id, type, stripe_created, outcome, source, received_at FROM stripe_events
    WHERE type = 'invoice.paid' AND metadata_purchase_id = $1
    UNION
    -- Refunds, disputes and Checkout sessions: matched to the purchase, no invoice on the event.
    SELECT id, type, stripe_created, outcome, source, received_at FROM stripe_events
    WHERE invoice_id IS NULL AND purchase_id = $1
) e
ORDER BY received_at, id
"#;

/// Everything that explains one purchase: status history, events, Stripe calls.
pub async fn purchase_history(
    db: impl PgExecutor<'_> + Copy,
    purchase_id: &str,
) -> sqlx::Result<(Vec<Value>, Vec<Value>, Vec<Value>)> {
    let transitions: Vec<(Json<Value>,)> = sqlx::query_as(
        r#"
        SELECT json_build_object('from', from_status, 'to', to_status, 'last_error', last_error,
                                 'at', extract(epoch FROM at)::bigint)
        FROM purchase_transitions WHERE purchase_id = $1 ORDER BY id
        "#,
    )
    .bind(purchase_id)
    .fetch_all(db)
    .await?;
    let events: Vec<(Json<Value>,)> = sqlx::query_as(PURCHASE_EVENTS)
        .bind(purchase_id)
        .fetch_all(db)
        .await?;
    let calls: Vec<(Json<Value>,)> = sqlx::query_as(
        r#"
        SELECT json_build_object('method', method, 'path', path, 'idempotency_key', idempotency_key,
                                 'http_status', http_status, 'error', error,
                                 'at', extract(epoch FROM at)::bigint)
        FROM stripe_calls WHERE purchase_id = $1 ORDER BY id
        "#,
    )
    .bind(purchase_id)
    .fetch_all(db)
    .await?;
    let unwrap = |rows: Vec<(Json<Value>,)>| rows.into_iter().map(|r| r.0.0).collect();
    Ok((unwrap(transitions), unwrap(events), unwrap(calls)))
}

/// Points a recorded event at the purchase a replay scheduled, so the purchase's history shows it.
pub async fn attach_event(
    db: impl PgExecutor<'_>,
    event_id: &str,
    purchase_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE stripe_events SET purchase_id = $2 WHERE id = $1 AND purchase_id IS NULL")
        .bind(event_id)
        .bind(purchase_id)
        .execute(db)
        .await?;
    Ok(())
}
