//! The purchase request parser's tests: every field error it names, and what it accepts.

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
            funded(json!({"funding": {"method": "invoice", "success_url": "https://a.example"}})),
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
