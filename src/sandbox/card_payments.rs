//! The payment objects behind a card payment (PaymentIntent, Charge, InvoicePayment), as a paid
//! invoice, a Checkout Session, or a saved card's failed and later successful attempts leave them.

use super::state::{State, find_mut, new_id};
use serde_json::{Value, json};

/// Records the PaymentIntent, Charge and InvoicePayment of a card payment of `amount`, and lists
/// the InvoicePayment on the invoice. No events: creditd listens to `invoice.paid` only.
pub fn record_card_payment(st: &mut State, invoice: &mut Value, amount: i64) {
    if settle_failed_attempt(st, invoice, amount) {
        return;
    }
    let now = st.now();
    let (currency, customer) = (invoice["currency"].clone(), invoice["customer"].clone());
    let pi = record_intent(st, amount, &currency, &customer);
    let payment = json!({
        "id": new_id("inpay_"), "object": "invoice_payment", "amount_paid": amount,
        "amount_requested": amount, "created": now, "currency": currency,
        "invoice": invoice["id"], "is_default": true, "livemode": false,
        "payment": { "type": "payment_intent", "payment_intent": pi },
        "status": "paid", "status_transitions": { "canceled_at": null, "paid_at": now },
    });
    invoice["payments"]["data"] = json!([payment]);
    invoice["payments"]["total_count"] = json!(1);
    let stored = st.stored(payment);
    st.invoice_payments.push(stored);
}

/// Records a succeeded PaymentIntent of `amount` with its Charge; returns the intent's id.
pub fn record_intent(st: &mut State, amount: i64, currency: &Value, customer: &Value) -> String {
    let now = st.now();
    let pi = new_id("pi_");
    let ch = record_charge(st, amount, currency, customer, &pi);
    let intent = json!({
        "id": pi, "object": "payment_intent", "amount": amount, "amount_received": amount,
        "created": now, "currency": currency, "customer": customer, "last_payment_error": null,
        "latest_charge": ch, "livemode": false, "metadata": {}, "status": "succeeded",
    });
    let intent = st.stored(intent);
    st.payment_intents.push(intent);
    pi
}

/// Records the succeeded Charge of PaymentIntent `pi`; returns the charge's id.
pub fn record_charge(
    st: &mut State,
    amount: i64,
    currency: &Value,
    customer: &Value,
    pi: &str,
) -> String {
    let ch = new_id("ch_");
    let charge = json!({
        "id": ch, "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": 0, "captured": true, "created": st.now(), "currency": currency,
        "customer": customer, "disputed": false, "livemode": false, "metadata": {}, "paid": true,
        "payment_intent": pi, "refunded": false, "status": "succeeded",
    });
    let charge = st.stored(charge);
    st.charges.push(charge);
    ch
}

/// The PaymentIntent of the invoice's unpaid attempts, made (with its `open` InvoicePayment) on
/// the first.
pub fn open_intent(st: &mut State, inv: &mut Value) -> String {
    let open = st
        .invoice_payments
        .iter()
        .find(|p| p.json["invoice"] == inv["id"] && p.json["status"] == "open");
    if let Some(p) = open {
        return p.json["payment"]["payment_intent"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    let (now, pi) = (st.now(), new_id("pi_"));
    let due = inv["amount_due"].clone();
    let intent = json!({
        "id": pi, "object": "payment_intent", "amount": due, "amount_received": 0,
        "created": now, "currency": inv["currency"], "customer": inv["customer"],
        "latest_charge": null, "livemode": false, "metadata": {},
    });
    let payment = json!({
        "id": new_id("inpay_"), "object": "invoice_payment", "amount_paid": null,
        "amount_requested": due, "created": now, "currency": inv["currency"],
        "invoice": inv["id"], "is_default": true, "livemode": false,
        "payment": { "type": "payment_intent", "payment_intent": pi },
        "status": "open", "status_transitions": { "canceled_at": null, "paid_at": null },
    });
    inv["payments"]["data"] = json!([payment]);
    inv["payments"]["total_count"] = json!(1);
    let (intent, payment) = (st.stored(intent), st.stored(payment));
    st.payment_intents.push(intent);
    st.invoice_payments.push(payment);
    pi
}

/// A payment after failed attempts completes their PaymentIntent and InvoicePayment (one of each
/// per invoice, as at Stripe); false when there were none.
pub fn settle_failed_attempt(st: &mut State, invoice: &mut Value, amount: i64) -> bool {
    let now = st.now();
    let Some(payment) = st
        .invoice_payments
        .iter_mut()
        .find(|p| p.json["invoice"] == invoice["id"] && p.json["status"] == "open")
    else {
        return false;
    };
    payment.json["status"] = json!("paid");
    payment.json["amount_paid"] = json!(amount);
    payment.json["status_transitions"]["paid_at"] = json!(now);
    let payment = payment.json.clone();
    let pi = payment["payment"]["payment_intent"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (currency, customer) = (&invoice["currency"], &invoice["customer"]);
    let ch = record_charge(st, amount, currency, customer, &pi);
    let intent = &mut find_mut(&mut st.payment_intents, &pi).expect("intent").json;
    intent["status"] = json!("succeeded");
    intent["amount_received"] = json!(amount);
    intent["latest_charge"] = json!(ch);
    intent["last_payment_error"] = Value::Null;
    invoice["payments"]["data"] = json!([payment]);
    invoice["payments"]["total_count"] = json!(1);
    true
}
