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
#[path = "request_tests.rs"]
mod tests;
