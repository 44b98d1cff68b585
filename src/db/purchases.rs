//! Purchases: creating them, reading them, listing them, and the operator's retry.

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};

use super::purchase_row::{self, PurchaseRow};
use crate::ids::{CustomerId, InvoiceId, PurchaseId};
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
    let inserted = sqlx::query_scalar!(
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
        id,
        &new.customer as &CustomerId,
        new.amount,
        new.currency.as_str(),
        new.invoice_id.as_deref(),
        livemode,
        Json(&new.credit) as _,
        new.description.as_deref(),
        Json(&new.metadata) as _,
        idempotency_key,
        new.funding.as_ref().map(Json) as _,
        request_hash,
        funding_grace.as_secs_f64(),
    )
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
    let row = sqlx::query_as!(PurchaseRow, "SELECT * FROM purchases WHERE id = $1", id)
        .fetch_optional(db)
        .await?;
    purchase_row::decode_optional(row)
}

/// The purchase created under a client idempotency key; its `request_hash` tells whether a retry
/// came with the same body.
pub async fn find_by_idempotency_key(
    db: impl PgExecutor<'_>,
    key: &str,
) -> sqlx::Result<Option<Purchase>> {
    let row = sqlx::query_as!(
        PurchaseRow,
        "SELECT * FROM purchases WHERE idempotency_key = $1",
        key
    )
    .fetch_optional(db)
    .await?;
    purchase_row::decode_optional(row)
}

/// Purchases whose invoice was paid but that hold no grant and will not get one without an
/// operator: `rejected`, or `failed` after the payment. Served by a partial index.
pub async fn paid_without_credits(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM purchases
           WHERE paid_at IS NOT NULL AND status IN ('failed', 'rejected')"#,
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
    let id_before = id_before.as_ref().map(PurchaseId::as_str);
    let status = status.map(PurchaseStatus::as_str);
    let rows = match (customer, status) {
        // One customer's purchases: `purchases_customer_created` reads them newest first.
        (Some(customer), _) => {
            sqlx::query_as!(
                PurchaseRow,
                r#"
                SELECT * FROM purchases
                WHERE customer = $1
                  AND ($2::text IS NULL OR status = $2)
                  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::text))
                ORDER BY created_at DESC, id DESC
                LIMIT $5
                "#,
                customer,
                status,
                created_before,
                id_before,
                limit,
            )
            .fetch_all(db)
            .await?
        }
        // One status: `purchases_status_created` reads them newest first.
        (None, Some(status)) => {
            sqlx::query_as!(
                PurchaseRow,
                r#"
                SELECT * FROM purchases
                WHERE status = $1
                  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::text))
                ORDER BY created_at DESC, id DESC
                LIMIT $4
                "#,
                status,
                created_before,
                id_before,
                limit,
            )
            .fetch_all(db)
            .await?
        }
        // Not `query!`: one branch per status, generated from `PurchaseStatus::ALL`.
        (None, None) => {
            sqlx::query_as(&LIST_ALL)
                .bind(created_before)
                .bind(id_before)
                .bind(limit)
                .fetch_all(db)
                .await?
        }
    };
    Ok(Some(purchase_row::decode_all(rows)?))
}

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
                    AND ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2::text))
                  ORDER BY created_at DESC, id DESC LIMIT $3)",
                status = status.as_str()
            )
        })
        .collect();
    format!(
        "SELECT * FROM ({}) page
         ORDER BY created_at DESC, id DESC
         LIMIT $3",
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
    let rows = sqlx::query!(
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
        RETURNING p.id AS "id: PurchaseId", p.invoice_id AS "invoice_id!: InvoiceId"
        "#,
        limit,
        min_age.as_secs_f64(),
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.id, row.invoice_id))
        .collect())
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
    let row = sqlx::query_as!(
        PurchaseRow,
        r#"
        UPDATE purchases
        SET status = $3, attempts = 0, last_error = NULL,
            next_attempt_at = CASE WHEN $3 IN ('granting', 'creating_invoice') THEN now() END,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = $1 AND status = $2
        RETURNING *
        "#,
        id,
        from.as_str(),
        next.as_str(),
    )
    .fetch_optional(db)
    .await?;
    purchase_row::decode_optional(row)
}
