//! Rows behind reversals: the payments linked to a purchase, the refunds and disputes read from
//! Stripe, and the grant moves written ahead of every Stripe call (see `crate::reversal`).

use std::sync::LazyLock;

use sqlx::{PgConnection, PgExecutor};

use super::events::Recorded;
use super::lifecycle;
use crate::ids::PurchaseId;
use crate::purchase::PurchaseStatus;
use crate::purchase::lifecycle::Outcome;
use crate::reversal::ReversalKind;
use crate::stripe::types::{Event, InvoicePayment, PaymentRefs};

/// Records a refund, dispute or credit-note event and applies it to the purchase whose payment it
/// names, in one statement: the payment is found among the linked payments (or, for a credit
/// note, by its invoice) in one indexed lookup. Whatever the decision, the purchase's
/// `reversal_sync_due` is set, so the worker reads Stripe's refunds and disputes again. An event
/// whose payment no purchase has linked yet is recorded `linking` and queued for the resolver.
static RECORD_PAYMENT_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
WITH fresh AS (
    SELECT NOT EXISTS (SELECT 1 FROM stripe_events WHERE id = $1) AS is_new
), link AS (
    SELECT purchase_id FROM (
        SELECT pp.purchase_id FROM purchase_payments pp WHERE pp.payment_intent = $7
        UNION ALL
        SELECT pp.purchase_id FROM purchase_payments pp WHERE pp.charge = $8
        UNION ALL
        SELECT p.id FROM purchases p WHERE p.invoice_id = $9
    ) found LIMIT 1
), target AS (
    SELECT p.id, p.status, p.paid_at IS NOT NULL AS paid_before
    FROM purchases p, fresh
    WHERE fresh.is_new AND p.id = (SELECT purchase_id FROM link)
    FOR UPDATE OF p
), decided AS (
    SELECT d.purchase_id, d.next_status,
           CASE WHEN d.purchase_id IS NULL AND ($7::text IS NOT NULL OR $8::text IS NOT NULL)
                THEN 'linking' ELSE d.outcome END AS outcome
    FROM ({decided}) d
), inserted AS (
    INSERT INTO stripe_events (id, type, livemode, stripe_created, invoice_id, purchase_id,
                               outcome, source, payload)
    SELECT $1, $2, $3, $4, $9, d.purchase_id, d.outcome, $5, CAST($6 AS json)
    FROM decided d, fresh
    WHERE fresh.is_new
    ON CONFLICT (id) DO NOTHING
    RETURNING purchase_id, outcome
), moved AS (
    {apply}
), queued AS (
    INSERT INTO unlinked_payment_events (event_id, payment_intent, charge)
    SELECT $1, $7, $8 FROM inserted WHERE inserted.outcome = 'linking'
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM inserted) AS new,
       (SELECT outcome FROM inserted) AS outcome,
       (SELECT purchase_id FROM inserted) AS purchase_id,
       (SELECT count(*) FROM moved) + (SELECT count(*) FROM queued) AS changed
"#,
        decided = lifecycle::decided_sql("'payment_reversal'"),
        apply = apply_reversal_sql(
            "(SELECT d.* FROM decided d JOIN inserted i ON i.purchase_id = d.purchase_id)"
        ),
    )
});

/// The `UPDATE` that carries out a payment-reversal decision from `source` (rows of
/// `purchase_id`, `next_status`): schedules the purchase when the table moves it to `reversing`,
/// and in every case marks its refunds and disputes as due to be read again.
fn apply_reversal_sql(source: &str) -> String {
    format!(
        "UPDATE purchases p
         SET status = COALESCE(d.next_status, p.status),
             reversal_sync_due = true,
             next_attempt_at = CASE WHEN d.next_status IS NOT NULL THEN now() ELSE p.next_attempt_at END,
             attempts = CASE WHEN d.next_status IS NOT NULL THEN 0 ELSE p.attempts END,
             last_error = CASE WHEN d.next_status IS NOT NULL THEN NULL ELSE p.last_error END,
             updated_at = now()
         FROM {source} d
         WHERE p.id = d.purchase_id
         RETURNING p.id"
    )
}

pub async fn record_payment_event(
    db: impl PgExecutor<'_>,
    event: &Event,
    raw: &serde_json::value::RawValue,
    source: &str,
) -> sqlx::Result<Recorded> {
    let PaymentRefs {
        payment_intent,
        charge,
        invoice,
    } = event.payment_refs();
    // Not `query!`: composed from the state machine's fragments (see RECORD_PAYMENT_EVENT).
    let row: (bool, Option<Outcome>, Option<PurchaseId>, i64) =
        sqlx::query_as(&RECORD_PAYMENT_EVENT)
            .bind(&event.id)
            .bind(&event.event_type)
            .bind(event.livemode)
            .bind(event.created)
            .bind(source)
            .bind(raw.get())
            .bind(payment_intent)
            .bind(charge)
            .bind(invoice)
            .fetch_one(db)
            .await?;
    Ok(Recorded {
        new: row.0,
        outcome: row.1,
        purchase_id: row.2,
    })
}

/// Applies a payment reversal to a purchase named by id (the resolver, once it linked a payment).
static APPLY_TO_PURCHASE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH target AS (
             SELECT p.id, p.status, p.paid_at IS NOT NULL AS paid_before
             FROM purchases p WHERE p.id = $1 FOR UPDATE OF p),
              decided AS ({decided}),
              moved AS ({apply})
         SELECT d.outcome FROM decided d",
        decided = lifecycle::decided_sql("'payment_reversal'"),
        apply = apply_reversal_sql("decided"),
    )
});

/// A payment of a purchase's invoice, as linked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkedPayment {
    pub invoice_payment_id: String,
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    pub amount_paid: i64,
    pub currency: String,
}

/// Links the invoice's payments to the purchase, and with them every queued refund or dispute
/// event about those payments. Returns whether the purchase's refunds and disputes are due to be
/// read (an earlier event, or one just linked, asked for it).
pub async fn link_payments(
    db: &mut PgConnection,
    purchase_id: &PurchaseId,
    payments: &[InvoicePayment],
) -> sqlx::Result<bool> {
    let ids: Vec<&str> = payments.iter().map(|p| p.id.as_str()).collect();
    let intents: Vec<Option<&str>> = payments
        .iter()
        .map(|p| p.payment.payment_intent.as_deref())
        .collect();
    let charges: Vec<Option<&str>> = payments
        .iter()
        .map(|p| p.payment.charge.as_deref())
        .collect();
    let amounts: Vec<i64> = payments
        .iter()
        .map(|p| p.amount_paid.unwrap_or(0))
        .collect();
    let currencies: Vec<&str> = payments.iter().map(|p| p.currency.as_str()).collect();
    let due = sqlx::query_scalar!(
        r#"
        WITH linked AS (
            INSERT INTO purchase_payments (invoice_payment_id, purchase_id, payment_intent, charge,
                                           amount_paid, currency)
            SELECT p.id, $1, p.intent, p.charge, p.amount, p.currency
            FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])
                 AS p(id, intent, charge, amount, currency)
            ON CONFLICT (invoice_payment_id) DO NOTHING
            RETURNING payment_intent, charge
        ), waiting AS (
            UPDATE unlinked_payment_events u
            SET state = 'linked', purchase_id = $1, updated_at = now()
            WHERE u.state = 'pending'
              AND (u.payment_intent = ANY($3::text[]) OR u.charge = ANY($4::text[]))
            RETURNING u.event_id
        ), events AS (
            UPDATE stripe_events e SET purchase_id = $1, outcome = 'noted'
            FROM waiting w WHERE e.id = w.event_id
            RETURNING e.id
        )
        UPDATE purchases
        SET reversal_sync_due = reversal_sync_due OR EXISTS (SELECT 1 FROM events)
        WHERE id = $1
        RETURNING reversal_sync_due
        "#,
        purchase_id as &PurchaseId,
        &ids as &[&str],
        &intents as &[Option<&str>],
        &charges as &[Option<&str>],
        &amounts,
        &currencies as &[&str],
    )
    .fetch_one(db)
    .await?;
    Ok(due)
}

pub async fn payments_of(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
) -> sqlx::Result<Vec<LinkedPayment>> {
    sqlx::query_as!(
        LinkedPayment,
        "SELECT invoice_payment_id, payment_intent, charge, amount_paid, currency
         FROM purchase_payments WHERE purchase_id = $1 ORDER BY linked_at, invoice_payment_id",
        purchase_id as &PurchaseId,
    )
    .fetch_all(db)
    .await
}

/// Clears `reversal_sync_due` before the worker reads Stripe, if it still holds the lease: an
/// event recorded while it reads sets the flag again and the pass does not end.
pub async fn begin_sync(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
    owner: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        "UPDATE purchases SET reversal_sync_due = false, updated_at = now()
         WHERE id = $1 AND lease_owner = $2 AND lease_expires_at > now()",
        purchase_id as &PurchaseId,
        owner,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A refund, dispute or credit note as read from Stripe.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReversalRow {
    pub id: String,
    pub kind: ReversalKind,
    pub amount: i64,
    pub currency: String,
    pub stripe_status: String,
    pub money_reversed: bool,
    pub first_seen_at: chrono::DateTime<chrono::Utc>,
}

/// Stores what Stripe says now about each refund and dispute of the purchase.
pub async fn upsert_reversals(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
    rows: &[(String, ReversalKind, i64, String, String, bool)],
) -> sqlx::Result<()> {
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    let amounts: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let currencies: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.4.as_str()).collect();
    let reversed: Vec<bool> = rows.iter().map(|r| r.5).collect();
    sqlx::query!(
        r#"
        INSERT INTO reversals (id, purchase_id, kind, amount, currency, stripe_status, money_reversed)
        SELECT r.id, $1, r.kind, r.amount, r.currency, r.status, r.reversed
        FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bool[])
             AS r(id, kind, amount, currency, status, reversed)
        ON CONFLICT (id) DO UPDATE
        SET amount = EXCLUDED.amount, stripe_status = EXCLUDED.stripe_status,
            money_reversed = EXCLUDED.money_reversed, updated_at = now()
        WHERE reversals.purchase_id = EXCLUDED.purchase_id
          AND (reversals.stripe_status, reversals.money_reversed, reversals.amount)
              IS DISTINCT FROM (EXCLUDED.stripe_status, EXCLUDED.money_reversed, EXCLUDED.amount)
        "#,
        purchase_id as &PurchaseId,
        &ids as &[&str],
        &kinds as &[&str],
        &amounts,
        &currencies as &[&str],
        &statuses as &[&str],
        &reversed,
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn reversals_of(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
) -> sqlx::Result<Vec<ReversalRow>> {
    sqlx::query_as!(
        ReversalRow,
        r#"SELECT id, kind AS "kind: ReversalKind", amount, currency, stripe_status, money_reversed,
                  first_seen_at
           FROM reversals WHERE purchase_id = $1 ORDER BY first_seen_at, id"#,
        purchase_id as &PurchaseId,
    )
    .fetch_all(db)
    .await
}

/// Ends a reversing pass in `status` unless another event asked for a new read meanwhile, in
/// which case the purchase stays `reversing` and is due again now. Returns the status it has.
pub async fn finish_pass(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
    owner: &str,
    status: PurchaseStatus,
) -> sqlx::Result<Option<PurchaseStatus>> {
    sqlx::query_scalar!(
        r#"
        UPDATE purchases
        SET status = CASE WHEN reversal_sync_due THEN status ELSE $3 END,
            next_attempt_at = CASE WHEN reversal_sync_due THEN now() ELSE NULL END,
            attempts = CASE WHEN reversal_sync_due THEN 0 ELSE attempts END,
            last_error = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND lease_owner = $2 AND status = 'reversing'
        RETURNING status AS "status: PurchaseStatus"
        "#,
        purchase_id as &PurchaseId,
        owner,
        status as PurchaseStatus,
    )
    .fetch_optional(db)
    .await
}

/// A refund or dispute event whose payment no purchase had linked, due for the resolver.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnlinkedEvent {
    pub event_id: String,
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    pub attempts: i32,
}

/// Takes the next due unlinked event and pushes its next attempt out by `hold`, which acts as its
/// lease. Resolving twice is harmless: linking and applying are both idempotent.
pub async fn claim_unlinked(
    db: impl PgExecutor<'_>,
    hold: std::time::Duration,
) -> sqlx::Result<Option<UnlinkedEvent>> {
    sqlx::query_as!(
        UnlinkedEvent,
        r#"
        UPDATE unlinked_payment_events u
        SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $1),
            updated_at = now()
        WHERE u.event_id = (
            SELECT event_id FROM unlinked_payment_events
            WHERE state = 'pending' AND next_attempt_at <= now()
            ORDER BY next_attempt_at LIMIT 1
            FOR UPDATE SKIP LOCKED)
        RETURNING event_id, payment_intent, charge, attempts
        "#,
        hold.as_secs_f64(),
    )
    .fetch_optional(db)
    .await
}

/// The purchase that recorded this invoice, if any.
pub async fn purchase_of_invoice(
    db: impl PgExecutor<'_>,
    invoice_id: &str,
) -> sqlx::Result<Option<PurchaseId>> {
    sqlx::query_scalar!(
        r#"SELECT id AS "id: PurchaseId" FROM purchases WHERE invoice_id = $1"#,
        invoice_id,
    )
    .fetch_optional(db)
    .await
}

/// Links the payment the resolver found and applies the event to its purchase.
pub async fn resolve_linked(
    db: &mut PgConnection,
    event_id: &str,
    purchase_id: &PurchaseId,
    payment: &InvoicePayment,
) -> sqlx::Result<Outcome> {
    let mut tx = sqlx::Connection::begin(&mut *db).await?;
    link_payments(&mut tx, purchase_id, std::slice::from_ref(payment)).await?;
    sqlx::query!(
        "UPDATE unlinked_payment_events SET state = 'linked', purchase_id = $2, updated_at = now()
         WHERE event_id = $1",
        event_id,
        purchase_id as &PurchaseId,
    )
    .execute(&mut *tx)
    .await?;
    // Not `query!`: composed from the state machine's fragments (see APPLY_TO_PURCHASE).
    let outcome: Outcome = sqlx::query_scalar(&APPLY_TO_PURCHASE)
        .bind(purchase_id)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query!(
        "UPDATE stripe_events SET purchase_id = $2, outcome = $3 WHERE id = $1",
        event_id,
        purchase_id as &PurchaseId,
        outcome.as_string(),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// The payment paid no purchase's invoice: the event stays recorded, as `unmatched`.
pub async fn resolve_unmatched(db: &mut PgConnection, event_id: &str) -> sqlx::Result<()> {
    let mut tx = sqlx::Connection::begin(&mut *db).await?;
    sqlx::query!(
        "UPDATE unlinked_payment_events SET state = 'unmatched', updated_at = now()
         WHERE event_id = $1",
        event_id,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE stripe_events SET outcome = 'unmatched' WHERE id = $1",
        event_id,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Notes why resolving failed; the claim already set when it is tried next.
pub async fn note_unlinked_error(
    db: impl PgExecutor<'_>,
    event_id: &str,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE unlinked_payment_events SET last_error = $2 WHERE event_id = $1",
        event_id,
        error,
    )
    .execute(db)
    .await?;
    Ok(())
}
