//! The few fields of Stripe's objects that creditd reads; everything else is left alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

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
}

impl Invoice {
    pub fn purchase_id_in_metadata(&self) -> Option<&str> {
        self.metadata.get("creditd_purchase_id").map(String::as_str)
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
