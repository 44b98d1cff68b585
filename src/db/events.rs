//! The idempotency table for Stripe events: recording events and scheduling their work in one statement.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde_json::value::RawValue;
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

/// One verified event waiting to be recorded: the parsed event and its JSON exactly as received.
#[derive(Debug, Clone)]
pub struct EventToRecord {
    pub event: Event,
    pub raw: Box<RawValue>,
    /// `webhook`, `resync` or `replay`.
    pub source: String,
}

impl EventToRecord {
    pub fn new(event: &Event, raw: &RawValue, source: &str) -> Self {
        EventToRecord {
            event: event.clone(),
            raw: raw.to_owned(),
            source: source.to_owned(),
        }
    }

    /// What recording this event asks of its purchase; None for an event type creditd does not
    /// act on (recorded as `ignored`, locking nothing).
    pub fn happening(&self) -> Option<Happening> {
        Happening::for_event_type(&self.event.event_type)
    }

    /// How recording this event finds the purchase it locks: its invoice and the purchase its
    /// metadata names. Both None for an event without a happening, which locks no purchase.
    fn purchase_refs(&self) -> (Option<&str>, Option<&str>) {
        if self.happening().is_none() {
            return (None, None);
        }
        self.event.invoice_refs()
    }
}

/// Records a batch of events and, in the same statement, applies each to the purchase it belongs
/// to. A batch of one is the common case; under load the recorder gathers the events waiting for a
/// connection into one statement, so they share one round trip and one commit (see
/// [`super::recorder`]).
///
/// Per event, this is the recording statement issue 4 built: a duplicate finds its id in the
/// primary key before anything else runs, locks nothing, writes nothing and never parses its
/// payload (it travels as text and PostgreSQL validates it only when inserting it as `json`, the
/// bytes Stripe sent: migration 0012 says why not `jsonb`); two copies racing past that
/// check (in another statement) meet at `ON CONFLICT`. The purchase row is locked (`FOR UPDATE`)
/// so the outcome written with the event agrees with what the update did. Matching and the
/// decision are the state machine's shared fragments ([`super::lifecycle`]).
///
/// The id check is a `LATERAL` subquery with `LIMIT`, which PostgreSQL cannot flatten into a
/// join: each event's id is looked up on its own, never by reading an index whole and hashing it.
/// Which index each lookup uses is the planner's choice, made against the table's size when the
/// statement is planned; the recorder plans it again regularly (see [`super::recorder`]).
///
/// The statement sees one snapshot, so it is only correct when no two events of the batch
/// share an id or a purchase: two decisions taken against the same row would both be made from
/// its old status. The caller guarantees that ([`BatchKeys`]); the inputs are arrays of equal
/// length, `$9` holds each event's happening, NULL for an event type creditd does not act on.
pub static RECORD_EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[], $4::bigint[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::text[])
        WITH ORDINALITY AS i(id, type, livemode, stripe_created, invoice_id, metadata_purchase_id,
                             source, payload, happening, n)
), fresh AS (
    SELECT i.* FROM input i
    LEFT JOIN LATERAL (SELECT true AS found FROM stripe_events e WHERE e.id = i.id LIMIT 1) recorded
        ON true
    WHERE recorded.found IS NULL
), target AS (
    SELECT f.n, t.* FROM fresh f CROSS JOIN LATERAL ({target}) t
), decided AS (
    SELECT d.n, d.event_id, d.invoice_id, d.purchase_id, d.next_status,
           CASE WHEN d.happening IS NULL THEN 'ignored' ELSE d.outcome END AS outcome
    FROM ({decided}) d
), inserted AS (
    INSERT INTO stripe_events (id, type, livemode, stripe_created, invoice_id, metadata_purchase_id,
                               purchase_id, outcome, source, payload)
    SELECT f.id, f.type, f.livemode, f.stripe_created, f.invoice_id, f.metadata_purchase_id,
           d.purchase_id, d.outcome, f.source, CAST(f.payload AS json)
    FROM fresh f JOIN decided d ON d.n = f.n
    ORDER BY f.n
    ON CONFLICT (id) DO NOTHING
    RETURNING id, purchase_id, outcome
), moved AS (
    {apply}
)
SELECT ins.id IS NOT NULL AS new, ins.outcome, ins.purchase_id
FROM input i LEFT JOIN inserted ins ON ins.id = i.id
ORDER BY i.n
"#,
        target = lifecycle::locked_target(
            "f.invoice_id",
            "f.metadata_purchase_id",
            "",
            "f.happening IS NOT NULL"
        ),
        decided = lifecycle::decided_for(
            "fresh f",
            "t.n = f.n",
            "f.happening",
            "f.n, f.id AS event_id, f.invoice_id, f.happening,"
        ),
        apply = lifecycle::apply_sql(
            "(SELECT d.* FROM decided d JOIN inserted i ON i.id = d.event_id)",
            "d.invoice_id",
            "d.event_id"
        ),
    )
});

/// Records verified events in one statement; the answers are in the batch's order. The batch
/// must hold no two events with the same id or purchase (see [`RECORD_EVENTS`]).
///
/// The statement goes through its events in [`lock_order`], whatever order the batch came in. It
/// locks the purchases its events apply to, then inserts their ids into the primary key, each in
/// that order, and holds every lock until it commits. Two statements that took the same locks in
/// opposite orders (another replica's batch, or a re-sync's, holding copies of the same events)
/// would deadlock: PostgreSQL would notice only after `deadlock_timeout` (1 s by default) and
/// abort one, whose events the recorder then records one by one. In one order, the later
/// statement waits for the earlier and then finds its copies recorded.
pub async fn record_batch(
    db: impl PgExecutor<'_>,
    batch: &[EventToRecord],
) -> sqlx::Result<Vec<Recorded>> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&at| lock_order(&batch[at]));
    let mut ids = Vec::with_capacity(batch.len());
    let mut types = Vec::with_capacity(batch.len());
    let mut livemodes = Vec::with_capacity(batch.len());
    let mut created = Vec::with_capacity(batch.len());
    let mut invoices = Vec::with_capacity(batch.len());
    let mut metadata_purchases = Vec::with_capacity(batch.len());
    let mut sources = Vec::with_capacity(batch.len());
    let mut payloads = Vec::with_capacity(batch.len());
    let mut happenings = Vec::with_capacity(batch.len());
    for item in order.iter().map(|&at| &batch[at]) {
        let event = &item.event;
        let (invoice_id, metadata_purchase_id) = event.invoice_refs();
        ids.push(event.id.as_str());
        types.push(event.event_type.as_str());
        livemodes.push(event.livemode);
        created.push(event.created);
        invoices.push(invoice_id);
        metadata_purchases.push(metadata_purchase_id);
        sources.push(item.source.as_str());
        payloads.push(item.raw.get());
        happenings.push(item.happening().map(Happening::as_str));
    }
    // Not `query!`: the statement is composed from the state machine's fragments at start-up
    // (see RECORD_EVENTS), and the plan test and the benchmarks run this same text.
    // `moved` runs though nothing reads it: PostgreSQL carries out every data-modifying CTE.
    let rows: Vec<(bool, Option<Outcome>, Option<PurchaseId>)> = sqlx::query_as(&RECORD_EVENTS)
        .bind(ids)
        .bind(types)
        .bind(livemodes)
        .bind(created)
        .bind(invoices)
        .bind(metadata_purchases)
        .bind(sources)
        .bind(payloads)
        .bind(happenings)
        .fetch_all(db)
        .await?;
    if rows.len() != batch.len() {
        return Err(sqlx::Error::Protocol(format!(
            "recording {} events answered {} rows",
            batch.len(),
            rows.len()
        )));
    }
    // The rows follow the statement's order; the answers, the batch's.
    let mut answers: Vec<Option<Recorded>> = vec![None; batch.len()];
    for (&at, (new, outcome, purchase_id)) in order.iter().zip(rows) {
        answers[at] = Some(Recorded {
            new,
            outcome,
            purchase_id,
        });
    }
    Ok(answers.into_iter().flatten().collect())
}

/// The order a statement takes its events in: by the purchase an event locks (its invoice, or
/// the purchase its metadata names; events that lock none first), then by id. Copies of an event
/// sort alike in every batch, so any two statements take the locks they share in one order.
///
/// The statement keeps that order: its input is the arrays in order, the purchase locks are
/// taken by a `LATERAL` subquery (a nested loop over the input, in order) and the inserts are
/// `ORDER BY` input position. Two different events that reach one purchase by different keys
/// (one by invoice, one by metadata) can still be ordered differently by two statements; then
/// PostgreSQL's deadlock detection is the backstop, as before.
fn lock_order(item: &EventToRecord) -> (Option<&str>, &str) {
    let (invoice_id, metadata_purchase_id) = item.purchase_refs();
    (invoice_id.or(metadata_purchase_id), item.event.id.as_str())
}

/// The ids and purchases a batch touches, so the recorder can keep two events that would meet in
/// one statement (the same id, or the same purchase) apart: the later one waits for the next
/// statement, which sees the earlier one's effect. An event locks a purchase only when it has a
/// happening, and the purchase it locks is found by its invoice or by the purchase its metadata
/// names: two events can reach the same purchase only through the same invoice or the same
/// metadata purchase id (a purchase that recorded an invoice matches no other invoice's metadata).
#[derive(Debug, Default)]
pub struct BatchKeys {
    ids: HashSet<String>,
    invoices: HashSet<String>,
    metadata_purchases: HashSet<String>,
}

impl BatchKeys {
    /// Whether `item` would meet an event already counted here.
    pub fn clashes_with(&self, item: &EventToRecord) -> bool {
        if self.ids.contains(&item.event.id) {
            return true;
        }
        let (invoice_id, metadata_purchase_id) = item.purchase_refs();
        invoice_id.is_some_and(|id| self.invoices.contains(id))
            || metadata_purchase_id.is_some_and(|id| self.metadata_purchases.contains(id))
    }

    pub fn add(&mut self, item: &EventToRecord) {
        self.ids.insert(item.event.id.clone());
        let (invoice_id, metadata_purchase_id) = item.purchase_refs();
        if let Some(id) = invoice_id {
            self.invoices.insert(id.to_owned());
        }
        if let Some(id) = metadata_purchase_id {
            self.metadata_purchases.insert(id.to_owned());
        }
    }

    pub fn remove(&mut self, item: &EventToRecord) {
        self.ids.remove(&item.event.id);
        let (invoice_id, metadata_purchase_id) = item.purchase_refs();
        if let Some(id) = invoice_id {
            self.invoices.remove(id);
        }
        if let Some(id) = metadata_purchase_id {
            self.metadata_purchases.remove(id);
        }
    }
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
    sqlx::query!(
        "UPDATE stripe_events SET purchase_id = $2 WHERE id = $1 AND purchase_id IS NULL",
        event_id,
        purchase_id
    )
    .execute(db)
    .await?;
    Ok(())
}
