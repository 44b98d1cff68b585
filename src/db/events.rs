//! The idempotency table for Stripe events: recording an event and scheduling its work in one statement.

use std::sync::LazyLock;

use sqlx::PgExecutor;

use super::lifecycle;
use crate::ids::PurchaseId;
use crate::purchase::lifecycle::{Happening, Outcome};
use crate::stripe::types::Event;

/// The result of recording one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// False when the event id was already recorded: nothing changed.
    pub new: bool,
    /// What recording did; None for duplicates.
    pub outcome: Option<Outcome>,
    pub purchase_id: Option<PurchaseId>,
}

/// Records the event and, in the same statement, applies it to the purchase it belongs to.
///
/// One statement means one round trip and one commit per event. A duplicate finds its id in the
/// primary key before anything else runs, locks nothing, writes nothing and never parses its
/// payload (it travels as text and becomes jsonb only when inserted); two copies racing past
/// that check meet at `ON CONFLICT`. The purchase row is locked (`FOR UPDATE`) so the outcome
/// written with the event agrees with what the update did. Matching and the decision are the
/// state machine's shared fragments ([`super::lifecycle`]); `$9` is the happening, NULL for an
/// event type creditd does not act on.
pub static RECORD_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
WITH fresh AS (
    SELECT NOT EXISTS (SELECT 1 FROM stripe_events WHERE id = $1) AS is_new
), target AS (
    {target}
), decided AS (
    SELECT d.purchase_id, d.next_status,
           CASE WHEN $9::text IS NULL THEN 'ignored' ELSE d.outcome END AS outcome
    FROM ({decided}) d
), inserted AS (
    INSERT INTO stripe_events (id, type, livemode, stripe_created, invoice_id, metadata_purchase_id,
                               purchase_id, outcome, source, payload)
    SELECT $1, $2, $3, $4, $5, $6, d.purchase_id, d.outcome, $7, CAST($8 AS jsonb)
    FROM decided d, fresh
    WHERE fresh.is_new
    ON CONFLICT (id) DO NOTHING
    RETURNING purchase_id, outcome
), moved AS (
    {apply}
)
SELECT EXISTS (SELECT 1 FROM inserted) AS new,
       (SELECT outcome FROM inserted) AS outcome,
       (SELECT purchase_id FROM inserted) AS purchase_id,
       (SELECT count(*) FROM moved) AS moved
"#,
        target = lifecycle::locked_target(
            "$5",
            "$6",
            ", fresh",
            "fresh.is_new AND $9::text IS NOT NULL"
        ),
        decided = lifecycle::decided_sql("$9::text"),
        apply = lifecycle::apply_sql(
            "(SELECT d.* FROM decided d JOIN inserted i ON i.purchase_id = d.purchase_id)",
            "$5",
            "$1"
        ),
    )
});

/// Records a verified event. `raw` is the event JSON exactly as received.
pub async fn record(
    db: impl PgExecutor<'_>,
    event: &Event,
    raw: &serde_json::value::RawValue,
    source: &str,
) -> sqlx::Result<Recorded> {
    let happening = Happening::for_event_type(&event.event_type);
    let (invoice_id, metadata_purchase_id) = event.invoice_refs();
    // Not `query!`: the statement is composed from the state machine's fragments at start-up
    // (see RECORD_EVENT), and the plan test and the benchmarks run this same text.
    let row: (bool, Option<Outcome>, Option<PurchaseId>, i64) = sqlx::query_as(&RECORD_EVENT)
        .bind(&event.id)
        .bind(&event.event_type)
        .bind(event.livemode)
        .bind(event.created)
        .bind(invoice_id)
        .bind(metadata_purchase_id)
        .bind(source)
        .bind(raw.get())
        .bind(happening.map(Happening::as_str))
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
    pub purchase_id: Option<PurchaseId>,
    pub outcome: Outcome,
    pub source: String,
    pub payload: sqlx::types::Json<serde_json::Value>,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

pub async fn find(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<StoredEvent>> {
    sqlx::query_as!(
        StoredEvent,
        r#"SELECT id, type AS event_type, livemode, stripe_created, invoice_id,
                  purchase_id AS "purchase_id: PurchaseId", outcome AS "outcome: Outcome",
                  source, payload AS "payload: sqlx::types::Json<serde_json::Value>", received_at
           FROM stripe_events WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}

/// Points a recorded event at the purchase a replay scheduled, so the purchase's history shows it.
pub async fn attach_to_purchase(
    db: impl PgExecutor<'_>,
    event_id: &str,
    purchase_id: &PurchaseId,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE stripe_events SET purchase_id = $2 WHERE id = $1 AND purchase_id IS NULL")
        .bind(event_id)
        .bind(purchase_id)
        .execute(db)
        .await?;
    Ok(())
}
