//! The body of `PUT /v1/customers/{customer}/auto_topup`, parsed by serde (unknown fields refused,
//! every error naming its field) and validated like a purchase: its credit spec goes through the
//! purchase parser itself.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::purchase::CreditSpec;
use crate::purchase::request::{self, FieldError};

const MAX_TOPUPS_PER_MONTH: i32 = 1_000;
const MAX_FAILURES_BEFORE_PAUSE: i32 = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRequest {
    threshold: i64,
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    top_up_to: Option<i64>,
    currency: String,
    #[serde(default)]
    credit: Option<serde_json::Map<String, Value>>,
    max_topups_per_month: i32,
    max_amount_per_month: i64,
    #[serde(default = "default_pause_after_failures")]
    pause_after_failures: i32,
    #[serde(default = "default_enabled")]
    enabled: bool,
}

fn default_pause_after_failures() -> i32 {
    3
}

fn default_enabled() -> bool {
    true
}

/// A valid rule, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub threshold: i64,
    pub amount: Option<i64>,
    pub top_up_to: Option<i64>,
    /// The grant each top-up creates; its value is set per top-up.
    pub credit: CreditSpec,
    pub max_topups_per_month: i32,
    pub max_amount_per_month: i64,
    pub pause_after_failures: i32,
    pub enabled: bool,
}

fn invalid(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses and checks a rule for `customer`; `now` as for a purchase.
pub fn parse(customer: &str, body: &Value, now: i64) -> Result<RuleSpec, FieldError> {
    let rule: RuleRequest = serde_path_to_error::deserialize(body).map_err(|error| {
        let path = error.path().to_string();
        FieldError {
            field: if path == "." { "body".into() } else { path },
            message: error.into_inner().to_string(),
        }
    })?;
    let size = match (rule.amount, rule.top_up_to) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid(
                "amount",
                "give exactly one of amount and top_up_to",
            ));
        }
        (Some(amount), None) => amount,
        (None, Some(target)) if target <= rule.threshold => {
            return Err(invalid("top_up_to", "must be above threshold"));
        }
        (None, Some(target)) => target,
    };
    if rule.threshold < 0 {
        return Err(invalid("threshold", "must be 0 or more"));
    }
    if !(1..=MAX_TOPUPS_PER_MONTH).contains(&rule.max_topups_per_month) {
        return Err(invalid(
            "max_topups_per_month",
            "must be between 1 and 1000",
        ));
    }
    if rule.max_amount_per_month < size {
        return Err(invalid(
            "max_amount_per_month",
            "must allow at least one top-up (amount, or top_up_to)",
        ));
    }
    if !(1..=MAX_FAILURES_BEFORE_PAUSE).contains(&rule.pause_after_failures) {
        return Err(invalid("pause_after_failures", "must be between 1 and 20"));
    }
    let mut credit = rule.credit.unwrap_or_default();
    for fixed in ["value", "currency", "expires_at", "effective_at"] {
        if credit.contains_key(fixed) {
            return Err(invalid(
                &format!("credit.{fixed}"),
                "is set per top-up (value and currency follow the top-up; use expires_after_days)",
            ));
        }
    }
    credit.insert("value".into(), json!(size));
    // The same checks as a purchase of this size: customer, amount, currency, credit spec.
    let as_purchase = json!({
        "customer": customer, "amount": size, "currency": rule.currency, "credit": credit,
    });
    let parsed = request::parse(&as_purchase, now)?;
    Ok(RuleSpec {
        threshold: rule.threshold,
        amount: rule.amount,
        top_up_to: rule.top_up_to,
        credit: parsed.credit,
        max_topups_per_month: rule.max_topups_per_month,
        max_amount_per_month: rule.max_amount_per_month,
        pause_after_failures: rule.pause_after_failures,
        enabled: rule.enabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(extra: Value) -> Value {
        let mut base = json!({"threshold": 1000, "amount": 5000, "currency": "usd",
                              "max_topups_per_month": 4, "max_amount_per_month": 20000});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    }

    fn field(extra: Value) -> String {
        parse("cus_1", &body(extra), 1_800_000_000)
            .unwrap_err()
            .field
    }

    #[test]
    fn a_rule_is_validated_like_a_purchase_and_names_the_bad_field() {
        let ok = parse("cus_1", &body(json!({})), 1_800_000_000).unwrap();
        assert_eq!(ok.credit.value, 5000);
        assert_eq!(ok.pause_after_failures, 3);
        assert_eq!(field(json!({"top_up_to": 9000})), "amount");
        assert_eq!(field(json!({"threshold": "x"})), "threshold");
        assert_eq!(field(json!({"surprise": 1})), "surprise");
        assert_eq!(field(json!({"currency": "usdollars"})), "currency");
        assert_eq!(
            field(json!({"credit": {"priority": 500}})),
            "credit.priority"
        );
        assert_eq!(field(json!({"credit": {"value": 1}})), "credit.value");
        assert_eq!(
            field(json!({"max_amount_per_month": 10})),
            "max_amount_per_month"
        );
        assert_eq!(
            field(json!({"max_topups_per_month": 0})),
            "max_topups_per_month"
        );
        let target = json!({"amount": null, "top_up_to": 500});
        assert_eq!(field(target), "top_up_to");
    }
}
