//! The few fields of Stripe's objects that creditd reads; everything else is left alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::purchase::Settlement;

/// An invoice, as rendered at any API version since 2025-03-31.basil.
#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    pub id: String,
    #[serde(deserialize_with = "id_or_object")]
    pub customer: String,
    pub currency: String,
    pub amount_paid: i64,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub status: Option<String>,
    pub livemode: bool,
    #[serde(default, deserialize_with = "nullable_map")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub hosted_invoice_url: Option<String>,
    /// The customer's balance applied at finalization; negative when it was a credit.
    #[serde(default)]
    pub starting_balance: i64,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub total_discount_amounts: Vec<DiscountAmount>,
    #[serde(default)]
    pub amount_paid_off_stripe: Option<i64>,
    #[serde(default)]
    pub status_transitions: StatusTransitions,
    #[serde(default)]
    pub lines: Option<List<InvoiceLine>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DiscountAmount {
    pub amount: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusTransitions {
    #[serde(default)]
    pub paid_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceLine {
    #[serde(default)]
    pub amount: i64,
    #[serde(default, deserialize_with = "nullable_map")]
    pub metadata: BTreeMap<String, String>,
}

impl Invoice {
    pub fn purchase_id_in_metadata(&self) -> Option<&str> {
        self.metadata.get("creditd_purchase_id").map(String::as_str)
    }

    pub fn discounts(&self) -> i64 {
        self.total_discount_amounts.iter().map(|d| d.amount).sum()
    }

    /// The invoice's amount before discounts and before the customer's balance: `total` is after
    /// discounts, and the balance only lowers `amount_due`.
    pub fn gross(&self) -> i64 {
        self.total + self.discounts()
    }

    /// What settled the invoice, for the purchase's record.
    pub fn settlement(&self) -> Settlement {
        Settlement {
            gross: self.gross(),
            total: self.total,
            amount_paid: self.amount_paid,
            balance_applied: (-self.starting_balance).max(0),
            discounts: self.discounts(),
            paid_out_of_band: self.amount_paid_off_stripe.unwrap_or(0),
        }
    }

    /// Whether one of the loaded lines is the item creditd adds for this purchase.
    pub fn has_line_for(&self, purchase_id: &str) -> bool {
        self.lines.as_ref().is_some_and(|lines| {
            lines.data.iter().any(|line| {
                line.metadata.get("creditd_purchase_id").map(String::as_str) == Some(purchase_id)
            })
        })
    }

    pub fn line_count(&self) -> usize {
        self.lines.as_ref().map_or(0, |lines| lines.data.len())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceItem {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreditGrant {
    pub id: String,
    #[serde(default, deserialize_with = "nullable_map")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub voided_at: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
}

impl CreditGrant {
    /// Whether the grant no longer holds credits: voided, expired, or expired early (its
    /// `expires_at` moved from `original_expiry`, which only `…/expire` does). Comparing with the
    /// expiry we created it with, not with our clock, keeps this right when clocks disagree.
    pub fn has_ended(&self, original_expiry: Option<i64>, now: i64) -> bool {
        self.voided_at.is_some()
            || self.expires_at != original_expiry
            || self.expires_at.is_some_and(|at| at <= now)
    }

    /// A grant creditd created to replace another one after a reversal, not a purchase's first grant.
    pub fn is_replacement(&self) -> bool {
        self.metadata.contains_key("creditd_move")
    }

    pub fn purchase_id_in_metadata(&self) -> Option<&str> {
        self.metadata.get("creditd_purchase_id").map(String::as_str)
    }
}

/// A customer, for its saved card.
#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub invoice_settings: Option<InvoiceSettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceSettings {
    #[serde(default, deserialize_with = "optional_id")]
    pub default_payment_method: Option<String>,
}

impl Customer {
    pub fn has_saved_card(&self) -> bool {
        !self.deleted
            && self
                .invoice_settings
                .as_ref()
                .is_some_and(|s| s.default_payment_method.is_some())
    }
}

/// A Checkout Session: the hosted page a purchase's customer pays on.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    /// open, complete or expired.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable_map")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "optional_id")]
    pub invoice: Option<String>,
}

impl Listed for CheckoutSession {
    fn id(&self) -> &str {
        &self.id
    }
}

/// An InvoicePayment: how (part of) an invoice was paid.
#[derive(Debug, Clone, Deserialize)]
pub struct InvoicePayment {
    pub id: String,
    pub invoice: String,
    #[serde(default)]
    pub amount_paid: Option<i64>,
    pub currency: String,
    #[serde(default)]
    pub status: Option<String>,
    pub payment: PaymentRef,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PaymentRef {
    #[serde(default, deserialize_with = "optional_id")]
    pub payment_intent: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    pub charge: Option<String>,
}

/// A refund; only `pending`, `succeeded` and `requires_action` refunds hold money back.
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
}

/// A dispute; its money is withdrawn unless it is an inquiry (`warning_*`) or was won.
#[derive(Debug, Clone, Deserialize)]
pub struct Dispute {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
}

/// A credit note: the part it returned other than by a refund (to the customer's balance, or
/// paid outside Stripe) is money reversed on its own; its refund is a Refund.
#[derive(Debug, Clone, Deserialize)]
pub struct CreditNote {
    pub id: String,
    pub currency: String,
    pub status: String,
    #[serde(default)]
    pub credit_amount: Option<i64>,
    #[serde(default)]
    pub out_of_band_amount: Option<i64>,
}

impl CreditNote {
    /// Money it returned other than through a refund.
    pub fn returned_without_refund(&self) -> i64 {
        self.credit_amount.unwrap_or(0) + self.out_of_band_amount.unwrap_or(0)
    }
}

impl Listed for CreditNote {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Refund {
    pub fn holds_money(&self) -> bool {
        matches!(
            self.status.as_str(),
            "pending" | "succeeded" | "requires_action"
        )
    }
}

impl Dispute {
    pub fn holds_money(&self) -> bool {
        !self.status.starts_with("warning_") && self.status != "won"
    }
}

/// `GET /v1/billing/credit_balance_summary`, filtered to one grant.
#[derive(Debug, Clone, Deserialize)]
pub struct CreditBalanceSummary {
    pub balances: Vec<CreditBalance>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreditBalance {
    pub available_balance: MonetaryAmount,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MonetaryAmount {
    pub monetary: Option<MonetaryValue>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MonetaryValue {
    pub value: i64,
    #[serde(default)]
    pub currency: Option<String>,
}

impl CreditBalanceSummary {
    /// Available credits in one currency.
    pub fn available_in(&self, currency: &str) -> i64 {
        self.balances
            .iter()
            .filter_map(|b| b.available_balance.monetary.as_ref())
            .filter(|m| {
                m.currency
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(currency))
            })
            .map(|m| m.value)
            .sum()
    }

    pub fn available(&self) -> i64 {
        self.balances
            .iter()
            .filter_map(|b| b.available_balance.monetary.as_ref())
            .map(|m| m.value)
            .sum()
    }
}

/// An object that Stripe lists, paged by its id.
pub trait Listed {
    fn id(&self) -> &str;
}

impl Listed for Invoice {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Listed for InvoicePayment {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Listed for Refund {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Listed for Dispute {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Listed for CreditGrant {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A page of a Stripe list.
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

/// An event, with the resource it carries left as JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub livemode: bool,
    pub created: i64,
    pub data: EventData,
}

/// Only the parts of `data.object` creditd routes on; the rest of the resource is stored as
/// received but never parsed into a tree, which keeps the webhook path cheap.
#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    pub object: EventObject,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventObject {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub metadata: Option<EventMetadata>,
    #[serde(default, deserialize_with = "optional_id")]
    pub payment_intent: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    pub charge: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    pub invoice: Option<String>,
    /// On a credit balance transaction: the grant it applied.
    #[serde(default, deserialize_with = "optional_id")]
    pub credit_grant: Option<String>,
}

/// What a refund, dispute, charge or credit-note event names: the payment and, for credit notes,
/// the invoice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentRefs {
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    pub invoice: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventMetadata {
    #[serde(default)]
    pub creditd_purchase_id: Option<String>,
}

impl Event {
    /// For invoice events: the invoice id and the purchase id creditd wrote into its metadata.
    pub fn invoice_refs(&self) -> (Option<&str>, Option<&str>) {
        let object = &self.data.object;
        if object.object.as_deref() == Some("checkout.session") {
            // A session has no invoice until it is paid; its metadata names the purchase.
            let purchase = object.metadata.as_ref();
            return (
                None,
                purchase.and_then(|m| m.creditd_purchase_id.as_deref()),
            );
        }
        if object.object.as_deref() != Some("invoice") {
            return (None, None);
        }
        let purchase = object
            .metadata
            .as_ref()
            .and_then(|m| m.creditd_purchase_id.as_deref());
        (object.id.as_deref(), purchase)
    }
}

impl Event {
    /// For payment events (charge, refund, dispute, credit note): the payment and invoice named.
    pub fn payment_refs(&self) -> PaymentRefs {
        let object = &self.data.object;
        let (payment_intent, charge) = match object.object.as_deref() {
            Some("charge") => (object.payment_intent.clone(), object.id.clone()),
            Some("refund") | Some("dispute") => {
                (object.payment_intent.clone(), object.charge.clone())
            }
            _ => (None, None),
        };
        let invoice = match object.object.as_deref() {
            Some("credit_note") => object.invoice.clone(),
            _ => None,
        };
        PaymentRefs {
            payment_intent,
            charge,
            invoice,
        }
    }
}

/// An id that may be absent, null, or expanded into an object.
fn optional_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IdOrObject {
        Id(String),
        Object { id: String },
    }
    Ok(
        Option::<IdOrObject>::deserialize(deserializer)?.map(|v| match v {
            IdOrObject::Id(id) | IdOrObject::Object { id } => id,
        }),
    )
}

/// Stripe expands `customer` into an object on request; accept both forms.
fn id_or_object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IdOrObject {
        Id(String),
        Object { id: String },
    }
    Ok(match IdOrObject::deserialize(deserializer)? {
        IdOrObject::Id(id) | IdOrObject::Object { id } => id,
    })
}

fn nullable_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

fn nullable_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_own_invoice_fixture_parses() {
        let fixtures: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/stripe-fixtures-subset.json"
        ))
        .unwrap();
        let invoice = fixtures
            .pointer("/resources/invoice")
            .expect("fixture has an invoice")
            .clone();
        let parsed: Invoice = serde_json::from_value(invoice).unwrap();
        assert!(!parsed.id.is_empty() && !parsed.customer.is_empty());
    }

    #[test]
    fn expanded_customer_and_null_metadata_are_accepted() {
        let invoice: Invoice = serde_json::from_value(serde_json::json!({
            "id": "in_1", "customer": {"id": "cus_1", "object": "customer"}, "currency": "usd",
            "amount_paid": 5, "status": "paid", "livemode": false, "metadata": null
        }))
        .unwrap();
        assert_eq!(invoice.customer, "cus_1");
        assert!(invoice.metadata.is_empty());
    }
}
