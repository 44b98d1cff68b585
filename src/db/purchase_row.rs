//! The `purchases` row exactly as Postgres types it, and its decoding into a typed [`Purchase`].
//!
//! `sqlx::query_as!` maps each column by the type the schema gives it, so whole-row reads
//! (`RETURNING *`, `SELECT *`) land here and are checked against the migrations at compile
//! time; statuses, ids and JSON become typed in one place. `Purchase`'s `FromRow` goes through
//! the same decoding, for the statements that are composed at run time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::ids::{CustomerId, EventId, InvoiceId, PurchaseId};
use crate::purchase::{Purchase, PurchaseStatus};

/// Every column of `purchases`, in table order; `query_as!` insists on all of them for `*`.
/// The four creditd never reads back default when a run-time statement leaves them out.
#[derive(Debug, sqlx::FromRow)]
pub struct PurchaseRow {
    pub id: String,
    pub status: String,
    pub customer: String,
    pub amount: i64,
    pub currency: String,
    pub invoice_id: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub livemode: bool,
    pub credit: Value,
    pub description: Option<String>,
    pub metadata: Value,
    pub funding: Option<Value>,
    pub credit_grant_id: Option<String>,
    pub grant_requested: bool,
    pub grant_key_generation: i32,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[sqlx(default)]
    pub lease_owner: Option<String>,
    #[sqlx(default)]
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub paid_event_id: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub granted_at: Option<DateTime<Utc>>,
    #[sqlx(default)]
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[sqlx(default)]
    pub swept_at: Option<DateTime<Utc>>,
    pub uncollectible_at: Option<DateTime<Utc>>,
    pub settlement: Option<Value>,
    pub grant_expires_at: Option<i64>,
    pub grant_unknown_since: Option<DateTime<Utc>>,
    pub grant_lookups: i32,
    pub credit_grant_voided_at: Option<DateTime<Utc>>,
    pub funding_requested: bool,
    pub funding_key_generation: i32,
    pub funding_unknown_since: Option<DateTime<Utc>>,
    pub funding_lookups: i32,
    pub current_grant_id: Option<String>,
    pub current_grant_value: Option<i64>,
    pub grant_value: Option<i64>,
    pub reversal_sync_due: bool,
    pub checkout_session_id: Option<String>,
    pub checkout_url: Option<String>,
    pub topup_customer: Option<String>,
    pub topup_trigger: Option<Value>,
}

fn json<T: serde::de::DeserializeOwned>(column: &str, value: Value) -> sqlx::Result<Json<T>> {
    serde_json::from_value(value)
        .map(Json)
        .map_err(|error| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(error),
        })
}

impl TryFrom<PurchaseRow> for Purchase {
    type Error = sqlx::Error;

    fn try_from(row: PurchaseRow) -> sqlx::Result<Purchase> {
        let status =
            PurchaseStatus::parse(&row.status).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "status".into(),
                source: format!("unknown purchase status {:?}", row.status).into(),
            })?;
        Ok(Purchase {
            id: PurchaseId::from_stored(row.id),
            status,
            customer: CustomerId::from_stored(row.customer),
            amount: row.amount,
            currency: row.currency,
            invoice_id: row.invoice_id.map(InvoiceId::from_stored),
            hosted_invoice_url: row.hosted_invoice_url,
            livemode: row.livemode,
            credit: json("credit", row.credit)?,
            description: row.description,
            metadata: json::<BTreeMap<String, String>>("metadata", row.metadata)?,
            funding: row.funding.map(|v| json("funding", v)).transpose()?,
            credit_grant_id: row.credit_grant_id,
            grant_requested: row.grant_requested,
            grant_key_generation: row.grant_key_generation,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
            paid_event_id: row.paid_event_id.map(EventId::from_stored),
            paid_at: row.paid_at,
            granted_at: row.granted_at,
            request_hash: row.request_hash,
            uncollectible_at: row.uncollectible_at,
            settlement: row.settlement.map(|v| json("settlement", v)).transpose()?,
            grant_expires_at: row.grant_expires_at,
            grant_unknown_since: row.grant_unknown_since,
            grant_lookups: row.grant_lookups,
            credit_grant_voided_at: row.credit_grant_voided_at,
            funding_requested: row.funding_requested,
            funding_key_generation: row.funding_key_generation,
            funding_unknown_since: row.funding_unknown_since,
            funding_lookups: row.funding_lookups,
            current_grant_id: row.current_grant_id,
            current_grant_value: row.current_grant_value,
            grant_value: row.grant_value,
            reversal_sync_due: row.reversal_sync_due,
            checkout_session_id: row.checkout_session_id,
            checkout_url: row.checkout_url,
            topup_customer: row.topup_customer,
            topup_trigger: row.topup_trigger.map(Json),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for Purchase {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> sqlx::Result<Purchase> {
        PurchaseRow::from_row(row)?.try_into()
    }
}

/// Decodes the rows a `query_as!(PurchaseRow, …)` returned.
pub fn decode_all(rows: Vec<PurchaseRow>) -> sqlx::Result<Vec<Purchase>> {
    rows.into_iter().map(Purchase::try_from).collect()
}

/// Decodes the row a `query_as!(PurchaseRow, …)` may have returned.
pub fn decode_optional(row: Option<PurchaseRow>) -> sqlx::Result<Option<Purchase>> {
    row.map(Purchase::try_from).transpose()
}
