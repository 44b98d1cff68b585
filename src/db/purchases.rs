//! Purchases: creating them, reading them, listing them, and the operator's retry.

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};

use crate::ids::{InvoiceId, PurchaseId};
use crate::purchase::request::NewPurchase;
use crate::purchase::{Purchase, PurchaseStatus};

/// Inserts a purchase. When its invoice already has a recorded `invoice.paid`, the state machine
/// applies it in the same transaction, so a purchase registered after its payment is fulfilled on
/// registration. A purchase that creditd funds is left to the request that created it for
/// `funding_grace`; workers take it over only if that request dies. Returns None when the
/// client's idempotency key is already taken.
pub async fn insert(
    db: &PgPool,
    id: &str,
    new: &NewPurchase,
    livemode: bool,
    idempotency_key: Option<&str>,
    request_hash: &str,
    funding_grace: Duration,
) -> sqlx::Result<Option<Purchase>> {
    let mut tx = db.begin().await?;
    let inserted: Option<(PurchaseId,)> = sqlx::query_as(
        r#"
        INSERT INTO purchases (id, status, customer, amount, currency, invoice_id, livemode, credit,
                               description, metadata, funding, idempotency_key, request_hash,
                               next_attempt_at)
        VALUES ($1, CASE WHEN $11::jsonb IS NOT NULL THEN 'creating_invoice' ELSE 'awaiting_payment' END,
                $2, $3, $4, $5, $6, $7, $8, $9, $11, $10, $12,
                CASE WHEN $11::jsonb IS NOT NULL THEN now() + make_interval(secs => $13) END)
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id
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
    .fetch_optional(&mut *tx)
    .await?;
    if inserted.is_none() {
        return Ok(None);
    }
    super::lifecycle::match_recorded_payment_of(&mut *tx, id).await?;
    let purchase = find(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(purchase)
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

/// Purchases whose invoice was paid but that hold no grant and will not get one without an
/// operator: `rejected`, or `failed` after the payment. Served by a partial index.
pub async fn paid_without_credits(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM purchases
         WHERE paid_at IS NOT NULL AND status IN ('failed', 'rejected')",
    )
    .fetch_one(db)
    .await?;
    Ok(count)
}

/// A page of purchases, newest first. None when `starting_after` names no purchase.
///
/// The cursor's `(created_at, id)` is bound as values, so it is an index condition and a later
/// page starts where the last one ended instead of walking the pages before it.
pub async fn list(
    db: impl PgExecutor<'_> + Copy,
    customer: Option<&str>,
    status: Option<PurchaseStatus>,
    starting_after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Option<Vec<Purchase>>> {
    let cursor = match starting_after {
        None => None,
        Some(id) => match find(db, id).await? {
            None => return Ok(None),
            Some(after) => Some((after.created_at, after.id)),
        },
    };
    let (created_before, id_before) = cursor.unzip();
    // Every statement takes the same parameters: $1 status, $2/$3 the cursor, $4 the limit,
    // $5 the customer.
    let sql: &str = match (customer, status) {
        (Some(_), _) => LIST_FOR_CUSTOMER,
        (None, Some(_)) => LIST_FOR_STATUS,
        (None, None) => &LIST_ALL,
    };
    let page = sqlx::query_as(sql)
        .bind(status.map(PurchaseStatus::as_str))
        .bind(created_before)
        .bind(id_before)
        .bind(limit)
        .bind(customer)
        .fetch_all(db)
        .await?;
    Ok(Some(page))
}

/// One customer's purchases: `purchases_customer_created` reads them newest first.
const LIST_FOR_CUSTOMER: &str = r#"
SELECT * FROM purchases
WHERE customer = $5
  AND ($1::text IS NULL OR status = $1)
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::text))
ORDER BY created_at DESC, id DESC
LIMIT $4
"#;

/// One status: `purchases_status_created` reads them newest first.
const LIST_FOR_STATUS: &str = r#"
SELECT * FROM purchases
WHERE status = $1 AND $5::text IS NULL
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::text))
ORDER BY created_at DESC, id DESC
LIMIT $4
"#;

/// Everyone's purchases, newest first, without sorting the whole table (issue 11: list time must
/// not grow with history). There is no index on `created_at` alone, and adding one would cost
/// every purchase write; `purchases_status_created` already orders each status, so each status
/// gives its newest `limit` rows and PostgreSQL merges the seven ordered streams (Merge Append),
/// reading at most seven pages' worth of rows whatever the table's size.
static LIST_ALL: LazyLock<String> = LazyLock::new(|| {
    let branches: Vec<String> = PurchaseStatus::ALL
        .iter()
        .map(|status| {
            format!(
                "(SELECT * FROM purchases WHERE status = '{status}'
                    AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::text))
                  ORDER BY created_at DESC, id DESC LIMIT $4)",
                status = status.as_str()
            )
        })
        .collect();
    format!(
        "SELECT * FROM ({}) page
         WHERE $1::text IS NULL AND $5::text IS NULL
         ORDER BY created_at DESC, id DESC
         LIMIT $4",
        branches.join("\n UNION ALL ")
    )
});

/// Claims up to `limit` unpaid purchases with an invoice for one sweep: those checked longest ago
/// (or never) first, skipping rows another replica is claiming, and not re-checked within
/// `min_age`. Returns (purchase id, invoice id).
pub async fn claim_for_sweep(
    db: impl PgExecutor<'_>,
    limit: i64,
    min_age: Duration,
) -> sqlx::Result<Vec<(PurchaseId, InvoiceId)>> {
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
