//! The idempotency table for Stripe events: recording an event and scheduling its work in one statement.

use sqlx::PgExecutor;

use crate::stripe::types::Event;

/// What an event asks of the purchase it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    /// `invoice.paid`: the purchase becomes due for granting.
    Grant,
    /// `invoice.voided`, `invoice.marked_uncollectible`: an unpaid purchase is canceled.
    Cancel,
    /// Anything else: recorded as ignored.
    Ignore,
}

impl EventAction {
    pub fn for_type(event_type: &str) -> Self {
        match event_type {
            "invoice.paid" => EventAction::Grant,
            "invoice.voided" | "invoice.marked_uncollectible" => EventAction::Cancel,
            _ => EventAction::Ignore,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            EventAction::Grant => "grant",
            EventAction::Cancel => "cancel",
            EventAction::Ignore => "ignore",
        }
    }
}

/// The result of recording one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// False when the event id was already recorded: nothing changed.
    pub new: bool,
    /// scheduled | canceled | already_<status> | unmatched | ignored; None for duplicates.
    pub outcome: Option<String>,
    pub purchase_id: Option<String>,
}

/// Records the event and, in the same statement, moves the matched purchase on.
///
/// One statement means one round trip and one commit per event. A duplicate finds its id in the
/// primary key before anything else runs, locks nothing, writes nothing and never parses its
/// payload (it travels as text and becomes jsonb only when inserted); two copies racing past
/// that check meet at `ON CONFLICT`. The purchase row is
/// locked (`FOR UPDATE`) so the outcome written with the event agrees with what the update did.
/// A purchase matches by invoice id, or by the `creditd_purchase_id` on an invoice creditd
/// created when the purchase does not have its invoice id yet.
pub const RECORD_EVENT: &str = r#"
WITH fresh AS (
    SELECT NOT EXISTS (SELECT 1 FROM stripe_events WHERE id = $1) AS is_new
), target AS (
    SELECT p.id, p.status
    FROM purchases p, fresh
    WHERE fresh.is_new AND $9 <> 'ignore'
      AND (p.invoice_id = $5 OR (p.id = $6 AND (p.invoice_id IS NULL OR p.invoice_id = $5)))
    ORDER BY (p.invoice_id = $5) DESC NULLS LAST
    LIMIT 1
    FOR UPDATE OF p
), decided AS (
    SELECT t.id AS purchase_id,
           CASE
               WHEN $9 = 'ignore' THEN 'ignored'
               WHEN t.id IS NULL THEN 'unmatched'
               WHEN $9 = 'grant' AND t.status IN ('awaiting_payment', 'creating_invoice') THEN 'scheduled'
               WHEN $9 = 'cancel' AND t.status IN ('awaiting_payment', 'creating_invoice') THEN 'canceled'
               ELSE 'already_' || t.status
           END AS outcome
    FROM (SELECT 1) AS one LEFT JOIN target t ON true
), inserted AS (
    INSERT INTO stripe_events (id, type, livemode, stripe_created, invoice_id, metadata_purchase_id,
                               purchase_id, outcome, source, payload)
    SELECT $1, $2, $3, $4, $5, $6, d.purchase_id, d.outcome, $7, CAST($8 AS jsonb)
    FROM decided d, fresh
    WHERE fresh.is_new
    ON CONFLICT (id) DO NOTHING
    RETURNING purchase_id, outcome
), moved AS (
    UPDATE purchases p
    SET status = CASE WHEN i.outcome = 'scheduled' THEN 'granting' ELSE 'canceled' END,
        invoice_id = COALESCE(p.invoice_id, $5),
        paid_event_id = CASE WHEN i.outcome = 'scheduled' THEN $1 ELSE p.paid_event_id END,
        paid_at = CASE WHEN i.outcome = 'scheduled' THEN now() ELSE p.paid_at END,
        next_attempt_at = CASE WHEN i.outcome = 'scheduled' THEN now() ELSE NULL END,
        attempts = 0,
        last_error = NULL,
        updated_at = now()
    FROM inserted i
    WHERE p.id = i.purchase_id AND i.outcome IN ('scheduled', 'canceled')
    RETURNING p.id
)
SELECT EXISTS (SELECT 1 FROM inserted) AS new,
       (SELECT outcome FROM inserted) AS outcome,
       (SELECT purchase_id FROM inserted) AS purchase_id,
       (SELECT count(*) FROM moved) AS moved
"#;

/// Records a verified event. `raw` is the event JSON exactly as received.
pub async fn record(
    db: impl PgExecutor<'_>,
    event: &Event,
    raw: &serde_json::value::RawValue,
    source: &str,
) -> sqlx::Result<Recorded> {
    let action = EventAction::for_type(&event.event_type);
    let (invoice_id, metadata_purchase_id) = event.invoice_refs();
    let row: (bool, Option<String>, Option<String>, i64) = sqlx::query_as(RECORD_EVENT)
        .bind(&event.id)
        .bind(&event.event_type)
        .bind(event.livemode)
        .bind(event.created)
        .bind(invoice_id)
        .bind(metadata_purchase_id)
        .bind(source)
        .bind(raw.get())
        .bind(action.as_str())
        .fetch_one(db)
        .await?;
    Ok(Recorded {
        new: row.0,
        outcome: row.1,
        purchase_id: row.2,
    })
}

/// A recorded event, for replays and operator views.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: String,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub livemode: bool,
    pub stripe_created: i64,
    pub invoice_id: Option<String>,
    pub purchase_id: Option<String>,
    pub outcome: String,
    pub source: String,
    pub payload: sqlx::types::Json<serde_json::Value>,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

pub async fn find(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<StoredEvent>> {
    sqlx::query_as("SELECT * FROM stripe_events WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}
