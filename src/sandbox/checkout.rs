//! Checkout Sessions in payment mode (stripe-api.md §6 "Funding through Checkout"): create, retrieve
//! and list over the API; completing (the customer pays on the hosted page) and expiring (Stripe's
//! clock) from the sandbox. A completed session with `invoice_creation` leaves a paid invoice
//! carrying `invoice_data.metadata`, paid by card through the same code as any invoice.

use super::error::ApiError;
use super::state::{Ctx, DAY, State, Stored, created_matches, find, find_mut, list_page, new_id};
use super::{AUTOMATIC, FakeStripe, card_payments, cards, customers, invoice_items, invoices};
use serde_json::{Value, json};

/// Stripe's bounds on `expires_at`: 30 minutes to 24 hours after creation.
const MIN_LIFETIME: i64 = 30 * 60;

pub fn create(st: &mut State, p: &Value) -> Result<Value, ApiError> {
    match p["mode"].as_str() {
        Some("payment") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "The sandbox supports mode=payment only, not {other}."
            ))
            .param("mode"));
        }
        None => return Err(ApiError::missing("mode")),
    }
    if let Some(c) = p["customer"].as_str() {
        if !st.has_customer(c) {
            return Err(ApiError::no_such("customer", c, "customer"));
        }
    }
    let lines = p["line_items"].as_array().cloned().unwrap_or_default();
    if lines.is_empty() {
        return Err(
            ApiError::invalid("You must specify `line_items` in `payment` mode.")
                .param("line_items"),
        );
    }
    let mut total = 0;
    let currency = lines[0]["price_data"]["currency"].clone();
    for (i, line) in lines.iter().enumerate() {
        let price = &line["price_data"];
        let (Some(unit), Some(quantity)) =
            (price["unit_amount"].as_i64(), line["quantity"].as_i64())
        else {
            return Err(ApiError::missing(&format!(
                "line_items[{i}][price_data][unit_amount] and line_items[{i}][quantity]"
            )));
        };
        if price["product_data"]["name"].is_null() {
            return Err(ApiError::missing(&format!(
                "line_items[{i}][price_data][product_data]"
            )));
        }
        if price["currency"] != currency {
            return Err(
                ApiError::invalid("All line items must use the same currency.")
                    .param(&format!("line_items[{i}][price_data][currency]")),
            );
        }
        if unit < 0 || quantity < 1 {
            return Err(ApiError::invalid("Line item amounts must be positive.")
                .param(&format!("line_items[{i}]")));
        }
        total += unit * quantity;
    }
    let now = st.now();
    let expires_at = p["expires_at"].as_i64().unwrap_or(now + DAY);
    if !(now + MIN_LIFETIME..=now + DAY).contains(&expires_at) {
        return Err(ApiError::invalid(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
        )
        .param("expires_at"));
    }
    let id = new_id("cs_test_");
    let invoice_creation = match &p["invoice_creation"] {
        Value::Null => json!({ "enabled": false, "invoice_data": null }),
        ic => json!({ "enabled": ic["enabled"], "invoice_data": {
            "description": ic["invoice_data"]["description"],
            "metadata": ic["invoice_data"]["metadata"].as_object().cloned().unwrap_or_default(),
        } }),
    };
    let session = json!({
        "id": id, "object": "checkout.session", "amount_subtotal": total, "amount_total": total,
        "cancel_url": p["cancel_url"], "client_reference_id": p["client_reference_id"],
        "created": now, "currency": currency, "customer": p["customer"],
        "expires_at": expires_at, "invoice": null, "invoice_creation": invoice_creation,
        "livemode": false,
        "metadata": p["metadata"].as_object().cloned().unwrap_or_default(),
        "mode": "payment", "payment_intent": null, "payment_status": "unpaid",
        "status": "open", "success_url": p["success_url"], "ui_mode": "hosted",
        "url": format!("{}/_sandbox/checkout/{id}", st.base_url),
    });
    let stored = st.stored(session.clone());
    st.checkout_sessions.push(stored);
    st.checkout_requests.insert(id, p.clone());
    Ok(session)
}

pub fn retrieve(st: &State, id: &str) -> Result<Value, ApiError> {
    find(&st.checkout_sessions, id)
        .map(|s| s.json.clone())
        .ok_or_else(|| ApiError::not_found("checkout.session", id))
}

pub fn list(st: &State, p: &Value) -> Result<Value, ApiError> {
    let matches = |s: &&Stored, key: &str| p[key].is_null() || s.json[key] == p[key];
    let items: Vec<&Stored> = st
        .checkout_sessions
        .iter()
        .filter(|s| matches(s, "customer") && matches(s, "status"))
        .filter(|s| matches(s, "payment_intent"))
        .filter(|s| created_matches(&p["created"], s.json["created"].as_i64().unwrap_or(0)))
        .collect();
    let url = "/v1/checkout/sessions";
    list_page(items, &st.checkout_sessions, p, url, "checkout.session")
}

/// An open session, or the error for one that is not (expiring it first if its time has come).
fn open_session(st: &mut State, id: &str) -> Result<Value, ApiError> {
    expire_overdue(st);
    let session = retrieve(st, id)?;
    match session["status"].as_str() {
        Some("open") => Ok(session),
        status => Err(ApiError::invalid(format!(
            "Only Checkout Sessions with a status in [\"open\"] can be completed or expired; \
             this one is {}.",
            status.unwrap_or("?")
        ))),
    }
}

fn complete(st: &mut State, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    let session = open_session(st, id)?;
    let request = st.checkout_requests.get(id).cloned().unwrap_or_default();
    let customer = match session["customer"].as_str() {
        Some(c) => c.to_string(),
        // Stripe makes a customer for a guest when it has to create an invoice.
        None => customers::insert(st, &json!({})),
    };
    if request["payment_intent_data"]["setup_future_usage"].is_string() {
        cards::attach(st, &customer, cards::CardBehaviour::Succeeds);
    }
    let amount = session["amount_total"].as_i64().unwrap_or(0);
    let currency = session["currency"].as_str().unwrap_or("usd").to_string();
    let ic = &session["invoice_creation"];
    let (invoice, intent) = if ic["enabled"] == true {
        let invoice = invoice_for(st, ctx, &customer, &currency, amount, ic, &request)?;
        let pi = invoice["payments"]["data"][0]["payment"]["payment_intent"].clone();
        (invoice["id"].clone(), pi)
    } else {
        let pi = card_payments::record_intent(st, amount, &json!(currency), &json!(customer));
        (Value::Null, json!(pi))
    };
    let stored = &mut find_mut(&mut st.checkout_sessions, id)
        .expect("open session")
        .json;
    stored["status"] = json!("complete");
    stored["url"] = Value::Null; // Stripe shows the URL only while the session is open
    stored["payment_status"] = json!("paid");
    stored["customer"] = json!(customer);
    stored["invoice"] = invoice;
    stored["payment_intent"] = intent;
    let snapshot = stored.clone();
    st.emit("checkout.session.completed", &snapshot, ctx);
    Ok(snapshot)
}

/// The paid invoice Checkout leaves behind: one line of the session's total, finalized and paid
/// by card (`invoice.created`, `invoice.finalized`, `invoice.paid`, `invoice.payment_succeeded`).
fn invoice_for(
    st: &mut State,
    ctx: &Ctx,
    customer: &str,
    currency: &str,
    amount: i64,
    ic: &Value,
    request: &Value,
) -> Result<Value, ApiError> {
    let metadata = ic["invoice_data"]["metadata"].clone();
    let draft = invoices::insert_draft(st, customer, currency, metadata, ctx);
    let id = draft["id"].as_str().unwrap_or_default().to_string();
    if let Some(inv) = find_mut(&mut st.invoices, &id) {
        inv.json["description"] = ic["invoice_data"]["description"].clone();
        inv.json["auto_advance"] = json!(false);
    }
    let name = &request["line_items"][0]["price_data"]["product_data"]["name"];
    let item = json!({ "invoice": id, "amount": amount, "currency": currency,
        "description": name });
    invoice_items::create(st, ctx, &item)?;
    let finalized = invoices::finalize(st, ctx, &id, &json!({}))?;
    if finalized["status"] == "paid" {
        return Ok(finalized); // nothing was due
    }
    invoices::pay(st, ctx, &id, &json!({}))
}

fn expire(st: &mut State, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    open_session(st, id)?;
    Ok(mark_expired(st, ctx, id))
}

fn mark_expired(st: &mut State, ctx: &Ctx, id: &str) -> Value {
    let session = &mut find_mut(&mut st.checkout_sessions, id)
        .expect("session")
        .json;
    session["status"] = json!("expired");
    session["url"] = Value::Null;
    let snapshot = session.clone();
    st.emit("checkout.session.expired", &snapshot, ctx);
    snapshot
}

/// Expires every open session whose `expires_at` has passed by the fake's clock.
pub fn expire_overdue(st: &mut State) {
    let now = st.now();
    let due: Vec<String> = st
        .checkout_sessions
        .iter()
        .filter(|s| s.json["status"] == "open" && s.json["expires_at"].as_i64() <= Some(now))
        .map(|s| s.id().to_string())
        .collect();
    for id in due {
        mark_expired(st, &AUTOMATIC, &id);
    }
}

impl FakeStripe {
    /// The customer pays on the hosted page: the session becomes `complete` / `paid`, with a paid
    /// invoice when `invoice_creation` is enabled, and the card is saved as the customer's default
    /// when `payment_intent_data[setup_future_usage]` was set. Returns the session.
    pub fn complete_checkout(&self, session_id: &str) -> Result<Value, ApiError> {
        let result = complete(&mut self.lock(), &AUTOMATIC, session_id);
        self.flush_outbox();
        result
    }

    /// Stripe's clock expires an open session now (`checkout.session.expired`). Returns it.
    pub fn expire_checkout(&self, session_id: &str) -> Result<Value, ApiError> {
        let result = expire(&mut self.lock(), &AUTOMATIC, session_id);
        self.flush_outbox();
        result
    }

    pub fn checkout_session(&self, session_id: &str) -> Option<Value> {
        retrieve(&self.lock(), session_id).ok()
    }

    /// All Checkout Sessions, oldest first.
    pub fn checkout_sessions(&self) -> Vec<Value> {
        let st = self.lock();
        st.checkout_sessions
            .iter()
            .map(|s| s.json.clone())
            .collect()
    }
}
