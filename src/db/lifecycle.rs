//! The SQL side of the purchase state machine: one fragment finds the purchase an invoice belongs
//! to, one family of statements applies [`lifecycle::decide`]'s table to it.
//!
//! Every path that learns something about an invoice (the webhook's recording statement, re-sync,
//! replay, the sweeper, the matcher, creditd's own cancel) goes through [`apply_sql`], joined with
//! [`lifecycle::decision_table_sql`], so none of them restates the rules.
//!
//! These statements are the one place creditd does not use `sqlx::query!`: they are composed at
//! start-up from the fragments above and from the Rust decision table, so that the SQL cannot
//! drift from `decide`. `query!` needs a literal. Every one of them runs in the test suite, and
//! `tests/api/plans.rs` checks the hot ones' plans.

use std::sync::LazyLock;

use sqlx::PgExecutor;

use crate::ids::{EventId, InvoiceId, PurchaseId};
use crate::purchase::PurchaseStatus;
use crate::purchase::lifecycle::{self, Happening, Outcome};

/// True when purchase `p` is the one the invoice belongs to: it recorded the invoice, or creditd
/// created the invoice (its metadata names the purchase) and the purchase has not recorded it yet.
/// `invoice` and `metadata_purchase` are SQL expressions (parameters or columns).
pub fn belongs_to_invoice(invoice: &str, metadata_purchase: &str) -> String {
    format!(
        "(p.invoice_id = {invoice} OR (p.id = {metadata_purchase} \
         AND (p.invoice_id IS NULL OR p.invoice_id = {invoice})))"
    )
}

/// A `SELECT` of the purchase an invoice belongs to (id, status, paid_before), preferring the one
/// that recorded the invoice, locked so the decision and the update see the same row.
/// `guard` is an extra SQL condition (for example "the event is new").
pub fn locked_target(invoice: &str, metadata_purchase: &str, from: &str, guard: &str) -> String {
    format!(
        "SELECT p.id, p.status, p.paid_at IS NOT NULL AS paid_before \
         FROM purchases p{from} \
         WHERE {guard} AND {belongs} \
         ORDER BY (p.invoice_id = {invoice}) DESC NULLS LAST \
         LIMIT 1 \
         FOR UPDATE OF p",
        belongs = belongs_to_invoice(invoice, metadata_purchase)
    )
}

/// The decision for the row `target` (which may be empty): `purchase_id`, `next_status` and
/// `outcome`, with `unmatched` when no purchase belongs to the invoice.
pub fn decided_sql(happening: &str) -> String {
    decided_for("(SELECT 1) AS one", "true", happening, "")
}

/// The decision for each row of `rows`, joined to its row of `target` by `target_on`: the same
/// columns as [`decided_sql`], after `columns` (SQL ending in a comma, or empty) taken from `rows`.
pub fn decided_for(rows: &str, target_on: &str, happening: &str, columns: &str) -> String {
    format!(
        "SELECT {columns} t.id AS purchase_id, decisions.next_status, \
                CASE WHEN t.id IS NULL THEN 'unmatched' ELSE decisions.outcome END AS outcome \
         FROM {rows} \
         LEFT JOIN target t ON {target_on} \
         LEFT JOIN {table} ON decisions.status = t.status \
             AND decisions.paid_before = t.paid_before AND decisions.happening = {happening}",
        table = lifecycle::decision_table_sql()
    )
}

/// The `UPDATE` that carries out the decisions in `source` (rows of `purchase_id`, `next_status`,
/// `outcome`); `invoice` and `event` are SQL expressions for the invoice id and the paid event id.
pub fn apply_sql(source: &str, invoice: &str, event: &str) -> String {
    format!(
        "UPDATE purchases p
         SET status = COALESCE(d.next_status, p.status),
             invoice_id = COALESCE(p.invoice_id, {invoice}),
             uncollectible_at = CASE WHEN d.outcome = 'noted'
                                     THEN COALESCE(p.uncollectible_at, now()) ELSE p.uncollectible_at END,
             paid_event_id = CASE WHEN d.next_status = 'granting'
                                  THEN COALESCE({event}, p.paid_event_id) ELSE p.paid_event_id END,
             paid_at = CASE WHEN d.next_status = 'granting' THEN now() ELSE p.paid_at END,
             next_attempt_at = CASE WHEN d.next_status = 'granting' THEN now()
                                    WHEN d.next_status IS NOT NULL THEN NULL
                                    ELSE p.next_attempt_at END,
             attempts = CASE WHEN d.next_status IS NOT NULL THEN 0 ELSE p.attempts END,
             last_error = CASE WHEN d.next_status IS NOT NULL THEN NULL ELSE p.last_error END,
             updated_at = now()
         FROM {source} d
         WHERE p.id = d.purchase_id AND (d.next_status IS NOT NULL OR d.outcome = 'noted')
         RETURNING p.id"
    )
}

/// Applies one happening to the purchase an invoice belongs to. Used by every catch-up path
/// (re-sync over invoices, replay, the sweeper) and by creditd's own cancel.
static APPLY_HAPPENING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH target AS ({target}),
              decided AS ({decided}),
              moved AS ({apply})
         SELECT d.purchase_id, d.outcome, EXISTS (SELECT 1 FROM moved) AS moved
         FROM decided d",
        target = locked_target("$1", "$2", "", "true"),
        decided = decided_sql("$4::text"),
        apply = apply_sql("decided", "$1", "$3"),
    )
});

/// Applies one happening to a purchase named by id: creditd's own cancel, after it voided the
/// invoice (or when there is none).
static APPLY_TO_PURCHASE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH target AS (
             SELECT p.id, p.status, p.paid_at IS NOT NULL AS paid_before
             FROM purchases p WHERE p.id = $1 FOR UPDATE OF p),
              decided AS ({decided}),
              moved AS ({apply})
         SELECT d.purchase_id, d.outcome, EXISTS (SELECT 1 FROM moved) AS moved
         FROM decided d",
        decided = decided_sql("$2::text"),
        apply = apply_sql("decided", "NULL", "NULL"),
    )
});

pub async fn apply_to_purchase(
    db: impl PgExecutor<'_>,
    purchase_id: &str,
    happening: Happening,
) -> sqlx::Result<Applied> {
    let query = sqlx::query_as(&APPLY_TO_PURCHASE)
        .bind(purchase_id)
        .bind(happening.as_str());
    applied(query.fetch_one(db).await?)
}

fn applied(row: (Option<PurchaseId>, Outcome, bool)) -> sqlx::Result<Applied> {
    let (purchase_id, outcome, _moved) = row;
    Ok(Applied {
        purchase_id,
        outcome,
    })
}

/// What applying a happening found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub purchase_id: Option<PurchaseId>,
    pub outcome: Outcome,
}

pub async fn apply_happening(
    db: impl PgExecutor<'_>,
    invoice_id: &InvoiceId,
    metadata_purchase_id: Option<&str>,
    paid_event_id: Option<&EventId>,
    happening: Happening,
) -> sqlx::Result<Applied> {
    let query = sqlx::query_as(&APPLY_HAPPENING)
        .bind(invoice_id)
        .bind(metadata_purchase_id)
        .bind(paid_event_id)
        .bind(happening.as_str());
    applied(query.fetch_one(db).await?)
}

/// How long after its creation a purchase is still checked by the matcher. The matcher only
/// closes the window where a purchase's registration and its invoice's `invoice.paid` commit at
/// the same moment and neither statement sees the other; every later payment is applied by the
/// statement that records it. Bounding it keeps the matcher's cost independent of history.
const MATCHER_HORIZON: &str = "interval '1 day'";

/// Applies the earliest recorded `invoice.paid` of each purchase in `scope` (an SQL condition on
/// `p`) whose status accepts a payment.
fn match_recorded_payments_sql(scope: &str) -> String {
    format!(
        "WITH due AS (
             SELECT p.id AS purchase_id, decisions.next_status, decisions.outcome,
                    e.id AS event_id, e.invoice_id
             FROM purchases p
             JOIN LATERAL (
                 SELECT e.id, e.invoice_id FROM stripe_events e
                 WHERE e.type = 'invoice.paid' AND {belongs}
                 ORDER BY e.stripe_created LIMIT 1
             ) e ON true
             JOIN {table} ON decisions.status = p.status
                 AND decisions.paid_before = (p.paid_at IS NOT NULL)
                 AND decisions.happening = 'paid' AND decisions.next_status IS NOT NULL
             WHERE {scope}
             FOR UPDATE OF p SKIP LOCKED
         )
         {apply}",
        belongs = belongs_to_invoice("e.invoice_id", "e.metadata_purchase_id"),
        table = lifecycle::decision_table_sql(),
        apply = apply_sql("due", "d.invoice_id", "d.event_id"),
    )
}

static MATCH_RECORDED_PAYMENTS: LazyLock<String> = LazyLock::new(|| {
    match_recorded_payments_sql(&format!("p.created_at > now() - {MATCHER_HORIZON}"))
});

static MATCH_RECORDED_PAYMENT_OF: LazyLock<String> =
    LazyLock::new(|| match_recorded_payments_sql("p.id = $1"));

/// Makes due every recent purchase whose invoice has a recorded `invoice.paid` that its status
/// accepts. Returns how many it moved.
pub async fn match_recorded_payments(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    let moved = sqlx::query(&MATCH_RECORDED_PAYMENTS).execute(db).await?;
    Ok(moved.rows_affected())
}

/// The same for one purchase, as it is registered: a payment recorded before it is applied now.
pub async fn match_recorded_payment_of(
    db: impl PgExecutor<'_>,
    purchase_id: &str,
) -> sqlx::Result<bool> {
    let moved = sqlx::query(&MATCH_RECORDED_PAYMENT_OF)
        .bind(purchase_id)
        .execute(db)
        .await?;
    Ok(moved.rows_affected() == 1)
}

static HAS_RECORDED_PAYMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT EXISTS (
             SELECT 1 FROM purchases p
             JOIN stripe_events e ON e.type = 'invoice.paid' AND {belongs}
             WHERE p.id = $1)",
        belongs = belongs_to_invoice("e.invoice_id", "e.metadata_purchase_id"),
    )
});

/// Whether an `invoice.paid` that belongs to this purchase is recorded.
pub async fn has_recorded_payment(
    db: impl PgExecutor<'_>,
    purchase_id: &str,
) -> sqlx::Result<bool> {
    let (exists,): (bool,) = sqlx::query_as(&HAS_RECORDED_PAYMENT)
        .bind(purchase_id)
        .fetch_one(db)
        .await?;
    Ok(exists)
}

/// The purchase an invoice belongs to, unlocked, for predictions: (id, status, paid before).
pub async fn peek(
    db: impl PgExecutor<'_>,
    invoice_id: Option<&str>,
    metadata_purchase_id: Option<&str>,
) -> sqlx::Result<Option<(PurchaseId, PurchaseStatus, bool)>> {
    let sql = format!(
        "SELECT p.id, p.status, p.paid_at IS NOT NULL FROM purchases p WHERE {} \
         ORDER BY (p.invoice_id = $1) DESC NULLS LAST LIMIT 1",
        belongs_to_invoice("$1", "$2")
    );
    sqlx::query_as(&sql)
        .bind(invoice_id)
        .bind(metadata_purchase_id)
        .fetch_optional(db)
        .await
}

/// What a happening would do, decided by the same function the statements apply.
pub async fn predict(
    db: impl PgExecutor<'_>,
    invoice_id: Option<&str>,
    metadata_purchase_id: Option<&str>,
    happening: Option<Happening>,
) -> sqlx::Result<(Option<PurchaseId>, Outcome)> {
    let Some(happening) = happening else {
        return Ok((None, Outcome::Ignored));
    };
    Ok(match peek(db, invoice_id, metadata_purchase_id).await? {
        None => (None, Outcome::Unmatched),
        Some((id, status, paid_before)) => (
            Some(id),
            lifecycle::decide(status, paid_before, happening).outcome,
        ),
    })
}
