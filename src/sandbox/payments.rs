//! Payments behind paid invoices and what can happen to them afterwards: lists, refunds, credit
//! notes, disputes (stripe-api.md §6).
//! Since API 2025-03-31 an invoice links to its payment through an InvoicePayment
//! (`GET /v1/invoice_payments?invoice=`), whose PaymentIntent has a Charge; refunds and disputes
//! act on that Charge. Stripe does nothing to billing credits when either happens.

use super::error::ApiError;
use super::state::{Ctx, State, Stored, find, find_mut, list_page, new_id};
use serde_json::{Value, json};

pub fn retrieve(list: &[Stored], kind: &str, id: &str) -> Result<Value, ApiError> {
    find(list, id)
        .map(|s| s.json.clone())
        .ok_or_else(|| ApiError::not_found(kind, id))
}

pub fn list_invoice_payments(st: &State, p: &Value) -> Result<Value, ApiError> {
    let items: Vec<&Stored> = st
        .invoice_payments
        .iter()
        .filter(|s| p["invoice"].is_null() || s.json["invoice"] == p["invoice"])
        .filter(|s| p["status"].is_null() || s.json["status"] == p["status"])
        .filter(|s| {
            let wanted = &p["payment"]["payment_intent"];
            wanted.is_null() || s.json["payment"]["payment_intent"] == *wanted
        })
        .collect();
    let url = "/v1/invoice_payments";
    list_page(items, &st.invoice_payments, p, url, "invoice payment")
}

/// The charge of an invoice paid by card.
pub fn charge_of_invoice(st: &State, invoice: &str) -> Result<String, ApiError> {
    let pi = st
        .invoice_payments
        .iter()
        .find(|s| s.json["invoice"] == invoice && s.json["status"] == "paid")
        .map(|s| s.json["payment"]["payment_intent"].clone())
        .ok_or_else(|| {
            ApiError::invalid(format!("Invoice {invoice} has no card payment to act on."))
        })?;
    let charge = st.charges.iter().find(|c| c.json["payment_intent"] == pi);
    Ok(charge
        .expect("a payment intent has its charge")
        .id()
        .to_string())
}

/// `POST /v1/refunds`: refunds `amount` (default: what is left) of a charge, given directly or
/// through its PaymentIntent. Emits `refund.created` and `charge.refunded`.
pub fn refund(st: &mut State, ctx: &Ctx, p: &Value) -> Result<Value, ApiError> {
    let charge_id = match (p["charge"].as_str(), p["payment_intent"].as_str()) {
        (Some(ch), None) => ch.to_string(),
        (None, Some(pi)) => {
            let charge = st.charges.iter().find(|c| c.json["payment_intent"] == pi);
            let charge =
                charge.ok_or_else(|| ApiError::no_such("payment_intent", pi, "payment_intent"))?;
            charge.id().to_string()
        }
        _ => {
            return Err(
                ApiError::invalid("One of charge or payment_intent is required.").param("charge"),
            );
        }
    };
    let now = st.now();
    let charge = &mut find_mut(&mut st.charges, &charge_id)
        .ok_or_else(|| ApiError::no_such("charge", &charge_id, "charge"))?
        .json;
    let before = charge["amount_refunded"].as_i64().unwrap_or(0);
    let left = charge["amount"].as_i64().unwrap_or(0) - before;
    let amount = p["amount"].as_i64().unwrap_or(left);
    if amount <= 0 || amount > left {
        let msg = format!(
            "Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"
        );
        return Err(ApiError::invalid(msg)
            .param("amount")
            .code("charge_already_refunded"));
    }
    charge["amount_refunded"] = json!(before + amount);
    charge["refunded"] = json!(before + amount == charge["amount"].as_i64().unwrap_or(0));
    let charge = charge.clone();
    let refund = json!({
        "id": new_id("re_"), "object": "refund", "amount": amount, "charge": charge_id,
        "created": now, "currency": charge["currency"],
        "metadata": if p["metadata"].is_object() { p["metadata"].clone() } else { json!({}) },
        "payment_intent": charge["payment_intent"], "reason": p["reason"], "status": "succeeded",
    });
    let stored = st.stored(refund.clone());
    st.refunds.push(stored);
    st.emit("refund.created", &refund, ctx);
    let previous = json!({ "amount_refunded": before });
    st.emit_with_previous("charge.refunded", &charge, previous, ctx);
    Ok(refund)
}

/// `GET /v1/refunds` and `GET /v1/disputes`, filtered by `charge` or `payment_intent`.
pub fn list_by_payment(st: &State, p: &Value, disputes: bool) -> Result<Value, ApiError> {
    let (all, url, kind) = if disputes {
        (&st.disputes, "/v1/disputes", "dispute")
    } else {
        (&st.refunds, "/v1/refunds", "refund")
    };
    let items: Vec<&Stored> = all
        .iter()
        .filter(|s| p["charge"].is_null() || s.json["charge"] == p["charge"])
        .filter(|s| {
            p["payment_intent"].is_null() || s.json["payment_intent"] == p["payment_intent"]
        })
        .collect();
    list_page(items, all, p, url, kind)
}

/// The bank returns a refund after all (as Stripe does days later for a closed account): the
/// refund becomes `failed`, its amount is unrefunded on the charge, and `refund.failed` is sent.
pub fn fail_refund(st: &mut State, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    let refund = &mut find_mut(&mut st.refunds, id)
        .ok_or_else(|| ApiError::not_found("refund", id))?
        .json;
    if refund["status"] != "succeeded" && refund["status"] != "pending" {
        return Err(ApiError::invalid(format!(
            "Refund {id} is {} and cannot fail.",
            refund["status"]
        )));
    }
    refund["status"] = json!("failed");
    refund["failure_reason"] = json!("lost_or_stolen_card");
    let refund = refund.clone();
    let charge_id = refund["charge"].as_str().unwrap_or_default().to_string();
    if let Some(charge) = find_mut(&mut st.charges, &charge_id) {
        let before = charge.json["amount_refunded"].as_i64().unwrap_or(0);
        let amount = refund["amount"].as_i64().unwrap_or(0);
        charge.json["amount_refunded"] = json!((before - amount).max(0));
        charge.json["refunded"] = json!(false);
    }
    st.emit("refund.failed", &refund, ctx);
    Ok(refund)
}

/// `POST /v1/credit_notes` on a paid invoice: `refund_amount` is refunded on its charge (a Refund,
/// with its events), `credit_amount` goes to the customer's balance, `out_of_band_amount` is only
/// noted. Emits `credit_note.created`.
pub fn create_credit_note(st: &mut State, ctx: &Ctx, p: &Value) -> Result<Value, ApiError> {
    let invoice_id = p["invoice"].as_str().unwrap_or_default().to_string();
    let invoice = find(&st.invoices, &invoice_id)
        .ok_or_else(|| ApiError::no_such("invoice", &invoice_id, "invoice"))?
        .json
        .clone();
    if invoice["status"] != "paid" {
        return Err(
            ApiError::invalid("The fake issues credit notes on paid invoices only.")
                .param("invoice"),
        );
    }
    let part = |key: &str| p[key].as_i64().unwrap_or(0);
    let (refund_amount, credit_amount, out_of_band) = (
        part("refund_amount"),
        part("credit_amount"),
        part("out_of_band_amount"),
    );
    let total = refund_amount + credit_amount + out_of_band;
    let credited: i64 = st
        .credit_notes
        .iter()
        .filter(|n| n.json["invoice"] == invoice_id.as_str())
        .map(|n| n.json["amount"].as_i64().unwrap_or(0))
        .sum();
    let paid = invoice["amount_paid"].as_i64().unwrap_or(0);
    if [refund_amount, credit_amount, out_of_band]
        .iter()
        .any(|a| *a < 0)
        || total <= 0
        || total + credited > paid
        || p["amount"].as_i64().is_some_and(|a| a != total)
    {
        return Err(ApiError::invalid(format!(
            "The credit note total ({total}) must be positive, match amount, and not exceed what is left to credit ({}).",
            paid - credited
        ))
        .param("amount"));
    }
    let mut refunds = Vec::new();
    if refund_amount > 0 {
        let charge = charge_of_invoice(st, &invoice_id)?;
        let refund = refund(
            st,
            ctx,
            &json!({ "charge": charge, "amount": refund_amount }),
        )?;
        refunds.push(json!({ "amount_refunded": refund_amount, "refund": refund["id"] }));
    }
    let customer = invoice["customer"].as_str().unwrap_or_default().to_string();
    if credit_amount > 0 {
        *st.balances.entry(customer.clone()).or_insert(0) -= credit_amount;
    }
    let note = json!({
        "id": new_id("cn_"), "object": "credit_note", "amount": total, "created": st.now(),
        "credit_amount": credit_amount, "currency": invoice["currency"], "customer": customer,
        "invoice": invoice_id, "livemode": false, "memo": p["memo"],
        "metadata": if p["metadata"].is_object() { p["metadata"].clone() } else { json!({}) },
        "out_of_band_amount": if out_of_band > 0 { json!(out_of_band) } else { Value::Null },
        "reason": p["reason"], "refund_amount": refund_amount, "refunds": refunds,
        "status": "issued", "type": "post_payment",
    });
    let stored = st.stored(note.clone());
    st.credit_notes.push(stored);
    st.emit("credit_note.created", &note, ctx);
    Ok(note)
}

/// `GET /v1/credit_notes`, filtered by `invoice` or `customer`.
pub fn list_credit_notes(st: &State, p: &Value) -> Result<Value, ApiError> {
    let items: Vec<&Stored> = st
        .credit_notes
        .iter()
        .filter(|s| p["invoice"].is_null() || s.json["invoice"] == p["invoice"])
        .filter(|s| p["customer"].is_null() || s.json["customer"] == p["customer"])
        .collect();
    list_page(
        items,
        &st.credit_notes,
        p,
        "/v1/credit_notes",
        "credit note",
    )
}

/// Opens a dispute on the invoice's charge: `charge.dispute.created`, then, unless it is only an
/// inquiry (`warning_needs_response`: no money moved), `charge.dispute.funds_withdrawn`.
pub fn open_dispute(
    st: &mut State,
    ctx: &Ctx,
    invoice: &str,
    inquiry: bool,
) -> Result<Value, ApiError> {
    let charge_id = charge_of_invoice(st, invoice)?;
    let charge = &mut find_mut(&mut st.charges, &charge_id).expect("charge").json;
    charge["disputed"] = json!(true);
    let charge = charge.clone();
    let status = if inquiry {
        "warning_needs_response"
    } else {
        "needs_response"
    };
    let dispute = json!({
        "id": new_id("du_"), "object": "dispute", "amount": charge["amount"],
        "charge": charge_id, "created": st.now(), "currency": charge["currency"],
        "livemode": false, "metadata": {}, "payment_intent": charge["payment_intent"],
        "reason": "fraudulent", "status": status,
    });
    let stored = st.stored(dispute.clone());
    st.disputes.push(stored);
    st.emit("charge.dispute.created", &dispute, ctx);
    if !inquiry {
        st.emit("charge.dispute.funds_withdrawn", &dispute, ctx);
    }
    Ok(dispute)
}

/// Closes a dispute `won` (money back: `charge.dispute.funds_reinstated`) or `lost`, then
/// `charge.dispute.closed`.
pub fn close_dispute(st: &mut State, ctx: &Ctx, id: &str, won: bool) -> Result<Value, ApiError> {
    let dispute = &mut find_mut(&mut st.disputes, id)
        .ok_or_else(|| ApiError::not_found("dispute", id))?
        .json;
    if dispute["status"] == "won" || dispute["status"] == "lost" {
        return Err(ApiError::invalid(format!(
            "Dispute {id} is already closed."
        )));
    }
    let withdrawn = dispute["status"] == "needs_response";
    dispute["status"] = json!(if won { "won" } else { "lost" });
    let dispute = dispute.clone();
    if won && withdrawn {
        st.emit("charge.dispute.funds_reinstated", &dispute, ctx);
    }
    st.emit("charge.dispute.closed", &dispute, ctx);
    Ok(dispute)
}
