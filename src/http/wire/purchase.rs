//! A purchase on the wire: the answer every purchase route gives.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::{CustomerId, InvoiceId, PurchaseId};
use crate::money::{Currency, Money};
use crate::purchase;

/// A purchase as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Purchase {
    #[schema(value_type = String, example = "pur_8Yv1")]
    pub id: PurchaseId,
    pub object: String,
    /// creating_invoice, awaiting_payment, granting, granted, failed, rejected, canceled,
    /// reversing, partially_reversed or reversed.
    #[schema(value_type = String)]
    pub status: purchase::PurchaseStatus,
    #[schema(value_type = String)]
    pub customer: CustomerId,
    pub amount: i64,
    pub currency: String,
    /// The amount in the major unit, for people: "50.00 USD", "5000 JPY".
    pub amount_display: String,
    pub livemode: bool,
    #[schema(value_type = Option<String>)]
    pub invoice_id: Option<InvoiceId>,
    pub hosted_invoice_url: Option<String>,
    /// For a purchase funded through Checkout: the session, and the page the customer pays on.
    pub checkout_session_id: Option<String>,
    pub checkout_url: Option<String>,
    /// For an automatic top-up: what triggered it (balance seen, threshold, the debit event or
    /// the sweep).
    #[schema(value_type = Option<Object>)]
    pub auto_topup: Option<serde_json::Value>,
    /// When Stripe marked the invoice uncollectible; the purchase stays payable until it is voided.
    pub uncollectible_at: Option<i64>,
    /// What settled the invoice, as Stripe showed it when creditd judged it.
    pub settlement: Option<Settlement>,
    #[schema(value_type = Object)]
    pub credit: purchase::CreditSpec,
    pub credit_grant_id: Option<String>,
    /// Set when the purchase's grant was found voided at Stripe; it is still this purchase's grant.
    pub credit_grant_voided_at: Option<i64>,
    /// The grant that holds the purchase's credits now: `credit_grant_id` until a refund or
    /// dispute replaced it; null once nothing is left to hold.
    pub current_credit_grant_id: Option<String>,
    /// Refunds, disputes and credit notes of the purchase's payment, oldest first.
    pub reversals: Vec<super::Reversal>,
    /// Credits refunded or disputed that the customer had already used (never taken back).
    pub credits_shortfall: i64,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub collection_method: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub paid_at: Option<i64>,
    pub granted_at: Option<i64>,
    pub created: i64,
    pub updated: i64,
}

impl From<&purchase::Purchase> for Purchase {
    fn from(stored: &purchase::Purchase) -> Self {
        let amount = Money {
            value: stored.amount,
            currency: Currency::parse(&stored.currency).expect("stored currencies are valid"),
        };
        Purchase {
            id: stored.id.clone(),
            object: "purchase".into(),
            status: stored.status,
            customer: stored.customer.clone(),
            amount: stored.amount,
            currency: stored.currency.clone(),
            amount_display: amount.display(),
            livemode: stored.livemode,
            invoice_id: stored.invoice_id.clone(),
            hosted_invoice_url: stored.hosted_invoice_url.clone(),
            checkout_session_id: stored.checkout_session_id.clone(),
            checkout_url: stored.checkout_url.clone(),
            auto_topup: stored.topup_trigger.as_ref().map(|t| t.0.clone()),
            uncollectible_at: stored.uncollectible_at.map(|t| t.timestamp()),
            settlement: stored.settlement.as_ref().map(|s| Settlement::from(&s.0)),
            credit: stored.credit.0.clone(),
            credit_grant_id: stored.credit_grant_id.clone(),
            credit_grant_voided_at: stored.credit_grant_voided_at.map(|t| t.timestamp()),
            current_credit_grant_id: stored.current_grant_id.clone(),
            reversals: Vec::new(),
            credits_shortfall: 0,
            description: stored.description.clone(),
            metadata: stored.metadata.0.clone(),
            collection_method: stored
                .funding
                .as_ref()
                .map(|f| f.0.collection_method.clone()),
            attempts: stored.attempts,
            last_error: stored.last_error.clone(),
            paid_at: stored.paid_at.map(|t| t.timestamp()),
            granted_at: stored.granted_at.map(|t| t.timestamp()),
            created: stored.created_at.timestamp(),
            updated: stored.updated_at.timestamp(),
        }
    }
}

impl Purchase {
    /// The purchase with its reversals (views of other purchases are skipped).
    pub fn with_reversals(mut self, views: &[crate::db::grant_moves::ReversalView]) -> Self {
        self.reversals = views
            .iter()
            .filter(|v| v.purchase_id == self.id)
            .map(super::Reversal::from)
            .collect();
        self.credits_shortfall = self.reversals.iter().map(|r| r.credits_shortfall).sum();
        self
    }
}

/// What settled a paid invoice, in the currency's minor unit.
#[derive(Debug, Serialize, ToSchema)]
pub struct Settlement {
    /// The invoice's amount before discounts and the customer's balance; must cover the purchase.
    pub gross: i64,
    pub total: i64,
    pub amount_paid: i64,
    pub balance_applied: i64,
    pub discounts: i64,
    pub paid_out_of_band: i64,
}

impl From<&purchase::Settlement> for Settlement {
    fn from(s: &purchase::Settlement) -> Self {
        Settlement {
            gross: s.gross,
            total: s.total,
            amount_paid: s.amount_paid,
            balance_applied: s.balance_applied,
            discounts: s.discounts,
            paid_out_of_band: s.paid_out_of_band,
        }
    }
}

/// A page of purchases, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseList {
    pub object: String,
    pub data: Vec<Purchase>,
    pub has_more: bool,
}
