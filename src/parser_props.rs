//! Property tests of the parsers that take input from outside: the `Stripe-Signature` header,
//! Stripe events and purchase requests get arbitrary bytes, strings and JSON. None may panic;
//! each either accepts or gives an error that names the problem. Case counts are bounded so CI
//! stays fast.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::ingest::parse_event;
use crate::purchase::request;
use crate::secret::Secret;
use crate::stripe::signature;

const CASES: u32 = 256;

/// Any JSON document, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn valid_purchase() -> Value {
    json!({"customer": "cus_1", "amount": 5000, "currency": "usd", "invoice_id": "in_1",
           "credit": {"value": 5000, "currency": "usd", "name": "Credits", "category": "paid",
                      "priority": 0, "applicability": {"price_type": "metered"}},
           "description": "d", "metadata": {"k": "v"}})
}

const PURCHASE_FIELDS: &[&str] = &[
    "customer",
    "amount",
    "currency",
    "invoice_id",
    "credit",
    "description",
    "metadata",
    "collection_method",
    "days_until_due",
    "unknown_field",
];
const CREDIT_FIELDS: &[&str] = &[
    "value",
    "currency",
    "name",
    "category",
    "priority",
    "effective_at",
    "expires_at",
    "applicability",
];

fn check_purchase(body: &Value) -> Result<(), TestCaseError> {
    if let Err(error) = request::parse(body, 1_800_000_000) {
        prop_assert!(
            !error.field.is_empty(),
            "an error names its field: {}",
            error.message
        );
        prop_assert!(!error.message.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn signature_verification_never_panics(
        header in proptest::option::of("\\PC{0,120}"),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        now in any::<i64>(),
        tolerance in 0_u64..=3600,
    ) {
        let secrets = [Secret::from("whsec_a"), Secret::from("whsec_b")];
        let result = signature::verify(header.as_deref(), &payload, &secrets, now, tolerance);
        if let Err(error) = result {
            prop_assert!(!error.to_string().is_empty() && !error.reason().is_empty());
        }
    }

    #[test]
    fn a_signed_payload_passes_exactly_within_the_tolerance(
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        timestamp in any::<i64>(),
        age in any::<i64>(),
        tolerance in 0_u64..=3600,
    ) {
        let header = signature::sign("whsec_a", timestamp, &payload);
        let now = timestamp.saturating_add(age);
        let result = signature::verify(Some(&header), &payload, &[Secret::from("whsec_a")], now, tolerance);
        prop_assert_eq!(result.is_ok(), now.abs_diff(timestamp) <= tolerance);
    }

    #[test]
    fn the_event_parser_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(error) = parse_event(&body) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn the_event_parser_accepts_or_names_the_problem(
        field in prop::sample::select(vec!["id", "type", "livemode", "created", "data", "object"]),
        value in any_json(),
    ) {
        let mut event = json!({"id": "evt_1", "object": "event", "type": "invoice.paid",
                               "livemode": false, "created": 1_700_000_000,
                               "data": {"object": {"id": "in_1", "object": "invoice"}}});
        event[field] = value;
        let body = serde_json::to_vec(&event).unwrap();
        match parse_event(&body) {
            // Stored exactly as received: the raw text is the body, byte for byte.
            Ok((_, raw)) => prop_assert_eq!(raw.get().as_bytes(), &body[..]),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn the_purchase_parser_never_panics_on_any_json(body in any_json()) {
        check_purchase(&body)?;
    }

    #[test]
    fn the_purchase_parser_accepts_or_names_a_bad_field(
        field in prop::sample::select(PURCHASE_FIELDS.to_vec()),
        credit_field in prop::sample::select(CREDIT_FIELDS.to_vec()),
        value in any_json(),
        in_credit in any::<bool>(),
    ) {
        let mut body = valid_purchase();
        if in_credit {
            body["credit"][credit_field] = value;
        } else {
            body[field] = value;
        }
        check_purchase(&body)?;
    }

    #[test]
    fn the_purchase_parser_never_panics_on_strings(text in "\\PC{0,200}") {
        if let Ok(body) = serde_json::from_str::<Value>(&text) {
            check_purchase(&body)?;
        }
    }
}
