//! `stripe_events` as operators list them: a page of recorded events, and the events of one
//! purchase. No payloads: those stay with replays.

use sqlx::PgExecutor;

use crate::ids::{EventId, InvoiceId, PurchaseId};
use crate::purchase::lifecycle::Outcome;

/// One recorded event in a listing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventSummary {
    pub id: EventId,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub livemode: bool,
    /// Stripe's `created`, unix seconds.
    pub created: i64,
    pub invoice_id: Option<InvoiceId>,
    pub purchase_id: Option<PurchaseId>,
    pub outcome: Outcome,
    /// webhook, resync or replay.
    pub source: String,
    /// When creditd recorded it, unix seconds.
    pub received: i64,
}

/// A page of recorded events, newest first. None when `starting_after` is unknown.
pub async fn page(
    db: impl PgExecutor<'_> + Copy,
    outcome: Option<&str>,
    event_type: Option<&str>,
    starting_after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Option<Vec<EventSummary>>> {
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
    let rows = sqlx::query_as(
        r#"
        SELECT id, type, livemode, stripe_created AS created, invoice_id, purchase_id, outcome,
               source, extract(epoch FROM received_at)::bigint AS received
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
    Ok(Some(rows))
}

/// One event in a purchase's history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PurchaseEvent {
    pub id: EventId,
    #[sqlx(rename = "type")]
    pub event_type: String,
    /// Stripe's `created`, unix seconds.
    pub created: i64,
    pub outcome: Outcome,
    pub source: String,
    /// When creditd recorded it, unix seconds.
    pub received: i64,
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
SELECT id, type, stripe_created AS created, outcome, source,
       extract(epoch FROM received_at)::bigint AS received
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

/// The events of one purchase, oldest first (see [`PURCHASE_EVENTS`]).
pub async fn of_purchase(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
) -> sqlx::Result<Vec<PurchaseEvent>> {
    sqlx::query_as(PURCHASE_EVENTS)
        .bind(purchase_id)
        .fetch_all(db)
        .await
}
