//! Automatic top-up rules, their checks, and the one statement that creates a top-up purchase
//! with every limit (one in flight, cooldown, monthly caps) enforced where it inserts.

use std::time::Duration;

use sqlx::PgExecutor;
use sqlx::types::Json;

use super::purchase_row::PurchaseRow;
use crate::ids::PurchaseId;
use crate::purchase::{CreditSpec, Purchase};

/// A customer's rule as stored. Every statement lists the columns (rather than `*`) so that
/// `query_as!` can decode `credit` as typed JSON.
#[derive(Debug, Clone)]
pub struct Rule {
    pub customer: String,
    pub threshold: i64,
    pub amount: Option<i64>,
    pub top_up_to: Option<i64>,
    pub currency: String,
    pub credit: Json<CreditSpec>,
    pub max_topups_per_month: i32,
    pub max_amount_per_month: i64,
    pub pause_after_failures: i32,
    pub enabled: bool,
    pub consecutive_failures: i32,
    pub paused_at: Option<chrono::DateTime<chrono::Utc>>,
    pub paused_reason: Option<String>,
    pub last_balance: Option<i64>,
    pub last_checked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_skip_reason: Option<String>,
    pub check_reason: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Rule {
    /// The purchase amount for a balance of `balance`: the fixed amount, or what brings the
    /// balance to the target.
    pub fn topup_amount(&self, balance: i64) -> i64 {
        match (self.amount, self.top_up_to) {
            (Some(amount), _) => amount,
            (None, Some(target)) => (target - balance).max(1),
            (None, None) => 0,
        }
    }
}

/// Creates or replaces the customer's rule. Replacing re-enables a paused rule (the operator
/// fixed the card) and asks for a check now.
#[allow(clippy::too_many_arguments)]
pub async fn upsert(
    db: impl PgExecutor<'_>,
    customer: &str,
    threshold: i64,
    amount: Option<i64>,
    top_up_to: Option<i64>,
    credit: &CreditSpec,
    max_topups_per_month: i32,
    max_amount_per_month: i64,
    pause_after_failures: i32,
    enabled: bool,
) -> sqlx::Result<Rule> {
    sqlx::query_as!(
        Rule,
        r#"
        INSERT INTO auto_topup_rules (customer, threshold, amount, top_up_to, currency, credit,
                                      max_topups_per_month, max_amount_per_month,
                                      pause_after_failures, enabled)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (customer) DO UPDATE
        SET threshold = EXCLUDED.threshold, amount = EXCLUDED.amount,
            top_up_to = EXCLUDED.top_up_to, currency = EXCLUDED.currency,
            credit = EXCLUDED.credit, max_topups_per_month = EXCLUDED.max_topups_per_month,
            max_amount_per_month = EXCLUDED.max_amount_per_month,
            pause_after_failures = EXCLUDED.pause_after_failures, enabled = EXCLUDED.enabled,
            consecutive_failures = 0, paused_at = NULL, paused_reason = NULL,
            last_skip_reason = NULL, check_due_at = now(), updated_at = now()
        RETURNING customer, threshold, amount, top_up_to, currency,
                  credit AS "credit: Json<CreditSpec>", max_topups_per_month,
                  max_amount_per_month, pause_after_failures, enabled, consecutive_failures,
                  paused_at, paused_reason, last_balance, last_checked_at, last_skip_reason,
                  check_reason, created_at, updated_at
        "#,
        customer,
        threshold,
        amount,
        top_up_to,
        credit.currency.as_str(),
        Json(credit) as _,
        max_topups_per_month,
        max_amount_per_month,
        pause_after_failures,
        enabled,
    )
    .fetch_one(db)
    .await
}

pub async fn find(db: impl PgExecutor<'_>, customer: &str) -> sqlx::Result<Option<Rule>> {
    sqlx::query_as!(
        Rule,
        r#"SELECT customer, threshold, amount, top_up_to, currency,
                  credit AS "credit: Json<CreditSpec>", max_topups_per_month,
                  max_amount_per_month, pause_after_failures, enabled, consecutive_failures,
                  paused_at, paused_reason, last_balance, last_checked_at, last_skip_reason,
                  check_reason, created_at, updated_at
           FROM auto_topup_rules WHERE customer = $1"#,
        customer,
    )
    .fetch_optional(db)
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, customer: &str) -> sqlx::Result<Option<Rule>> {
    sqlx::query_as!(
        Rule,
        r#"DELETE FROM auto_topup_rules WHERE customer = $1
           RETURNING customer, threshold, amount, top_up_to, currency,
                  credit AS "credit: Json<CreditSpec>", max_topups_per_month,
                  max_amount_per_month, pause_after_failures, enabled, consecutive_failures,
                  paused_at, paused_reason, last_balance, last_checked_at, last_skip_reason,
                  check_reason, created_at, updated_at"#,
        customer,
    )
    .fetch_optional(db)
    .await
}

/// The customer's latest top-ups, newest first.
pub async fn recent(
    db: impl PgExecutor<'_>,
    customer: &str,
    limit: i64,
) -> sqlx::Result<Vec<Purchase>> {
    let row = sqlx::query_as!(PurchaseRow, "SELECT * FROM purchases WHERE topup_customer = $1 ORDER BY created_at DESC, id DESC LIMIT $2", customer, limit).fetch_all(db).await?;
    super::purchase_row::decode_all(row)
}

/// A debit on one of creditd's grants: the owner's rule is checked now. Debits on grants creditd
/// did not create name no purchase; the sweep checks those customers.
pub async fn check_now_for_grant(
    db: impl PgExecutor<'_>,
    grant_id: &str,
    event_id: &str,
) -> sqlx::Result<u64> {
    let result = sqlx::query!(
        "UPDATE auto_topup_rules
         SET check_due_at = now(), check_reason = format('debit %s on grant %s', $2::text, $1::text)
         WHERE customer IN (SELECT customer FROM purchases
                            WHERE credit_grant_id = $1 OR current_grant_id = $1)
           AND enabled AND paused_at IS NULL",
        grant_id,
        event_id,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

/// Takes up to `limit` rules due for a check, pushing their next check out by `hold` (their
/// lease; a crashed checker's rule is checked again then).
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    hold: Duration,
    limit: i64,
) -> sqlx::Result<Vec<Rule>> {
    sqlx::query_as!(
        Rule,
        r#"
        UPDATE auto_topup_rules r
        SET check_due_at = now() + make_interval(secs => $1)
        WHERE r.customer IN (
            SELECT customer FROM auto_topup_rules
            WHERE enabled AND paused_at IS NULL AND check_due_at <= now()
            ORDER BY check_due_at LIMIT $2
            FOR UPDATE SKIP LOCKED)
        RETURNING r.customer, threshold, amount, top_up_to, currency,
                  credit AS "credit: Json<CreditSpec>", max_topups_per_month,
                  max_amount_per_month, pause_after_failures, enabled, consecutive_failures,
                  paused_at, paused_reason, last_balance, last_checked_at, last_skip_reason,
                  check_reason, created_at, updated_at
        "#,
        hold.as_secs_f64(),
        limit,
    )
    .fetch_all(db)
    .await
}

/// Records what a check saw, and schedules the next one.
pub async fn checked(
    db: impl PgExecutor<'_>,
    customer: &str,
    balance: i64,
    skip_reason: Option<&str>,
    next_check_in: Duration,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auto_topup_rules
         SET last_balance = $2, last_checked_at = now(), last_skip_reason = $3,
             check_reason = NULL,
             check_due_at = GREATEST(check_due_at, now() + make_interval(secs => $4)),
             updated_at = now()
         WHERE customer = $1",
        customer,
        balance,
        skip_reason,
        next_check_in.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// What the creating statement did: the new top-up, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    TopUp(PurchaseId),
    Skipped(String),
}

/// Creates the top-up purchase for a balance below the threshold, in one statement that also
/// enforces the limits: the rule is enabled and not paused; no top-up of the rule is in flight
/// (the unique partial index `purchases_one_topup_in_flight` decides between concurrent
/// triggers); none was created within `cooldown`; this calendar month's (UTC) top-ups that did
/// not fail unpaid stay within the count and the money caps.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    db: impl PgExecutor<'_>,
    rule: &Rule,
    balance: i64,
    purchase_id: &PurchaseId,
    livemode: bool,
    credit: &CreditSpec,
    trigger: &serde_json::Value,
    cooldown: Duration,
) -> sqlx::Result<Created> {
    let amount = rule.topup_amount(balance);
    let funding =
        serde_json::json!({"collection_method": "charge_automatically", "pay_off_session": true});
    let metadata = serde_json::json!({"creditd_topup": "true"});
    let row = sqlx::query!(
        r#"
        WITH rule AS (
            SELECT * FROM auto_topup_rules
            WHERE customer = $1 AND enabled AND paused_at IS NULL
        ), month AS (
            SELECT count(*) AS topups, COALESCE(sum(amount), 0) AS money
            FROM purchases
            WHERE topup_customer = $1
              AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
              AND (status NOT IN ('failed', 'canceled') OR paid_at IS NOT NULL)
        ), facts AS (
            SELECT r.threshold, r.max_topups_per_month, r.max_amount_per_month, m.topups, m.money,
                   EXISTS (SELECT 1 FROM purchases p WHERE p.topup_customer = $1
                           AND p.status IN ('creating_invoice', 'awaiting_payment', 'granting'))
                       AS in_flight,
                   EXISTS (SELECT 1 FROM purchases p WHERE p.topup_customer = $1
                           AND p.created_at > now() - make_interval(secs => $8)) AS cooling
            FROM rule r, month m
        ), inserted AS (
            INSERT INTO purchases (id, status, customer, amount, currency, livemode, credit,
                                   description, metadata, funding, next_attempt_at,
                                   topup_customer, topup_trigger)
            SELECT $3, 'creating_invoice', $1, $4::bigint, $5, $6, $7, 'Automatic credit top-up',
                   $9, $10, now(), $1, $11
            FROM facts f
            WHERE $2 < f.threshold AND NOT f.in_flight AND NOT f.cooling
              AND f.topups < f.max_topups_per_month AND f.money + $4::bigint <= f.max_amount_per_month
            ON CONFLICT (topup_customer)
                WHERE topup_customer IS NOT NULL
                  AND status IN ('creating_invoice', 'awaiting_payment', 'granting')
                DO NOTHING
            RETURNING id
        )
        SELECT (SELECT id FROM inserted) AS "created: PurchaseId",
               CASE WHEN EXISTS (SELECT 1 FROM inserted) THEN NULL
                    WHEN NOT EXISTS (SELECT 1 FROM facts) THEN 'the rule is disabled or paused'
                    ELSE (SELECT CASE
                        WHEN $2 >= f.threshold THEN 'the balance is not below the threshold'
                        WHEN f.in_flight THEN 'a top-up is already in flight'
                        WHEN f.cooling THEN 'the last top-up is within the cooldown'
                        WHEN f.topups >= f.max_topups_per_month
                            THEN format('the monthly cap of %s top-ups is reached', f.max_topups_per_month)
                        WHEN f.money + $4::bigint > f.max_amount_per_month
                            THEN format('the monthly cap of %s (minor units) would be exceeded: %s topped up this month, %s more asked',
                                        f.max_amount_per_month, f.money, $4::bigint)
                        ELSE 'a concurrent check created the top-up' END
                        FROM facts f)
               END AS reason
        "#,
        rule.customer,
        balance,
        purchase_id as &PurchaseId,
        amount,
        rule.currency,
        livemode,
        Json(credit) as _,
        cooldown.as_secs_f64(),
        Json(&metadata) as _,
        Json(&funding) as _,
        Json(trigger) as _,
    )
    .fetch_one(db)
    .await?;
    Ok(match (row.created, row.reason) {
        (Some(id), _) => Created::TopUp(id),
        (None, reason) => Created::Skipped(reason.unwrap_or_else(|| "no top-up".into())),
    })
}

/// Keeps the page where the customer can still pay a top-up whose card failed, with the lease.
pub async fn note_hosted_url(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    url: Option<&str>,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        "UPDATE purchases SET hosted_invoice_url = COALESCE($3, hosted_invoice_url), updated_at = now()
         WHERE id = $1 AND lease_owner = $2",
        id,
        owner,
        url,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Rules by state (active, paused, disabled) and top-ups that failed in the last day, for /metrics.
pub async fn counts(db: impl PgExecutor<'_>) -> sqlx::Result<(i64, i64, i64, i64)> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE enabled AND paused_at IS NULL) AS "active!",
                  count(*) FILTER (WHERE paused_at IS NOT NULL) AS "paused!",
                  count(*) FILTER (WHERE NOT enabled AND paused_at IS NULL) AS "disabled!",
                  (SELECT count(*) FROM purchases WHERE topup_customer IS NOT NULL
                     AND status = 'failed' AND updated_at > now() - interval '1 day') AS "failed!"
           FROM auto_topup_rules"#,
    )
    .fetch_one(db)
    .await?;
    Ok((row.active, row.paused, row.disabled, row.failed))
}
