//! Purchases: creating them, reading them, and the work queue of purchases due for a worker.

use std::time::Duration;

use sqlx::PgExecutor;
use sqlx::types::Json;

use crate::purchase::request::NewPurchase;
use crate::purchase::{Purchase, PurchaseStatus};

/// Inserts a purchase. When its invoice already has a recorded `invoice.paid`, it starts out due
/// for granting, so a purchase registered after its payment is fulfilled on registration.
/// A purchase that creditd funds is left to the request that created it for `funding_grace`;
/// workers take it over only if that request dies. Returns None when the client's idempotency
/// key is already taken.
pub async fn insert(
    db: impl PgExecutor<'_>,
    id: &str,
    new: &NewPurchase,
    livemode: bool,
    idempotency_key: Option<&str>,
    request_hash: &str,
    funding_grace: Duration,
) -> sqlx::Result<Option<Purchase>> {
    sqlx::query_as(
        r#"
        INSERT INTO purchases (id, status, customer, amount, currency, invoice_id, livemode, credit,
                               description, metadata, funding, idempotency_key, request_hash,
                               next_attempt_at, paid_event_id, paid_at)
        SELECT $1, CASE WHEN $11::jsonb IS NOT NULL THEN 'creating_invoice'
                        WHEN paid.id IS NOT NULL THEN 'granting' ELSE 'awaiting_payment' END,
               $2, $3, $4, $5, $6, $7, $8, $9, $11, $10, $12,
               CASE WHEN $11::jsonb IS NOT NULL THEN now() + make_interval(secs => $13)
                    WHEN paid.id IS NOT NULL THEN now() END,
               paid.id, CASE WHEN paid.id IS NOT NULL THEN now() END
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (
            SELECT id FROM stripe_events
            WHERE type = 'invoice.paid' AND invoice_id = $5 ORDER BY stripe_created LIMIT 1
        ) paid ON true
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING *
        "#,
    )
    .bind(id)
    .bind(&new.customer)
    .bind(new.amount)
    .bind(new.currency.as_str())
    .bind(new.invoice_id.as_deref())
    .bind(livemode)
    .bind(Json(&new.credit))
    .bind(new.description.as_deref())
    .bind(Json(&new.metadata))
    .bind(idempotency_key)
    .bind(new.funding.as_ref().map(Json))
    .bind(request_hash)
    .bind(funding_grace.as_secs_f64())
    .fetch_optional(db)
    .await
}

pub async fn find(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<Purchase>> {
    sqlx::query_as("SELECT * FROM purchases WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The purchase created under a client idempotency key; its `request_hash` tells whether a retry
/// came with the same body.
pub async fn find_by_idempotency_key(
    db: impl PgExecutor<'_>,
    key: &str,
) -> sqlx::Result<Option<Purchase>> {
    sqlx::query_as("SELECT * FROM purchases WHERE idempotency_key = $1")
        .bind(key)
        .fetch_optional(db)
        .await
}

/// A purchase claimed by a worker, and whether it was taken over from an expired lease.
pub struct Claimed {
    pub purchase: Purchase,
    pub taken_over: bool,
}

/// Claims up to `limit` due purchases for `owner` with a lease. `SKIP LOCKED` lets replicas claim
/// side by side; the lease (not a held transaction) keeps others off while Stripe is called.
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    owner: &str,
    lease: Duration,
    limit: i64,
) -> sqlx::Result<Vec<Claimed>> {
    let rows: Vec<ClaimedRow> = sqlx::query_as(
        r#"
        WITH due AS (
            SELECT id, lease_expires_at IS NOT NULL AS taken_over
            FROM purchases
            WHERE status IN ('creating_invoice', 'granting')
              AND next_attempt_at <= now()
              AND (lease_expires_at IS NULL OR lease_expires_at < now())
            ORDER BY next_attempt_at
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        )
        UPDATE purchases p
        SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),
            attempts = attempts + 1, updated_at = now()
        FROM due
        WHERE p.id = due.id
        RETURNING p.*, due.taken_over
        "#,
    )
    .bind(owner)
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Claimed {
            purchase: row.purchase,
            taken_over: row.taken_over,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    purchase: Purchase,
    taken_over: bool,
}

/// Write-ahead for a grant request: committed before the request leaves, so any later attempt
/// knows to look for an existing grant first. Also renews the lease. False if the lease is lost.
pub async fn mark_grant_requested(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    lease: Duration,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        r#"
        UPDATE purchases
        SET grant_requested = true, lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
        WHERE id = $1 AND status = 'granting' AND lease_owner = $2 AND lease_expires_at > now()
        "#,
    )
    .bind(id)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records the grant. Safe without the lease: the grant exists, and whoever else holds the
/// purchase can only find or replay the same one.
pub async fn mark_granted(
    db: impl PgExecutor<'_>,
    id: &str,
    grant_id: &str,
) -> sqlx::Result<Option<Purchase>> {
    sqlx::query_as(
        r#"
        UPDATE purchases
        SET status = 'granted', credit_grant_id = $2, granted_at = now(), last_error = NULL,
            next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND status = 'granting'
        RETURNING *
        "#,
    )
    .bind(id)
    .bind(grant_id)
    .fetch_optional(db)
    .await
}

/// Ends the attempt in a final state (`rejected`, `failed`) if this worker still holds the lease.
pub async fn finish(
    db: impl PgExecutor<'_>,
    claimed: &Purchase,
    owner: &str,
    status: PurchaseStatus,
    error: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        r#"
        UPDATE purchases
        SET status = $3, last_error = $4, next_attempt_at = NULL,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND lease_owner = $2 AND status = $5
        "#,
    )
    .bind(&claimed.id)
    .bind(owner)
    .bind(status.as_str())
    .bind(error)
    .bind(&claimed.status)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Releases the lease and schedules the next attempt; optionally moves to a fresh grant key.
pub async fn retry_later(
    db: impl PgExecutor<'_>,
    claimed: &Purchase,
    owner: &str,
    delay: Duration,
    error: &str,
    bump_grant_key: bool,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        r#"
        UPDATE purchases
        SET last_error = $3, next_attempt_at = now() + make_interval(secs => $4),
            grant_key_generation = grant_key_generation + CASE WHEN $5 THEN 1 ELSE 0 END,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND lease_owner = $2 AND status = $6
        "#,
    )
    .bind(&claimed.id)
    .bind(owner)
    .bind(error)
    .bind(delay.as_secs_f64())
    .bind(bump_grant_key)
    .bind(&claimed.status)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Stores the invoice creditd just created, as soon as Stripe returned it.
pub async fn set_invoice(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    invoice_id: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE purchases SET invoice_id = $3, updated_at = now()
         WHERE id = $1 AND lease_owner = $2 AND (invoice_id IS NULL OR invoice_id = $3)",
    )
    .bind(id)
    .bind(owner)
    .bind(invoice_id)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends funding: the invoice is open (or already paid or voided). If a webhook moved the purchase
/// on meanwhile, its status stays as the webhook left it; the lease is released either way.
pub async fn invoice_ready(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    next: PurchaseStatus,
    hosted_invoice_url: Option<&str>,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        r#"
        UPDATE purchases
        SET status = CASE WHEN status = 'creating_invoice' THEN $3 ELSE status END,
            hosted_invoice_url = COALESCE($4, hosted_invoice_url),
            next_attempt_at = CASE WHEN status = 'creating_invoice' AND $3 = 'granting' THEN now()
                                   WHEN status = 'creating_invoice' THEN NULL ELSE next_attempt_at END,
            paid_at = CASE WHEN status = 'creating_invoice' AND $3 = 'granting' THEN now() ELSE paid_at END,
            attempts = CASE WHEN status = 'creating_invoice' THEN 0 ELSE attempts END,
            last_error = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND lease_owner = $2
        "#,
    )
    .bind(id)
    .bind(owner)
    .bind(next.as_str())
    .bind(hosted_invoice_url)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives the lease back without counting the attempt, so work cut short by shutdown is picked up
/// at once by another replica.
pub async fn release(db: impl PgExecutor<'_>, id: &str, owner: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE purchases SET lease_owner = NULL, lease_expires_at = NULL, attempts = greatest(attempts - 1, 0)
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .execute(db)
    .await?;
    Ok(())
}

/// Moves unpaid purchases whose invoice has a recorded `invoice.paid` to granting. The webhook
/// statement and purchase registration each do this for their own row; this closes the window
/// where both commit at the same moment and neither sees the other.
pub async fn match_recorded_payments(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    let result = sqlx::query(
        r#"
        UPDATE purchases p
        SET status = 'granting', paid_event_id = e.id, paid_at = now(), next_attempt_at = now(),
            invoice_id = COALESCE(p.invoice_id, e.invoice_id), attempts = 0, updated_at = now()
        FROM stripe_events e
        WHERE p.status IN ('awaiting_payment', 'creating_invoice')
          AND e.type = 'invoice.paid'
          AND (e.invoice_id = p.invoice_id OR (e.metadata_purchase_id = p.id AND p.invoice_id IS NULL))
        "#,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

/// Counts per status and the age of the oldest purchase paid but not granted, for metrics.
pub async fn gauges(db: impl PgExecutor<'_> + Copy) -> sqlx::Result<(Vec<(String, i64)>, i64)> {
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM purchases GROUP BY status")
            .fetch_all(db)
            .await?;
    let oldest: (Option<f64>,) = sqlx::query_as(
        "SELECT extract(epoch FROM now() - min(paid_at))::float8 FROM purchases WHERE status = 'granting'",
    )
    .fetch_one(db)
    .await?;
    Ok((by_status, oldest.0.unwrap_or(0.0) as i64))
}

/// Claims one purchase for work in the request that created it, if no one else holds it.
pub async fn claim_one(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    lease: Duration,
) -> sqlx::Result<Option<Purchase>> {
    sqlx::query_as(
        r#"
        UPDATE purchases
        SET lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3),
            attempts = attempts + 1, updated_at = now()
        WHERE id = $1 AND status IN ('creating_invoice', 'granting')
          AND (lease_expires_at IS NULL OR lease_expires_at < now())
        RETURNING *
        "#,
    )
    .bind(id)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_optional(db)
    .await
}

/// A page of purchases, newest first. None when `starting_after` names no purchase.
pub async fn list(
    db: impl PgExecutor<'_> + Copy,
    customer: Option<&str>,
    status: Option<PurchaseStatus>,
    starting_after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Option<Vec<Purchase>>> {
    if let Some(cursor) = starting_after
        && find(db, cursor).await?.is_none()
    {
        return Ok(None);
    }
    let page = sqlx::query_as(
        r#"
        SELECT * FROM purchases
        WHERE ($1::text IS NULL OR customer = $1)
          AND ($2::text IS NULL OR status = $2)
          AND ($3::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM purchases WHERE id = $3))
        ORDER BY created_at DESC, id DESC
        LIMIT $4
        "#,
    )
    .bind(customer)
    .bind(status.map(PurchaseStatus::as_str))
    .bind(starting_after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(Some(page))
}

/// Cancels a purchase that was never paid. None when it was paid (or moved on) meanwhile.
pub async fn cancel(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<Purchase>> {
    sqlx::query_as(
        r#"
        UPDATE purchases
        SET status = 'canceled', next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND (status = 'awaiting_payment' OR (status = 'failed' AND paid_at IS NULL))
        RETURNING *
        "#,
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// What [`mark_paid`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidMatch {
    /// The purchase the invoice belongs to, if any.
    pub purchase_id: Option<String>,
    /// Its status before the update.
    pub status: Option<String>,
    /// True when this call moved it to `granting`.
    pub scheduled: bool,
}

impl PaidMatch {
    /// scheduled | already_<status> | unmatched, as the webhook statement reports.
    pub fn outcome(&self) -> String {
        match (&self.status, self.scheduled) {
            (_, true) => "scheduled".into(),
            (Some(status), false) => format!("already_{status}"),
            (None, false) => "unmatched".into(),
        }
    }
}

/// Makes the purchase paid by `invoice_id` (or named by `metadata_purchase_id` on an invoice creditd
/// created) due for granting, if and only if it is still unpaid. The row is locked and the status
/// re-checked in the UPDATE, so a webhook, a re-sync, a replay and the sweeper racing for the same
/// invoice schedule it once; the grant itself only ever comes from a worker running `fulfil`.
/// Used by re-syncs over invoices, replays and the sweeper.
pub async fn mark_paid(
    db: impl PgExecutor<'_>,
    invoice_id: &str,
    metadata_purchase_id: Option<&str>,
    paid_event_id: Option<&str>,
) -> sqlx::Result<PaidMatch> {
    move_unpaid(
        db,
        invoice_id,
        metadata_purchase_id,
        paid_event_id,
        PurchaseStatus::Granting,
    )
    .await
}

/// Cancels the unpaid purchase of a voided (or uncollectible) invoice, as the webhook statement
/// does; `scheduled` in the answer then means "canceled now".
pub async fn mark_canceled(
    db: impl PgExecutor<'_>,
    invoice_id: &str,
    metadata_purchase_id: Option<&str>,
) -> sqlx::Result<PaidMatch> {
    move_unpaid(
        db,
        invoice_id,
        metadata_purchase_id,
        None,
        PurchaseStatus::Canceled,
    )
    .await
}

/// Moves the purchase matching an invoice to `next` (granting or canceled) only if it is unpaid.
async fn move_unpaid(
    db: impl PgExecutor<'_>,
    invoice_id: &str,
    metadata_purchase_id: Option<&str>,
    paid_event_id: Option<&str>,
    next: PurchaseStatus,
) -> sqlx::Result<PaidMatch> {
    let row: (Option<String>, Option<String>, bool) = sqlx::query_as(
        r#"
        WITH target AS (
            SELECT p.id, p.status
            FROM purchases p
            WHERE p.invoice_id = $1 OR (p.id = $2 AND (p.invoice_id IS NULL OR p.invoice_id = $1))
            ORDER BY (p.invoice_id = $1) DESC NULLS LAST
            LIMIT 1
            FOR UPDATE OF p
        ), moved AS (
            UPDATE purchases p
            SET status = $4, invoice_id = COALESCE(p.invoice_id, $1),
                paid_event_id = CASE WHEN $4 = 'granting' THEN COALESCE($3, p.paid_event_id) ELSE p.paid_event_id END,
                paid_at = CASE WHEN $4 = 'granting' THEN now() ELSE p.paid_at END,
                next_attempt_at = CASE WHEN $4 = 'granting' THEN now() END,
                attempts = 0, last_error = NULL, updated_at = now()
            FROM target t
            WHERE p.id = t.id AND p.status IN ('awaiting_payment', 'creating_invoice')
            RETURNING p.id
        )
        SELECT t.id, t.status, EXISTS (SELECT 1 FROM moved)
        FROM (SELECT 1) AS one LEFT JOIN target t ON true
        "#,
    )
    .bind(invoice_id)
    .bind(metadata_purchase_id)
    .bind(paid_event_id)
    .bind(next.as_str())
    .fetch_one(db)
    .await?;
    Ok(PaidMatch {
        purchase_id: row.0,
        status: row.1,
        scheduled: row.2,
    })
}

/// Claims up to `limit` unpaid purchases with an invoice for one sweep: those checked longest ago
/// (or never) first, skipping rows another replica is claiming, and not re-checked within
/// `min_age`. Returns (purchase id, invoice id).
pub async fn claim_for_sweep(
    db: impl PgExecutor<'_>,
    limit: i64,
    min_age: Duration,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        r#"
        WITH picked AS (
            SELECT id FROM purchases
            WHERE status = 'awaiting_payment' AND invoice_id IS NOT NULL
              AND (swept_at IS NULL OR swept_at < now() - make_interval(secs => $2))
            ORDER BY swept_at NULLS FIRST, created_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE purchases p SET swept_at = now()
        FROM picked WHERE p.id = picked.id
        RETURNING p.id, p.invoice_id
        "#,
    )
    .bind(limit)
    .bind(min_age.as_secs_f64())
    .fetch_all(db)
    .await
}

/// Whether an `invoice.paid` for this purchase's invoice (or naming it in metadata) is recorded.
pub async fn has_paid_event(db: impl PgExecutor<'_>, purchase: &Purchase) -> sqlx::Result<bool> {
    let row: (bool,) = sqlx::query_as(
        r#"
        SELECT EXISTS (
            SELECT 1 FROM stripe_events
            WHERE type = 'invoice.paid'
              AND ((invoice_id IS NOT NULL AND invoice_id = $1) OR metadata_purchase_id = $2)
        )
        "#,
    )
    .bind(purchase.invoice_id.as_deref())
    .bind(&purchase.id)
    .fetch_one(db)
    .await?;
    Ok(row.0)
}

/// Sends a `failed` (or, forced, `rejected`) purchase back to `next`, due now, with its attempts
/// reset. Conditional on the status the caller saw, so two retries cannot both act. The grant
/// write-ahead flag and key generation are kept: fulfilment still looks for an earlier grant first.
pub async fn retry(
    db: impl PgExecutor<'_>,
    id: &str,
    from: PurchaseStatus,
    next: PurchaseStatus,
) -> sqlx::Result<Option<Purchase>> {
    sqlx::query_as(
        r#"
        UPDATE purchases
        SET status = $3, attempts = 0, last_error = NULL,
            next_attempt_at = CASE WHEN $3 IN ('granting', 'creating_invoice') THEN now() END,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND status = $2
        RETURNING *
        "#,
    )
    .bind(id)
    .bind(from.as_str())
    .bind(next.as_str())
    .fetch_optional(db)
    .await
}
