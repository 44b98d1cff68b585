//! Saved cards: a customer's `invoice_settings.default_payment_method` and how its bank answers,
//! and `POST /v1/invoices/{id}/pay` charging it for a `charge_automatically` invoice
//! (stripe-api.md §6 "Charging a saved card without the customer present").

use super::error::ApiError;
use super::state::{Ctx, State, find_mut, new_id};
use super::{AUTOMATIC, FakeStripe};
use super::{card_payments, invoices};
use serde_json::{Value, json};

/// How the bank answers when a saved card is charged without the customer present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardBehaviour {
    Succeeds,
    /// `card_declined` / `generic_decline`, as Stripe's test card 4000 0000 0000 0002.
    Declines,
    /// `authentication_required` (3D Secure), as Stripe's test card 4000 0027 6000 3184.
    RequiresAuthentication,
}

impl CardBehaviour {
    /// `succeeds`, `declines` or `requires_authentication` (the control routes' spelling).
    pub fn by_name(name: &str) -> Option<CardBehaviour> {
        match name {
            "succeeds" => Some(CardBehaviour::Succeeds),
            "declines" => Some(CardBehaviour::Declines),
            "requires_authentication" => Some(CardBehaviour::RequiresAuthentication),
            _ => None,
        }
    }
}

/// Saves a new card for `customer` and makes it the default payment method; returns `pm_…`.
pub fn attach(st: &mut State, customer: &str, behaviour: CardBehaviour) -> Option<String> {
    let object = st.customer_objects.get_mut(customer)?;
    let pm = new_id("pm_");
    object["invoice_settings"]["default_payment_method"] = json!(pm);
    st.cards.insert(pm.clone(), behaviour);
    Some(pm)
}

fn default_card(st: &State, customer: &str) -> Option<CardBehaviour> {
    let object = st.customer_objects.get(customer)?;
    let pm = object["invoice_settings"]["default_payment_method"].as_str()?;
    st.cards.get(pm).copied()
}

/// `POST /v1/invoices/{id}/pay`: a `charge_automatically` invoice is charged to the customer's
/// default card, which may fail; anything else is settled as [`invoices::pay`] does.
pub fn pay(st: &mut State, ctx: &Ctx, id: &str, p: &Value) -> Result<Value, ApiError> {
    let inv = invoices::retrieve(st, id)?;
    let by_card = inv["collection_method"] == "charge_automatically"
        && !p["paid_out_of_band"].as_bool().unwrap_or(false);
    if !by_card
        || !matches!(
            inv["status"].as_str(),
            Some("draft" | "open" | "uncollectible")
        )
    {
        return invoices::pay(st, ctx, id, p);
    }
    if inv["status"] == "draft" {
        // Stripe finalizes a draft before charging it; a finalization with nothing due pays it.
        let done = invoices::finalize(st, ctx, id, &json!({}))?;
        if done["status"] == "paid" {
            return Ok(done);
        }
    }
    let customer = inv["customer"].as_str().unwrap_or_default();
    match default_card(st, customer) {
        Some(CardBehaviour::Succeeds) => invoices::pay(st, ctx, id, p),
        None => Err(ApiError::invalid(
            "This customer has no attached payment source or default payment method.",
        )),
        Some(CardBehaviour::Declines) => {
            let error = ApiError::new(402, "card_error", "Your card was declined.")
                .code("card_declined")
                .decline_code("generic_decline");
            failed_attempt(st, ctx, id, "invoice.payment_failed", &error);
            Err(error)
        }
        Some(CardBehaviour::RequiresAuthentication) => {
            let error = ApiError::new(
                402,
                "card_error",
                "Your card was declined. This transaction requires authentication.",
            )
            .code("authentication_required")
            .decline_code("authentication_required");
            failed_attempt(st, ctx, id, "invoice.payment_action_required", &error);
            Err(error)
        }
    }
}

/// The invoice stays open (its hosted page still works) with one more attempt counted; the
/// attempt's PaymentIntent (listed as an `open` InvoicePayment, reused by later attempts as Stripe
/// does) keeps the bank's answer in `last_payment_error`.
fn failed_attempt(st: &mut State, ctx: &Ctx, id: &str, event_type: &str, error: &ApiError) {
    let mut inv = find_mut(&mut st.invoices, id)
        .expect("invoice")
        .json
        .clone();
    let attempts = inv["attempt_count"].as_i64().unwrap_or(0) + 1;
    inv["attempt_count"] = json!(attempts);
    inv["attempted"] = json!(true);
    let customer = inv["customer"].as_str().unwrap_or_default().to_string();
    let pm = st.customer_objects[&customer]["invoice_settings"]["default_payment_method"].clone();
    let mut last_error = error.body()["error"].clone();
    last_error["payment_method"] = json!({ "id": pm, "object": "payment_method", "type": "card" });
    let status = match error.code.as_deref() {
        Some("authentication_required") => "requires_action",
        _ => "requires_payment_method",
    };
    let pi = card_payments::open_intent(st, &mut inv);
    let intent = &mut find_mut(&mut st.payment_intents, &pi).expect("intent").json;
    intent["status"] = json!(status);
    intent["last_payment_error"] = last_error;
    intent["payment_method"] = pm;
    find_mut(&mut st.invoices, id).expect("invoice").json = inv.clone();
    st.emit(event_type, &inv, ctx);
}

impl FakeStripe {
    /// Saves a card that answers as `behaviour` and makes it the customer's
    /// `invoice_settings.default_payment_method`; returns its `pm_…` id. Panics on an unknown
    /// customer.
    pub fn attach_card(&self, customer: &str, behaviour: CardBehaviour) -> String {
        attach(&mut self.lock(), customer, behaviour)
            .unwrap_or_else(|| panic!("fake stripe: unknown customer {customer}"))
    }

    /// Removes the customer's default payment method (the card stays known but unused).
    pub fn remove_default_card(&self, customer: &str) {
        if let Some(object) = self.lock().customer_objects.get_mut(customer) {
            object["invoice_settings"]["default_payment_method"] = Value::Null;
        }
    }

    /// The customer's default payment method (`pm_…`), if any.
    pub fn default_card(&self, customer: &str) -> Option<String> {
        let st = self.lock();
        let object = st.customer_objects.get(customer)?;
        object["invoice_settings"]["default_payment_method"]
            .as_str()
            .map(str::to_string)
    }

    /// Charges an open `charge_automatically` invoice to the saved card now, as
    /// `POST /v1/invoices/{id}/pay` does; returns the invoice or the card error.
    pub fn charge_saved_card(&self, invoice_id: &str) -> Result<Value, ApiError> {
        let result = pay(&mut self.lock(), &AUTOMATIC, invoice_id, &json!({}));
        self.flush_outbox();
        result
    }
}
