//! The work queue: purchases due for a worker, their leases, and the write-ahead records each
//! attempt commits around its Stripe calls (see `fulfilment` and `funding` for why each exists).

use std::time::Duration;

use sqlx::PgExecutor;
use sqlx::types::Json;

use super::purchase_row::PurchaseRow;
use crate::ids::InvoiceId;
use crate::purchase::{Purchase, PurchaseStatus, Settlement};

/// A purchase claimed by a worker, and whether it was taken over from an expired lease.
pub struct Claimed {
    pub purchase: Purchase,
    pub taken_over: bool,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    purchase: Purchase,
    taken_over: bool,
}

/// Claims up to `limit` due purchases for `owner` with a lease. `SKIP LOCKED` lets replicas claim
/// side by side; the lease (not a held transaction) keeps others off while Stripe is called.
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    owner: &str,
    lease: Duration,
    limit: i64,
) -> sqlx::Result<Vec<Claimed>> {
    // Not `query_as!`: the row is the whole purchase plus `taken_over`, and `query_as!` cannot
    // flatten; `Purchase`'s `FromRow` decodes it through the same `PurchaseRow` as the checked
    // statements, and the claim runs in nearly every test.
    let rows: Vec<ClaimedRow> = sqlx::query_as(
        r#"
        WITH due AS (
            SELECT id, lease_expires_at IS NOT NULL AS taken_over
            FROM purchases
            WHERE status IN ('creating_invoice', 'granting', 'reversing')
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

/// Claims one purchase for work in the request that created it, if no one else holds it.
pub async fn claim_one(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    lease: Duration,
) -> sqlx::Result<Option<Purchase>> {
    let row = sqlx::query_as!(
        PurchaseRow,
        r#"
        UPDATE purchases
        SET lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3),
            attempts = attempts + 1, updated_at = now()
        WHERE id = $1 AND status IN ('creating_invoice', 'granting', 'reversing')
          AND (lease_expires_at IS NULL OR lease_expires_at < now())
        RETURNING *
        "#,
        id,
        owner,
        lease.as_secs_f64()
    )
    .fetch_optional(db)
    .await?;
    super::purchase_row::decode_optional(row)
}

/// Write-ahead for a grant request: committed before the request leaves, so any later attempt
/// knows to look for an existing grant first. Fixes the grant's `expires_at` for
/// `expires_after_days` and its value (less refunds before it) the first time, so every request
/// under one key sends the same body, and renews the lease. None if the lease is lost.
pub async fn mark_grant_requested(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    lease: Duration,
    expires_after_days: Option<i64>,
    grant_value: i64,
) -> sqlx::Result<Option<Purchase>> {
    let row = sqlx::query_as!(
        PurchaseRow,
        r#"
        UPDATE purchases
        SET grant_requested = true,
            grant_value = COALESCE(grant_value, $5),
            grant_expires_at = COALESCE(grant_expires_at,
                extract(epoch FROM now() + make_interval(days => $4::int))::bigint),
            lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
        WHERE id = $1 AND status = 'granting' AND lease_owner = $2 AND lease_expires_at > now()
        RETURNING *
        "#,
        id,
        owner,
        lease.as_secs_f64(),
        expires_after_days.map(|d| d as i32),
        grant_value
    )
    .fetch_optional(db)
    .await?;
    super::purchase_row::decode_optional(row)
}

/// Records the grant and what settled the invoice. Safe without the lease: the grant exists, and
/// whoever else holds the purchase can only find or replay the same one. A purchase whose payment
/// was refunded or disputed meanwhile goes on to `reversing` (due now) instead of `granted`; the
/// flag is read from the row being updated, so an event that commits while this waits for the
/// row lock is seen.
pub async fn mark_granted(
    db: impl PgExecutor<'_>,
    id: &str,
    grant_id: &str,
    grant_voided_at: Option<i64>,
    settlement: &Settlement,
) -> sqlx::Result<Option<Purchase>> {
    let row = sqlx::query_as!(
        PurchaseRow,
        r#"
        UPDATE purchases
        SET status = CASE WHEN reversal_sync_due OR EXISTS (
                                SELECT 1 FROM reversals r WHERE r.purchase_id = purchases.id)
                          THEN 'reversing' ELSE 'granted' END,
            next_attempt_at = CASE WHEN reversal_sync_due OR EXISTS (
                                SELECT 1 FROM reversals r WHERE r.purchase_id = purchases.id)
                          THEN now() END,
            credit_grant_id = $2, granted_at = now(), last_error = NULL,
            credit_grant_voided_at = to_timestamp($3), settlement = $4,
            current_grant_id = CASE WHEN $3 IS NULL THEN $2 END,
            current_grant_value = COALESCE(grant_value, (credit->>'value')::bigint),
            attempts = CASE WHEN reversal_sync_due OR EXISTS (
                                SELECT 1 FROM reversals r WHERE r.purchase_id = purchases.id)
                          THEN 0 ELSE attempts END,
            grant_unknown_since = NULL, grant_lookups = 0,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND status = 'granting'
        RETURNING *
        "#,
        id,
        grant_id,
        grant_voided_at.map(|t| t as f64),
        Json(settlement) as _
    )
    .fetch_optional(db)
    .await?;
    super::purchase_row::decode_optional(row)
}

/// Ends the attempt in a final state (`rejected`, `failed`) if this worker still holds the lease.
/// `settlement` records what Stripe showed when the invoice was judged.
pub async fn finish(
    db: impl PgExecutor<'_>,
    claimed: &Purchase,
    owner: &str,
    status: PurchaseStatus,
    error: &str,
    settlement: Option<&Settlement>,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        r#"
        UPDATE purchases
        SET status = $3, last_error = $4, next_attempt_at = NULL,
            settlement = COALESCE($6, settlement),
            lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND lease_owner = $2 AND status = $5
        "#,
        &claimed.id,
        owner,
        status as _,
        error,
        claimed.status as _,
        settlement.map(Json) as _
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Releases the lease and schedules the next attempt. An attempt that only waited (for a lookup's
/// settle time) gives its attempt back, so waiting never uses up a purchase's attempts.
pub async fn retry_later(
    db: impl PgExecutor<'_>,
    claimed: &Purchase,
    owner: &str,
    delay: Duration,
    error: &str,
    counts_as_attempt: bool,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        r#"
        UPDATE purchases
        SET last_error = $3, next_attempt_at = now() + make_interval(secs => $4),
            attempts = attempts - CASE WHEN $5 THEN 0 ELSE 1 END,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND lease_owner = $2 AND status = $6
        "#,
        &claimed.id,
        owner,
        error,
        delay.as_secs_f64(),
        counts_as_attempt,
        claimed.status as _
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives the lease back without counting the attempt, so work cut short by shutdown is picked up
/// at once by another replica.
pub async fn release(db: impl PgExecutor<'_>, id: &str, owner: &str) -> sqlx::Result<()> {
    sqlx::query!("UPDATE purchases SET lease_owner = NULL, lease_expires_at = NULL, attempts = greatest(attempts - 1, 0)
         WHERE id = $1 AND lease_owner = $2", id, owner)
    .execute(db)
    .await?;
    Ok(())
}

/// Write-ahead for funding: committed before the invoice is created, so every later attempt
/// (after a crash, a lost answer or an admin retry) looks for it by metadata first.
pub async fn mark_funding_requested(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        "UPDATE purchases SET funding_requested = true, updated_at = now()
         WHERE id = $1 AND lease_owner = $2 AND lease_expires_at > now()",
        id,
        owner
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Moves funding to a fresh key generation at once: used after a stored 500 on a step whose effect
/// the next attempt sees by retrieving the invoice (its line, its finalization).
pub async fn bump_funding_key(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query!("UPDATE purchases SET funding_key_generation = funding_key_generation + 1, updated_at = now()
         WHERE id = $1 AND lease_owner = $2", id, owner)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Stores the invoice creditd just created (or found again), as soon as Stripe returned it.
pub async fn set_invoice(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    invoice_id: &InvoiceId,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        "UPDATE purchases SET invoice_id = $3, funding_unknown_since = NULL, funding_lookups = 0,
                updated_at = now()
         WHERE id = $1 AND lease_owner = $2 AND (invoice_id IS NULL OR invoice_id = $3)",
        id,
        owner,
        invoice_id
    )
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
    uncollectible: bool,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(r#"
        UPDATE purchases
        SET status = CASE WHEN status = 'creating_invoice' THEN $3 ELSE status END,
            hosted_invoice_url = COALESCE($4, hosted_invoice_url),
            uncollectible_at = CASE WHEN $5 THEN COALESCE(uncollectible_at, now()) ELSE uncollectible_at END,
            next_attempt_at = CASE WHEN status = 'creating_invoice' AND $3 = 'granting' THEN now()
                                   WHEN status = 'creating_invoice' THEN NULL ELSE next_attempt_at END,
            paid_at = CASE WHEN status = 'creating_invoice' AND $3 = 'granting' THEN now() ELSE paid_at END,
            attempts = CASE WHEN status = 'creating_invoice' THEN 0 ELSE attempts END,
            last_error = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND lease_owner = $2
        "#, id, owner, next as PurchaseStatus, hosted_invoice_url, uncollectible)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}
