//! A credit purchase: what the customer pays, the grant it buys, and the states it moves through.

pub mod checkout_request;
pub mod lifecycle;
pub mod request;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, EventId, InvoiceId, PurchaseId};
use crate::money::{Currency, Money};

/// The life of a purchase. Only `granting`, `creating_invoice` and `reversing` are work for a worker; what moves
/// a purchase between the others is decided in [`lifecycle::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    CreatingInvoice,
    AwaitingPayment,
    Granting,
    Granted,
    Failed,
    Rejected,
    Canceled,
    /// Granted, and a refund, dispute or credit note changed the money behind it: a worker reads
    /// Stripe's refunds and disputes and moves the credits to match ([`crate::reversal`]).
    Reversing,
    /// Some of the money was reversed and the credits were reduced to match.
    PartiallyReversed,
    /// All the money was reversed; the purchase holds no credits.
    Reversed,
}

impl PurchaseStatus {
    pub const ALL: [PurchaseStatus; 10] = [
        PurchaseStatus::CreatingInvoice,
        PurchaseStatus::AwaitingPayment,
        PurchaseStatus::Granting,
        PurchaseStatus::Granted,
        PurchaseStatus::Failed,
        PurchaseStatus::Rejected,
        PurchaseStatus::Canceled,
        PurchaseStatus::Reversing,
        PurchaseStatus::PartiallyReversed,
        PurchaseStatus::Reversed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::CreatingInvoice => "creating_invoice",
            PurchaseStatus::AwaitingPayment => "awaiting_payment",
            PurchaseStatus::Granting => "granting",
            PurchaseStatus::Granted => "granted",
            PurchaseStatus::Failed => "failed",
            PurchaseStatus::Rejected => "rejected",
            PurchaseStatus::Canceled => "canceled",
            PurchaseStatus::Reversing => "reversing",
            PurchaseStatus::PartiallyReversed => "partially_reversed",
            PurchaseStatus::Reversed => "reversed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// Statuses a worker acts on.
    pub fn is_work(self) -> bool {
        matches!(
            self,
            PurchaseStatus::CreatingInvoice | PurchaseStatus::Granting | PurchaseStatus::Reversing
        )
    }
}

impl std::fmt::Display for PurchaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// Stored as text under a CHECK constraint (migrations/0001_core.sql).
crate::text_column::text_column!(PurchaseStatus, "purchase status");

/// Which prices the credits may pay for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Applicability {
    PriceType { price_type: String },
    Prices { prices: Vec<String> },
}

/// The billing credit grant a purchase buys; mirrors `POST /v1/billing/credit_grants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditSpec {
    pub value: i64,
    pub currency: Currency,
    pub name: String,
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Credits valid for this many days from the grant's creation (exclusive with `expires_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after_days: Option<i64>,
    pub applicability: Applicability,
}

impl CreditSpec {
    pub fn money(&self) -> Money {
        Money {
            value: self.value,
            currency: self.currency.clone(),
        }
    }
}

/// How creditd collects payment when it funds the purchase itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funding {
    pub collection_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_until_due: Option<i64>,
    /// Funded through a Checkout Session instead of an invoice creditd creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<CheckoutFunding>,
    /// An automatic top-up: once finalized, the invoice is charged to the saved card at once
    /// (`POST /v1/invoices/{id}/pay`, `off_session`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pay_off_session: bool,
}

/// The hosted payment page a Checkout purchase sends the customer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutFunding {
    pub success_url: String,
    pub cancel_url: String,
    /// Save the card for later automatic top-ups (`setup_future_usage=off_session`).
    #[serde(default)]
    pub save_payment_method: bool,
}

/// What settled a purchase's invoice, as Stripe showed it when creditd granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The invoice's amount before the customer's balance and before discounts: what the
    /// purchase amount is compared with.
    pub gross: i64,
    pub total: i64,
    pub amount_paid: i64,
    /// Taken from the customer's credit balance (positive).
    pub balance_applied: i64,
    pub discounts: i64,
    pub paid_out_of_band: i64,
}

/// A purchase as stored; decoded from [`crate::db::purchase_row::PurchaseRow`].
#[derive(Debug, Clone)]
pub struct Purchase {
    pub id: PurchaseId,
    pub status: PurchaseStatus,
    pub customer: CustomerId,
    pub amount: i64,
    pub currency: String,
    pub invoice_id: Option<InvoiceId>,
    pub hosted_invoice_url: Option<String>,
    pub livemode: bool,
    pub credit: sqlx::types::Json<CreditSpec>,
    pub description: Option<String>,
    pub metadata: sqlx::types::Json<BTreeMap<String, String>>,
    pub funding: Option<sqlx::types::Json<Funding>>,
    pub credit_grant_id: Option<String>,
    pub grant_requested: bool,
    pub grant_key_generation: i32,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub paid_event_id: Option<EventId>,
    pub paid_at: Option<DateTime<Utc>>,
    pub granted_at: Option<DateTime<Utc>>,
    pub request_hash: Option<String>,
    pub uncollectible_at: Option<DateTime<Utc>>,
    pub settlement: Option<sqlx::types::Json<Settlement>>,
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
    pub topup_trigger: Option<sqlx::types::Json<serde_json::Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Purchase {
    pub fn status(&self) -> PurchaseStatus {
        self.status
    }

    /// The Idempotency-Key of this purchase's grant. The generation changes only after Stripe stored
    /// a 500 under the previous key, which it would otherwise replay forever.
    pub fn grant_idempotency_key(&self) -> String {
        format!("creditd-grant-{}-{}", self.id, self.grant_key_generation)
    }
}

/// A fresh purchase id: `pur_` and 24 random alphanumerics.
pub fn new_purchase_id() -> PurchaseId {
    PurchaseId::generate()
}
