//! Turns a `POST /v1/purchases` body into a valid new purchase, or an error naming the bad field.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Applicability, CreditSpec, Funding};
use crate::ids::{CustomerId, InvoiceId};
use crate::money::Currency;

/// Metadata keys creditd writes itself; clients may not set them.
pub const RESERVED_METADATA_KEYS: &[&str] = &["creditd_purchase_id", "invoice_id"];
const TOP_LEVEL_FIELDS: &[&str] = &[
    "customer",
    "amount",
    "currency",
    "invoice_id",
    "credit",
    "description",
    "metadata",
    "collection_method",
    "days_until_due",
    "funding",
];
const CREDIT_FIELDS: &[&str] = &[
    "value",
    "currency",
    "name",
    "category",
    "priority",
    "effective_at",
    "expires_at",
    "expires_after_days",
    "applicability",
];
/// Ten years: Stripe grants have no longer horizon that makes sense for prepaid usage.
const MAX_EXPIRES_AFTER_DAYS: i64 = 3_650;
/// Stripe's largest amount for most currencies is eight digits; twelve leaves room and stops typos.
const MAX_AMOUNT: i64 = 999_999_999_999;
const DEFAULT_CREDIT_NAME: &str = "Prepaid usage credits";

/// A field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A validated request to buy credits.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPurchase {
    pub customer: CustomerId,
    pub amount: i64,
    pub currency: Currency,
    /// None: creditd creates and finalizes the invoice itself.
    pub invoice_id: Option<InvoiceId>,
    pub credit: CreditSpec,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Set when creditd creates the invoice.
    pub funding: Option<Funding>,
}

/// Parses and checks the body; `now` bounds `expires_at`.
pub fn parse(body: &Value, now: i64) -> Result<NewPurchase, FieldError> {
    let object = body
        .as_object()
        .ok_or_else(|| invalid("body", "must be a JSON object"))?;
    reject_unknown(object, TOP_LEVEL_FIELDS, "")?;
    let customer =
        stripe_id(object, "customer", "cus_")?.ok_or_else(|| invalid("customer", "is required"))?;
    let amount = positive_amount(object.get("amount"), "amount")?
        .ok_or_else(|| invalid("amount", "is required"))?;
    let currency = currency(object.get("currency"), "currency")?
        .ok_or_else(|| invalid("currency", "is required"))?;
    let invoice_id = stripe_id(object, "invoice_id", "in_")?;
    let description = optional_string(object.get("description"), "description", 500)?;
    let metadata = metadata(object.get("metadata"))?;
    let credit = credit(object.get("credit"), amount, &currency, now)?;
    let funding = funding(object, invoice_id.is_some())?;
    Ok(NewPurchase {
        customer,
        amount,
        currency,
        invoice_id,
        credit,
        description,
        metadata,
        funding,
    })
}

fn reject_unknown(
    object: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
) -> Result<(), FieldError> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(invalid(&format!("{prefix}{key}"), "is not a known field")),
        None => Ok(()),
    }
}

/// A typed Stripe id, checked by the id type itself.
fn stripe_id<T: std::str::FromStr>(
    object: &Map<String, Value>,
    field: &str,
    prefix: &str,
) -> Result<Option<T>, FieldError> {
    let Some(value) = optional_string(object.get(field), field, 255)? else {
        return Ok(None);
    };
    value.parse().map(Some).map_err(|_| {
        invalid(
            field,
            format!("must be a Stripe id starting with '{prefix}'"),
        )
    })
}

fn optional_string(
    value: Option<&Value>,
    field: &str,
    max_len: usize,
) -> Result<Option<String>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(invalid(field, "must not be empty")),
        Some(Value::String(s)) if s.chars().count() > max_len => Err(invalid(
            field,
            format!("must be at most {max_len} characters"),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn integer(value: Option<&Value>, field: &str) -> Result<Option<i64>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(field, "must be a whole number")),
        Some(_) => Err(invalid(field, "must be a whole number")),
    }
}

fn positive_amount(value: Option<&Value>, field: &str) -> Result<Option<i64>, FieldError> {
    match integer(value, field)? {
        Some(amount) if !(1..=MAX_AMOUNT).contains(&amount) => Err(invalid(
            field,
            format!(
                "must be a positive integer in the currency's minor unit, at most {MAX_AMOUNT}"
            ),
        )),
        other => Ok(other),
    }
}

fn currency(value: Option<&Value>, field: &str) -> Result<Option<Currency>, FieldError> {
    optional_string(value, field, 3)?
        .map(|code| Currency::parse(&code).map_err(|m| invalid(field, m)))
        .transpose()
}

fn metadata(value: Option<&Value>) -> Result<BTreeMap<String, String>, FieldError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(object)) => object,
        Some(_) => return Err(invalid("metadata", "must be an object of string values")),
    };
    if object.len() > 40 {
        return Err(invalid("metadata", "may hold at most 40 keys"));
    }
    let mut out = BTreeMap::new();
    for (key, value) in object {
        let field = format!("metadata.{key}");
        if key.is_empty() || key.chars().count() > 40 || key.contains(['[', ']']) {
            return Err(invalid(
                &field,
                "keys must be 1 to 40 characters without brackets",
            ));
        }
        if RESERVED_METADATA_KEYS.contains(&key.as_str()) {
            return Err(invalid(&field, "is reserved for creditd"));
        }
        match value {
            Value::String(s) if s.chars().count() <= 500 => out.insert(key.clone(), s.clone()),
            _ => {
                return Err(invalid(
                    &field,
                    "must be a string of at most 500 characters",
                ));
            }
        };
    }
    Ok(out)
}

fn credit(
    value: Option<&Value>,
    amount: i64,
    currency_of_purchase: &Currency,
    now: i64,
) -> Result<CreditSpec, FieldError> {
    let empty = Map::new();
    let object = match value {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(object)) => object,
        Some(_) => return Err(invalid("credit", "must be an object")),
    };
    reject_unknown(object, CREDIT_FIELDS, "credit.")?;
    let value = positive_amount(object.get("value"), "credit.value")?.unwrap_or(amount);
    let currency = currency(object.get("currency"), "credit.currency")?
        .unwrap_or_else(|| currency_of_purchase.clone());
    if &currency != currency_of_purchase {
        return Err(invalid(
            "credit.currency",
            format!("must match the purchase currency '{currency_of_purchase}', got '{currency}'"),
        ));
    }
    let name = optional_string(object.get("name"), "credit.name", 100)?
        .unwrap_or_else(|| DEFAULT_CREDIT_NAME.into());
    let category = optional_string(object.get("category"), "credit.category", 20)?
        .unwrap_or_else(|| "paid".into());
    if !matches!(category.as_str(), "paid" | "promotional") {
        return Err(invalid(
            "credit.category",
            "must be 'paid' or 'promotional'",
        ));
    }
    let priority = integer(object.get("priority"), "credit.priority")?;
    if priority.is_some_and(|p| !(0..=100).contains(&p)) {
        return Err(invalid(
            "credit.priority",
            "must be between 0 (highest) and 100 (lowest)",
        ));
    }
    let effective_at = timestamp(object.get("effective_at"), "credit.effective_at")?;
    let expires_at = timestamp(object.get("expires_at"), "credit.expires_at")?;
    if let Some(expires) = expires_at {
        if expires <= now {
            return Err(invalid("credit.expires_at", "must be in the future"));
        }
        if effective_at.is_some_and(|effective| expires <= effective) {
            return Err(invalid(
                "credit.expires_at",
                "must be after credit.effective_at",
            ));
        }
    }
    let expires_after_days = integer(
        object.get("expires_after_days"),
        "credit.expires_after_days",
    )?;
    if let Some(days) = expires_after_days {
        if !(1..=MAX_EXPIRES_AFTER_DAYS).contains(&days) {
            return Err(invalid(
                "credit.expires_after_days",
                format!("must be between 1 and {MAX_EXPIRES_AFTER_DAYS}"),
            ));
        }
        if expires_at.is_some() {
            return Err(invalid(
                "credit.expires_after_days",
                "cannot be combined with credit.expires_at",
            ));
        }
    }
    let applicability = applicability(object.get("applicability"))?;
    Ok(CreditSpec {
        value,
        currency,
        name,
        category,
        priority,
        effective_at,
        expires_at,
        expires_after_days,
        applicability,
    })
}

fn timestamp(value: Option<&Value>, field: &str) -> Result<Option<i64>, FieldError> {
    match integer(value, field)? {
        // Between 2001 and 2286: catches milliseconds passed as seconds.
        Some(t) if !(1_000_000_000..10_000_000_000).contains(&t) => {
            Err(invalid(field, "must be a unix timestamp in seconds"))
        }
        other => Ok(other),
    }
}

fn applicability(value: Option<&Value>) -> Result<Applicability, FieldError> {
    let object = match value {
        None | Some(Value::Null) => {
            return Ok(Applicability::PriceType {
                price_type: "metered".into(),
            });
        }
        Some(Value::Object(object)) => object,
        Some(_) => return Err(invalid("credit.applicability", "must be an object")),
    };
    match (object.get("price_type"), object.get("prices"), object.len()) {
        (Some(Value::String(kind)), None, 1) if kind == "metered" => Ok(Applicability::PriceType {
            price_type: kind.clone(),
        }),
        (Some(_), None, 1) => Err(invalid(
            "credit.applicability.price_type",
            "must be 'metered'",
        )),
        (None, Some(Value::Array(prices)), 1) => {
            if prices.is_empty() || prices.len() > 100 {
                return Err(invalid(
                    "credit.applicability.prices",
                    "must list 1 to 100 price ids",
                ));
            }
            let ids = prices
                .iter()
                .map(|price| match price {
                    Value::String(id)
                        if id.starts_with("price_") && id.len() > 6 && id.len() <= 255 =>
                    {
                        Ok(id.clone())
                    }
                    _ => Err(invalid(
                        "credit.applicability.prices",
                        "must be price ids starting with 'price_'",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Applicability::Prices { prices: ids })
        }
        _ => Err(invalid(
            "credit.applicability",
            "must be {\"price_type\": \"metered\"} or {\"prices\": [\"price_...\"]}",
        )),
    }
}

fn funding(object: &Map<String, Value>, has_invoice: bool) -> Result<Option<Funding>, FieldError> {
    let method = optional_string(object.get("collection_method"), "collection_method", 30)?;
    let days = integer(object.get("days_until_due"), "days_until_due")?;
    let checkout = match object.get("funding") {
        None | Some(Value::Null) => None,
        Some(value) => super::checkout_request::parse(value)?,
    };
    if checkout.is_some() && (method.is_some() || days.is_some()) {
        return Err(invalid(
            "funding",
            "checkout funding takes no collection_method or days_until_due",
        ));
    }
    if has_invoice {
        if method.is_some() || days.is_some() || checkout.is_some() {
            let field = if checkout.is_some() {
                "funding"
            } else if method.is_some() {
                "collection_method"
            } else {
                "days_until_due"
            };
            return Err(invalid(
                field,
                "applies only when creditd creates the invoice (no invoice_id)",
            ));
        }
        return Ok(None);
    }
    let collection_method = method.unwrap_or_else(|| "charge_automatically".into());
    match (collection_method.as_str(), days) {
        ("charge_automatically", None) => {}
        ("charge_automatically", Some(_)) => {
            return Err(invalid(
                "days_until_due",
                "applies only to collection_method 'send_invoice'",
            ));
        }
        ("send_invoice", Some(d)) if (1..=365).contains(&d) => {}
        ("send_invoice", _) => {
            return Err(invalid(
                "days_until_due",
                "is required for 'send_invoice', between 1 and 365",
            ));
        }
        _ => {
            return Err(invalid(
                "collection_method",
                "must be 'charge_automatically' or 'send_invoice'",
            ));
        }
    }
    Ok(Some(Funding {
        collection_method,
        days_until_due: days,
        checkout,
        pay_off_session: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn field_of(body: Value) -> String {
        parse(&body, NOW).unwrap_err().field
    }

    #[test]
    fn credit_defaults_follow_the_purchase() {
        let parsed = parse(
            &json!({"customer": "cus_1", "amount": 5000, "currency": "USD", "invoice_id": "in_1"}),
            NOW,
        )
        .unwrap();
        assert_eq!(parsed.currency.as_str(), "usd");
        assert_eq!(parsed.credit.value, 5000);
        assert_eq!(parsed.credit.category, "paid");
        assert_eq!(
            parsed.credit.applicability,
            Applicability::PriceType {
                price_type: "metered".into()
            }
        );
        assert!(parsed.funding.is_none());
    }

    #[test]
    fn without_an_invoice_creditd_funds_it_by_charging_automatically() {
        let parsed = parse(
            &json!({"customer": "cus_1", "amount": 5000, "currency": "jpy"}),
            NOW,
        )
        .unwrap();
        assert_eq!(
            parsed.funding.unwrap().collection_method,
            "charge_automatically"
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let base =
            json!({"customer": "cus_1", "amount": 5000, "currency": "usd", "invoice_id": "in_1"});
        let with = |patch: Value| {
            let mut body = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        assert_eq!(
            field_of(json!({"amount": 1, "currency": "usd"})),
            "customer"
        );
        assert_eq!(field_of(with(json!({"customer": "acct_1"}))), "customer");
        assert_eq!(field_of(with(json!({"amount": 0}))), "amount");
        assert_eq!(field_of(with(json!({"amount": 12.5}))), "amount");
        assert_eq!(field_of(with(json!({"amount": "5000"}))), "amount");
        assert_eq!(field_of(with(json!({"currency": "dollars"}))), "currency");
        assert_eq!(field_of(with(json!({"invoice_id": "inv"}))), "invoice_id");
        assert_eq!(field_of(with(json!({"ammount": 1}))), "ammount");
        assert_eq!(
            field_of(with(json!({"credit": {"currency": "eur"}}))),
            "credit.currency"
        );
        assert_eq!(
            field_of(with(json!({"credit": {"category": "free"}}))),
            "credit.category"
        );
        assert_eq!(
            field_of(with(json!({"credit": {"priority": 101}}))),
            "credit.priority"
        );
        assert_eq!(
            field_of(with(json!({"credit": {"name": "x".repeat(101)}}))),
            "credit.name"
        );
        assert_eq!(
            field_of(with(json!({"credit": {"expires_at": NOW - 1}}))),
            "credit.expires_at"
        );
        assert_eq!(
            field_of(with(
                json!({"credit": {"effective_at": 1_700_000_000_000_i64}})
            )),
            "credit.effective_at"
        );
        assert_eq!(
            field_of(with(json!({"credit": {"applicability": {"prices": []}}}))),
            "credit.applicability.prices"
        );
        assert_eq!(
            field_of(with(
                json!({"credit": {"applicability": {"price_type": "licensed"}}})
            )),
            "credit.applicability.price_type"
        );
        assert_eq!(
            field_of(with(json!({"credit": {"bonus": 1}}))),
            "credit.bonus"
        );
        assert_eq!(
            field_of(with(json!({"metadata": {"creditd_purchase_id": "x"}}))),
            "metadata.creditd_purchase_id"
        );
        assert_eq!(field_of(with(json!({"metadata": {"k": 1}}))), "metadata.k");
        assert_eq!(
            field_of(with(json!({"collection_method": "send_invoice"}))),
            "collection_method"
        );
        assert_eq!(
            field_of(
                json!({"customer": "cus_1", "amount": 1, "currency": "usd", "collection_method": "send_invoice"})
            ),
            "days_until_due"
        );
        assert_eq!(field_of(json!([1])), "body");
    }

    /// A body registering invoice `in_1` with `patch` applied; a null in `patch` removes the field.
    fn registering(patch: Value) -> Value {
        patched(
            json!({"customer": "cus_1", "amount": 5000, "currency": "usd", "invoice_id": "in_1"}),
            patch,
        )
    }

    /// A body where creditd creates the invoice, with `patch` applied.
    fn funded(patch: Value) -> Value {
        patched(
            json!({"customer": "cus_1", "amount": 5000, "currency": "usd"}),
            patch,
        )
    }

    fn patched(mut body: Value, patch: Value) -> Value {
        for (key, value) in patch.as_object().unwrap() {
            match value {
                Value::Null => body.as_object_mut().unwrap().remove(key),
                _ => body
                    .as_object_mut()
                    .unwrap()
                    .insert(key.clone(), value.clone()),
            };
        }
        body
    }

    fn registering_credit(credit: Value) -> Value {
        registering(json!({ "credit": credit }))
    }

    fn applicability(applicability: Value) -> Value {
        registering_credit(json!({ "applicability": applicability }))
    }

    fn checkout(extra: Value) -> Value {
        let mut funding = json!({"method": "checkout", "success_url": "https://shop.example/ok",
                                 "cancel_url": "https://shop.example/no"});
        funding = patched(funding, extra);
        funded(json!({ "funding": funding }))
    }

    /// One bad body for every way a field can be wrong, and the field the API names for it. Written
    /// against the hand-walking parser before it was replaced by serde: the names must not change.
    #[test]
    fn every_field_error_names_the_same_field_as_before() {
        let long = |n: usize| "x".repeat(n);
        let many_keys: serde_json::Map<String, Value> =
            (0..41).map(|i| (format!("k{i}"), json!("v"))).collect();
        let many_prices: Vec<String> = (0..101).map(|i| format!("price_{i}")).collect();
        let cases: Vec<(Value, &str)> = vec![
            // The body itself.
            (json!([1]), "body"),
            (json!("purchase"), "body"),
            (json!(null), "body"),
            (json!(vec![Value::Null; 10]), "body"),
            // Unknown fields, at the top and in the credit.
            (registering(json!({"ammount": 1})), "ammount"),
            (registering_credit(json!({"bonus": 1})), "credit.bonus"),
            // Required fields, missing or null.
            (registering(json!({"customer": null})), "customer"),
            (registering(json!({"amount": null})), "amount"),
            (registering(json!({"currency": null})), "currency"),
            (
                json!({"customer": null, "amount": 1, "currency": "usd"}),
                "customer",
            ),
            (
                json!({"customer": "cus_1", "amount": null, "currency": "usd"}),
                "amount",
            ),
            // Strings: type, empty, length, form.
            (registering(json!({"customer": 5})), "customer"),
            (registering(json!({"customer": ""})), "customer"),
            (registering(json!({"customer": "  "})), "customer"),
            (
                registering(json!({"customer": format!("cus_{}", long(252))})),
                "customer",
            ),
            (registering(json!({"customer": "acct_1"})), "customer"),
            (registering(json!({"invoice_id": "inv"})), "invoice_id"),
            (registering(json!({"invoice_id": 1})), "invoice_id"),
            (registering(json!({"invoice_id": ""})), "invoice_id"),
            (registering(json!({"description": ""})), "description"),
            (
                registering(json!({"description": long(501)})),
                "description",
            ),
            (registering(json!({"description": ["d"]})), "description"),
            (registering(json!({"currency": "dollars"})), "currency"),
            (registering(json!({"currency": "us"})), "currency"),
            (registering(json!({"currency": " usd"})), "currency"),
            (registering(json!({"currency": ""})), "currency"),
            (registering(json!({"currency": 840})), "currency"),
            // Amounts: whole, positive, bounded.
            (registering(json!({"amount": 0})), "amount"),
            (registering(json!({"amount": -5})), "amount"),
            (
                registering(json!({"amount": 1_000_000_000_000_i64})),
                "amount",
            ),
            (registering(json!({"amount": 12.5})), "amount"),
            (registering(json!({"amount": 5000.0})), "amount"),
            (registering(json!({"amount": "5000"})), "amount"),
            (registering(json!({"amount": u64::MAX})), "amount"),
            // Metadata.
            (registering(json!({"metadata": "k=v"})), "metadata"),
            (registering(json!({"metadata": ["k"]})), "metadata"),
            (registering(json!({"metadata": many_keys})), "metadata"),
            (registering(json!({"metadata": {"": "v"}})), "metadata."),
            (
                registering(json!({"metadata": {"a[b]": "v"}})),
                "metadata.a[b]",
            ),
            (
                registering(json!({"metadata": {"k".repeat(41): "v"}})),
                "metadata.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
            ),
            (
                registering(json!({"metadata": {"creditd_purchase_id": "x"}})),
                "metadata.creditd_purchase_id",
            ),
            (
                registering(json!({"metadata": {"invoice_id": "x"}})),
                "metadata.invoice_id",
            ),
            (registering(json!({"metadata": {"k": 1}})), "metadata.k"),
            (registering(json!({"metadata": {"k": null}})), "metadata.k"),
            (
                registering(json!({"metadata": {"k": long(501)}})),
                "metadata.k",
            ),
            (registering(json!({"metadata": {"a.b": 1}})), "metadata.a.b"),
            // The credit object.
            (registering(json!({"credit": 5})), "credit"),
            (registering(json!({"credit": "paid"})), "credit"),
            (registering(json!({"credit": []})), "credit"),
            (
                registering(json!({"credit": vec![Value::Null; 9]})),
                "credit",
            ),
            (registering_credit(json!({"value": 0})), "credit.value"),
            (
                registering_credit(json!({"value": 1_000_000_000_000_i64})),
                "credit.value",
            ),
            (registering_credit(json!({"value": 1.5})), "credit.value"),
            (registering_credit(json!({"value": "1"})), "credit.value"),
            (
                registering_credit(json!({"currency": "eur"})),
                "credit.currency",
            ),
            (
                registering_credit(json!({"currency": "euro"})),
                "credit.currency",
            ),
            (
                registering_credit(json!({"currency": "eu"})),
                "credit.currency",
            ),
            (
                registering_credit(json!({"currency": 978})),
                "credit.currency",
            ),
            (registering_credit(json!({"name": ""})), "credit.name"),
            (
                registering_credit(json!({"name": long(101)})),
                "credit.name",
            ),
            (registering_credit(json!({"name": 1})), "credit.name"),
            (
                registering_credit(json!({"category": "free"})),
                "credit.category",
            ),
            (
                registering_credit(json!({"category": ""})),
                "credit.category",
            ),
            (
                registering_credit(json!({"category": long(21)})),
                "credit.category",
            ),
            (
                registering_credit(json!({"category": true})),
                "credit.category",
            ),
            (
                registering_credit(json!({"priority": 101})),
                "credit.priority",
            ),
            (
                registering_credit(json!({"priority": -1})),
                "credit.priority",
            ),
            (
                registering_credit(json!({"priority": "high"})),
                "credit.priority",
            ),
            (
                registering_credit(json!({"priority": 0.5})),
                "credit.priority",
            ),
            (
                registering_credit(json!({"effective_at": 1_700_000_000_000_i64})),
                "credit.effective_at",
            ),
            (
                registering_credit(json!({"effective_at": 999_999_999})),
                "credit.effective_at",
            ),
            (
                registering_credit(json!({"effective_at": "soon"})),
                "credit.effective_at",
            ),
            (
                registering_credit(json!({"expires_at": NOW - 1})),
                "credit.expires_at",
            ),
            (
                registering_credit(json!({"expires_at": NOW})),
                "credit.expires_at",
            ),
            (
                registering_credit(json!({"effective_at": NOW + 100, "expires_at": NOW + 100})),
                "credit.expires_at",
            ),
            (
                registering_credit(json!({"expires_at": 1_900_000_000_000_i64})),
                "credit.expires_at",
            ),
            (
                registering_credit(json!({"expires_at": "never"})),
                "credit.expires_at",
            ),
            (
                registering_credit(json!({"expires_after_days": 0})),
                "credit.expires_after_days",
            ),
            (
                registering_credit(json!({"expires_after_days": 3651})),
                "credit.expires_after_days",
            ),
            (
                registering_credit(json!({"expires_after_days": 30, "expires_at": NOW + 10})),
                "credit.expires_after_days",
            ),
            (
                registering_credit(json!({"expires_after_days": 1.5})),
                "credit.expires_after_days",
            ),
            // Applicability: exactly one of two shapes.
            (applicability(json!("metered")), "credit.applicability"),
            (applicability(json!("price_type")), "credit.applicability"),
            (applicability(json!("prices")), "credit.applicability"),
            (applicability(json!({})), "credit.applicability"),
            (
                applicability(json!({"scope": "all"})),
                "credit.applicability",
            ),
            (
                applicability(json!({"price_type": "metered", "prices": ["price_1"]})),
                "credit.applicability",
            ),
            (
                applicability(json!({"price_type": "metered", "scope": "all"})),
                "credit.applicability",
            ),
            (
                applicability(json!({"prices": "price_1"})),
                "credit.applicability",
            ),
            (
                applicability(json!({"prices": null})),
                "credit.applicability",
            ),
            (
                applicability(json!({"price_type": "licensed"})),
                "credit.applicability.price_type",
            ),
            (
                applicability(json!({"price_type": null})),
                "credit.applicability.price_type",
            ),
            (
                applicability(json!({"price_type": 1})),
                "credit.applicability.price_type",
            ),
            (
                applicability(json!({"prices": []})),
                "credit.applicability.prices",
            ),
            (
                applicability(json!({"prices": many_prices})),
                "credit.applicability.prices",
            ),
            (
                applicability(json!({"prices": ["prod_1"]})),
                "credit.applicability.prices",
            ),
            (
                applicability(json!({"prices": ["price_"]})),
                "credit.applicability.prices",
            ),
            (
                applicability(json!({"prices": [format!("price_{}", long(250))]})),
                "credit.applicability.prices",
            ),
            (
                applicability(json!({"prices": ["price_1", 2]})),
                "credit.applicability.prices",
            ),
            // How creditd funds the invoice it creates.
            (
                funded(json!({"collection_method": "cash"})),
                "collection_method",
            ),
            (
                funded(json!({"collection_method": ""})),
                "collection_method",
            ),
            (
                funded(json!({"collection_method": long(31)})),
                "collection_method",
            ),
            (funded(json!({"collection_method": 1})), "collection_method"),
            (
                funded(json!({"collection_method": "send_invoice"})),
                "days_until_due",
            ),
            (
                funded(json!({"collection_method": "send_invoice", "days_until_due": 0})),
                "days_until_due",
            ),
            (
                funded(json!({"collection_method": "send_invoice", "days_until_due": 366})),
                "days_until_due",
            ),
            (funded(json!({"days_until_due": 5})), "days_until_due"),
            (
                funded(json!({"collection_method": "charge_automatically", "days_until_due": 5})),
                "days_until_due",
            ),
            (
                funded(json!({"collection_method": "send_invoice", "days_until_due": "5"})),
                "days_until_due",
            ),
            (
                registering(json!({"collection_method": "send_invoice"})),
                "collection_method",
            ),
            (registering(json!({"days_until_due": 5})), "days_until_due"),
            (
                registering(json!({"funding": {"method": "checkout",
                    "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"}})),
                "funding",
            ),
            (
                patched(
                    checkout(json!({})),
                    json!({"collection_method": "send_invoice"}),
                ),
                "funding",
            ),
            (
                patched(checkout(json!({})), json!({"days_until_due": 5})),
                "funding",
            ),
            // The funding object.
            (funded(json!({"funding": "checkout"})), "funding"),
            (funded(json!({"funding": {}})), "funding"),
            (
                funded(json!({"funding": {"method": "wire"}})),
                "funding.method",
            ),
            (
                funded(json!({"funding": {"method": "invoice", "extra": 1}})),
                "funding.extra",
            ),
            (
                funded(
                    json!({"funding": {"method": "invoice", "success_url": "https://a.example"}}),
                ),
                "funding.success_url",
            ),
            (
                funded(json!({"funding": {"method": "invoice", "save_payment_method": false}})),
                "funding.save_payment_method",
            ),
            (
                checkout(json!({"success_url": null})),
                "funding.success_url",
            ),
            (checkout(json!({"cancel_url": null})), "funding.cancel_url"),
            (
                checkout(json!({"success_url": "ftp://shop.example"})),
                "funding.success_url",
            ),
            (checkout(json!({"cancel_url": "/no"})), "funding.cancel_url"),
            (checkout(json!({"success_url": 1})), "funding.success_url"),
            (
                checkout(json!({"save_payment_method": "yes"})),
                "funding.save_payment_method",
            ),
        ];
        for (body, field) in &cases {
            let error = parse(body, NOW).expect_err(&format!("{body} is refused"));
            assert_eq!(error.field, *field, "{body}: {error:?}");
            assert!(!error.message.is_empty(), "{body}");
        }
    }

    /// What the hand-walking parser accepted, the serde one accepts alike.
    #[test]
    fn null_means_absent_for_every_optional_field() {
        let minimal = parse(&funded(json!({})), NOW).unwrap();
        let nulls = json!({"invoice_id": null, "description": null, "metadata": null,
                           "credit": null, "collection_method": null, "days_until_due": null,
                           "funding": null});
        let mut body = funded(json!({}));
        body.as_object_mut()
            .unwrap()
            .extend(nulls.as_object().unwrap().clone());
        assert_eq!(parse(&body, NOW).unwrap(), minimal);
        let credit_nulls = json!({"value": null, "currency": null, "name": null, "category": null,
                                  "priority": null, "effective_at": null, "expires_at": null,
                                  "expires_after_days": null, "applicability": null});
        let with_credit = funded(json!({ "credit": credit_nulls }));
        assert_eq!(parse(&with_credit, NOW).unwrap(), minimal);
        let invoice_funding = funded(json!({"funding": {"method": "invoice"}}));
        assert_eq!(parse(&invoice_funding, NOW).unwrap(), minimal);
    }
}
