//! Turns a `POST /v1/purchases` body into a valid new purchase, or an error naming the bad field:
//! serde reads the shape ([`PurchaseRequest`], unknown fields refused), then
//! [`PurchaseRequest::validate`] checks the rules serde cannot express.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_path_to_error::Segment;
use utoipa::ToSchema;

use super::checkout_request::FundingRequest;
use super::{Applicability, CreditSpec, Funding};
use crate::ids::{CustomerId, InvoiceId};
use crate::money::Currency;

/// Metadata keys creditd writes itself; clients may not set them.
pub const RESERVED_METADATA_KEYS: &[&str] = &["creditd_purchase_id", "invoice_id"];
/// Ten years: Stripe grants have no longer horizon that makes sense for prepaid usage.
const MAX_EXPIRES_AFTER_DAYS: i64 = 3_650;
/// Stripe's largest amount for most currencies is eight digits; twelve leaves room and stops typos.
const MAX_AMOUNT: i64 = 999_999_999_999;
const DEFAULT_CREDIT_NAME: &str = "Prepaid usage credits";
/// Stripe's limits on metadata.
const MAX_METADATA_KEYS: usize = 40;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;
const MAX_PRICES: usize = 100;
const APPLICABILITY_SHAPES: &str =
    "must be {\"price_type\": \"metered\"} or {\"prices\": [\"price_...\"]}";

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

/// `POST /v1/purchases`. Without `invoice_id`, creditd creates, fills and finalizes the invoice.
// Null means absent for every field, as it always has: so the required ones are options too, and
// `validate` says they are required. Ids and currencies stay text here so that `validate` checks
// them with the messages the API has always given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    #[schema(value_type = String, required = true, example = "cus_R2d2")]
    customer: Option<String>,
    /// In the currency's minor unit (cents; yen for JPY).
    #[schema(value_type = i64, required = true, example = 5000, minimum = 1)]
    amount: Option<i64>,
    #[schema(value_type = String, required = true, example = "usd")]
    currency: Option<String>,
    invoice_id: Option<String>,
    #[serde(default, deserialize_with = "optional_object")]
    credit: Option<CreditRequest>,
    description: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
    /// Only without `invoice_id`: `charge_automatically` (default) or `send_invoice`.
    collection_method: Option<String>,
    /// Required with `send_invoice`, 1 to 365.
    days_until_due: Option<i64>,
    /// Only without `invoice_id`: pay on a Stripe Checkout page instead of the invoice.
    #[serde(default, deserialize_with = "optional_object")]
    funding: Option<FundingRequest>,
}

/// The credit grant a purchase buys; every field has a default derived from the purchase.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object")]
pub struct CreditRequest {
    /// Default: the purchase amount.
    value: Option<i64>,
    /// Default (and only choice): the purchase currency.
    currency: Option<String>,
    #[schema(max_length = 100)]
    name: Option<String>,
    /// `paid` (default) or `promotional`.
    category: Option<String>,
    #[schema(minimum = 0, maximum = 100)]
    priority: Option<i64>,
    effective_at: Option<i64>,
    /// A fixed expiry. If it has passed by the time the invoice is paid, no grant is created and
    /// the purchase ends `rejected` (and is alerted on).
    expires_at: Option<i64>,
    /// Credits valid for this many days from the grant (1 to 3650); exclusive with `expires_at`.
    #[schema(minimum = 1, maximum = 3650)]
    expires_after_days: Option<i64>,
    applicability: Option<ApplicabilityRequest>,
}

/// `{"price_type": "metered"}` (default) or `{"prices": ["price_.."]}`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ApplicabilityRequest {
    /// Only `metered`.
    PriceType(String),
    /// 1 to 100 price ids.
    Prices(Vec<String>),
}

/// Parses and checks the body; `now` bounds `expires_at`.
pub fn parse(body: &Value, now: i64) -> Result<NewPurchase, FieldError> {
    // Serde would also read a struct from an array, field by field in order.
    if !body.is_object() {
        return Err(invalid("body", "must be a JSON object"));
    }
    let request: PurchaseRequest = serde_path_to_error::deserialize(body).map_err(shape_error)?;
    request.validate(now)
}

/// Names the field serde stopped at the way the API always has: `credit.priority`,
/// `metadata.<key>`, and a list for a bad item in it.
fn shape_error(error: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let mut names = Vec::new();
    let mut in_list = false;
    for segment in error.path() {
        match segment {
            Segment::Map { key } => names.push(key.as_str()),
            Segment::Enum { variant } => names.push(variant.as_str()),
            Segment::Seq { .. } => in_list = true,
            Segment::Unknown => {}
        }
    }
    let mut field = names.join(".");
    // `prices` that is not a list makes the applicability neither of its two shapes.
    if field == "credit.applicability.prices" && !in_list {
        field = "credit.applicability".into();
    }
    let inner = error.into_inner().to_string();
    let message = if field == "credit.applicability" {
        APPLICABILITY_SHAPES.to_owned()
    } else if inner.starts_with("unknown field") {
        "is not a known field".to_owned()
    } else {
        format!("is invalid: {inner}")
    };
    FieldError { field, message }
}

impl PurchaseRequest {
    /// The rules serde cannot express, in the order the API has always checked them.
    pub fn validate(self, now: i64) -> Result<NewPurchase, FieldError> {
        let customer = self
            .customer
            .ok_or_else(|| invalid("customer", "is required"))
            .and_then(|id| stripe_id(id, "customer", CustomerId::PREFIX))?;
        let amount = self
            .amount
            .ok_or_else(|| invalid("amount", "is required"))
            .and_then(|amount| positive_amount(amount, "amount"))?;
        let currency = self
            .currency
            .ok_or_else(|| invalid("currency", "is required"))
            .and_then(|code| currency(code, "currency"))?;
        let invoice_id = self
            .invoice_id
            .map(|id| stripe_id(id, "invoice_id", InvoiceId::PREFIX))
            .transpose()?;
        let description = self
            .description
            .map(|text| bounded_text(text, "description", 500))
            .transpose()?;
        let metadata = metadata(self.metadata.unwrap_or_default())?;
        let credit = self
            .credit
            .unwrap_or_default()
            .validate(amount, &currency, now)?;
        let funding = FundingChoice {
            collection_method: self.collection_method,
            days_until_due: self.days_until_due,
            funding: self.funding,
        }
        .validate(invoice_id.is_some())?;
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
}

/// Text that is not blank and at most `max_chars` characters long.
fn bounded_text(text: String, field: &str, max_chars: usize) -> Result<String, FieldError> {
    if text.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(text)
}

/// A typed Stripe id, checked by the id type itself.
fn stripe_id<T: std::str::FromStr>(
    text: String,
    field: &str,
    prefix: &str,
) -> Result<T, FieldError> {
    bounded_text(text, field, 255)?.parse().map_err(|_| {
        invalid(
            field,
            format!("must be a Stripe id starting with '{prefix}'"),
        )
    })
}

fn positive_amount(amount: i64, field: &str) -> Result<i64, FieldError> {
    if !(1..=MAX_AMOUNT).contains(&amount) {
        return Err(invalid(
            field,
            format!(
                "must be a positive integer in the currency's minor unit, at most {MAX_AMOUNT}"
            ),
        ));
    }
    Ok(amount)
}

/// The code exactly as given: at most three characters, so `Currency::parse` trims nothing.
fn currency(code: String, field: &str) -> Result<Currency, FieldError> {
    let code = bounded_text(code, field, 3)?;
    Currency::parse(&code).map_err(|message| invalid(field, message))
}

/// A unix timestamp in seconds between 2001 and 2286: catches milliseconds passed as seconds.
fn timestamp(seconds: i64, field: &str) -> Result<i64, FieldError> {
    if !(1_000_000_000..10_000_000_000).contains(&seconds) {
        return Err(invalid(field, "must be a unix timestamp in seconds"));
    }
    Ok(seconds)
}

fn metadata(metadata: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, FieldError> {
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(invalid(
            "metadata",
            format!("may hold at most {MAX_METADATA_KEYS} keys"),
        ));
    }
    for (key, value) in &metadata {
        let field = format!("metadata.{key}");
        if key.is_empty()
            || key.chars().count() > MAX_METADATA_KEY_CHARS
            || key.contains(['[', ']'])
        {
            return Err(invalid(
                &field,
                format!("keys must be 1 to {MAX_METADATA_KEY_CHARS} characters without brackets"),
            ));
        }
        if RESERVED_METADATA_KEYS.contains(&key.as_str()) {
            return Err(invalid(&field, "is reserved for creditd"));
        }
        if value.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(invalid(
                &field,
                format!("must be a string of at most {MAX_METADATA_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(metadata)
}

impl CreditRequest {
    /// The grant, its defaults taken from the purchase of `amount` in `purchase_currency`.
    fn validate(
        self,
        amount: i64,
        purchase_currency: &Currency,
        now: i64,
    ) -> Result<CreditSpec, FieldError> {
        let value = self
            .value
            .map(|value| positive_amount(value, "credit.value"))
            .transpose()?
            .unwrap_or(amount);
        let currency = self
            .currency
            .map(|code| currency(code, "credit.currency"))
            .transpose()?
            .unwrap_or_else(|| purchase_currency.clone());
        if &currency != purchase_currency {
            return Err(invalid(
                "credit.currency",
                format!("must match the purchase currency '{purchase_currency}', got '{currency}'"),
            ));
        }
        let name = self
            .name
            .map(|name| bounded_text(name, "credit.name", 100))
            .transpose()?
            .unwrap_or_else(|| DEFAULT_CREDIT_NAME.into());
        let category = self
            .category
            .map(|category| bounded_text(category, "credit.category", 20))
            .transpose()?
            .unwrap_or_else(|| "paid".into());
        if !matches!(category.as_str(), "paid" | "promotional") {
            return Err(invalid(
                "credit.category",
                "must be 'paid' or 'promotional'",
            ));
        }
        if self.priority.is_some_and(|p| !(0..=100).contains(&p)) {
            return Err(invalid(
                "credit.priority",
                "must be between 0 (highest) and 100 (lowest)",
            ));
        }
        let effective_at = self
            .effective_at
            .map(|t| timestamp(t, "credit.effective_at"))
            .transpose()?;
        let expires_at = self
            .expires_at
            .map(|t| timestamp(t, "credit.expires_at"))
            .transpose()?;
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
        if let Some(days) = self.expires_after_days {
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
        let applicability = match self.applicability {
            None => Applicability::PriceType {
                price_type: "metered".into(),
            },
            Some(applicability) => applicability.validate()?,
        };
        Ok(CreditSpec {
            value,
            currency,
            name,
            category,
            priority: self.priority,
            effective_at,
            expires_at,
            expires_after_days: self.expires_after_days,
            applicability,
        })
    }
}

impl ApplicabilityRequest {
    fn validate(self) -> Result<Applicability, FieldError> {
        match self {
            ApplicabilityRequest::PriceType(price_type) if price_type == "metered" => {
                Ok(Applicability::PriceType { price_type })
            }
            ApplicabilityRequest::PriceType(_) => Err(invalid(
                "credit.applicability.price_type",
                "must be 'metered'",
            )),
            ApplicabilityRequest::Prices(prices) => {
                if prices.is_empty() || prices.len() > MAX_PRICES {
                    return Err(invalid(
                        "credit.applicability.prices",
                        format!("must list 1 to {MAX_PRICES} price ids"),
                    ));
                }
                let price_id = |id: &String| {
                    id.starts_with("price_") && id.len() > "price_".len() && id.len() <= 255
                };
                if !prices.iter().all(price_id) {
                    return Err(invalid(
                        "credit.applicability.prices",
                        "must be price ids starting with 'price_'",
                    ));
                }
                Ok(Applicability::Prices { prices })
            }
        }
    }
}

/// The request's say on how creditd funds the invoice it creates.
struct FundingChoice {
    collection_method: Option<String>,
    days_until_due: Option<i64>,
    funding: Option<FundingRequest>,
}

impl FundingChoice {
    /// None when the purchase brings its own invoice, which none of these fields may then touch.
    fn validate(self, has_invoice: bool) -> Result<Option<Funding>, FieldError> {
        let method = self
            .collection_method
            .map(|method| bounded_text(method, "collection_method", 30))
            .transpose()?;
        let days = self.days_until_due;
        let checkout = match self.funding {
            None => None,
            Some(funding) => funding.validate()?,
        };
        if checkout.is_some() && (method.is_some() || days.is_some()) {
            return Err(invalid(
                "funding",
                "checkout funding takes no collection_method or days_until_due",
            ));
        }
        if has_invoice {
            let given = if checkout.is_some() {
                Some("funding")
            } else if method.is_some() {
                Some("collection_method")
            } else if days.is_some() {
                Some("days_until_due")
            } else {
                None
            };
            return match given {
                Some(field) => Err(invalid(
                    field,
                    "applies only when creditd creates the invoice (no invoice_id)",
                )),
                None => Ok(None),
            };
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
}

// By hand, not derived: a derived enum would also take the bare string "price_type", and anything
// but an object with exactly one of the two keys is the object's fault rather than a key's.
impl<'de> Deserialize<'de> for ApplicabilityRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ApplicabilityVisitor)
    }
}

struct ApplicabilityVisitor;

impl<'de> Visitor<'de> for ApplicabilityVisitor {
    type Value = ApplicabilityRequest;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object with one key, price_type or prices")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let applicability = match map.next_key::<String>()?.as_deref() {
            Some("price_type") => ApplicabilityRequest::PriceType(map.next_value()?),
            Some("prices") => ApplicabilityRequest::Prices(map.next_value()?),
            _ => return Err(de::Error::custom(APPLICABILITY_SHAPES)),
        };
        match map.next_key::<de::IgnoredAny>()? {
            Some(_) => Err(de::Error::custom(APPLICABILITY_SHAPES)),
            None => Ok(applicability),
        }
    }
}

/// For a field that must be an object: serde's derived structs would also read a JSON array,
/// field by field in order, which the API has never taken.
fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Object<T>(T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            T::deserialize(MapOnly(deserializer)).map(Object)
        }
    }

    Ok(Option::<Object<T>>::deserialize(deserializer)?.map(|Object(value)| value))
}

/// Asks the deserializer it wraps for a map, whatever it is asked for.
struct MapOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
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
        let differing: Vec<String> = cases
            .iter()
            .filter_map(|(body, field)| match parse(body, NOW) {
                Err(error) if error.field == *field && !error.message.is_empty() => None,
                other => Some(format!("{body}: expected {field}, got {other:?}")),
            })
            .collect();
        assert!(
            differing.is_empty(),
            "{} of {} cases differ:\n{}",
            differing.len(),
            cases.len(),
            differing.join("\n")
        );
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
