//! A credit purchase: what the customer pays, the grant it buys, and the states it moves through.

pub mod request;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};

/// The life of a purchase. Only `granting` and `creating_invoice` are work for a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    CreatingInvoice,
    AwaitingPayment,
    Granting,
    Granted,
    Failed,
    Rejected,
    Canceled,
}

impl PurchaseStatus {
    pub const ALL: [PurchaseStatus; 7] = [
        PurchaseStatus::CreatingInvoice,
        PurchaseStatus::AwaitingPayment,
        PurchaseStatus::Granting,
        PurchaseStatus::Granted,
        PurchaseStatus::Failed,
        PurchaseStatus::Rejected,
        PurchaseStatus::Canceled,
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
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

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

/// How creditd collects payment when it creates the invoice itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funding {
    pub collection_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_until_due: Option<i64>,
}

/// A purchase as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Purchase {
    pub id: String,
    pub status: String,
    pub customer: String,
    pub amount: i64,
    pub currency: String,
    pub invoice_id: Option<String>,
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
    pub paid_event_id: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub granted_at: Option<DateTime<Utc>>,
    pub request_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Purchase {
    pub fn status(&self) -> PurchaseStatus {
        PurchaseStatus::parse(&self.status)
            .expect("the database CHECK constraint allows only known statuses")
    }

    /// The Idempotency-Key of this purchase's grant. The generation changes only after Stripe stored
    /// a 500 under the previous key, which it would otherwise replay forever.
    pub fn grant_idempotency_key(&self) -> String {
        format!("creditd-grant-{}-{}", self.id, self.grant_key_generation)
    }

    /// The shape the API answers with.
    pub fn to_json(&self) -> serde_json::Value {
        let amount = Money {
            value: self.amount,
            currency: Currency::parse(&self.currency).expect("stored currencies are valid"),
        };
        serde_json::json!({
            "id": self.id,
            "object": "purchase",
            "status": self.status,
            "customer": self.customer,
            "amount": self.amount,
            "currency": self.currency,
            "amount_display": amount.display(),
            "livemode": self.livemode,
            "invoice_id": self.invoice_id,
            "hosted_invoice_url": self.hosted_invoice_url,
            "credit": self.credit.0,
            "credit_grant_id": self.credit_grant_id,
            "description": self.description,
            "metadata": self.metadata.0,
            "collection_method": self.funding.as_ref().map(|f| f.0.collection_method.clone()),
            "attempts": self.attempts,
            "last_error": self.last_error,
            "paid_at": self.paid_at.map(|t| t.timestamp()),
            "granted_at": self.granted_at.map(|t| t.timestamp()),
            "created": self.created_at.timestamp(),
            "updated": self.updated_at.timestamp(),
        })
    }
}

/// A fresh purchase id: `pur_` and 24 random alphanumerics.
pub fn new_purchase_id() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("pur_{suffix}")
}
