//! Controls that act on invoices as the customer, the bank or the merchant's dashboard would:
//! create an open invoice (also one created in the past), pay it by card or out of band, void it,
//! mark it uncollectible. Each emits the events Stripe would.

use super::error::ApiError;
use super::state::State;
use super::{AUTOMATIC, FakeStripe, invoice_items, invoices, payments};
use serde_json::{Value, json};
use std::time::Duration;

impl FakeStripe {
    /// Creates a finalized, open invoice with one item of `amount` directly in state (emitting
    /// `invoice.created`, `invoiceitem.created`, `invoice.finalized`). Panics on unknown customer.
    /// The customer's balance and discount apply as at any finalization.
    pub fn create_open_invoice(
        &self,
        customer: &str,
        amount: i64,
        currency: &str,
        metadata: &[(&str, &str)],
    ) -> Value {
        self.create_open_invoice_created_ago(customer, amount, currency, metadata, Duration::ZERO)
    }

    /// Like [`FakeStripe::create_open_invoice`], with the invoice (and its events) created `ago`
    /// before the fake's clock, e.g. an invoice created before a re-sync window and paid inside it.
    pub fn create_open_invoice_created_ago(
        &self,
        customer: &str,
        amount: i64,
        currency: &str,
        metadata: &[(&str, &str)],
        ago: Duration,
    ) -> Value {
        let md: serde_json::Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let inv = {
            let mut st = self.lock();
            assert!(
                st.has_customer(customer),
                "fake stripe: unknown customer {customer}"
            );
            // Turning the one clock back while the lock is held dates the invoice and its events
            // consistently, and no concurrent request can observe the earlier time.
            st.clock_offset -= ago.as_secs() as i64;
            let made = open_invoice(&mut st, customer, amount, currency, Value::Object(md));
            st.clock_offset += ago.as_secs() as i64;
            made
        };
        self.flush_outbox();
        inv
    }

    /// Runs `act` and returns the `event_type` event it emitted (delivered in the background).
    fn act_on_invoice(
        &self,
        event_type: &str,
        act: impl FnOnce(&mut State) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let event = {
            let mut st = self.lock();
            let before = st.events.len();
            act(&mut st)?;
            st.events[before..]
                .iter()
                .find(|e| e.json["type"] == event_type)
                .expect("the action emits its event")
                .json
                .clone()
        };
        self.flush_outbox();
        Ok(event)
    }

    /// Pays an open or uncollectible invoice, by card or out of band (`amount_paid_off_stripe`),
    /// and returns the `invoice.paid` event.
    pub fn try_pay_invoice(&self, invoice_id: &str, out_of_band: bool) -> Result<Value, ApiError> {
        let p = json!({ "paid_out_of_band": out_of_band });
        self.act_on_invoice("invoice.paid", |st| {
            invoices::pay(st, &AUTOMATIC, invoice_id, &p)
        })
    }

    /// Voids an open or uncollectible invoice and returns the `invoice.voided` event.
    pub fn try_void_invoice(&self, invoice_id: &str) -> Result<Value, ApiError> {
        self.act_on_invoice("invoice.voided", |st| {
            invoices::void(st, &AUTOMATIC, invoice_id)
        })
    }

    /// Marks an open invoice uncollectible (as the merchant, or Stripe's automatic collection
    /// giving up, would) and returns the `invoice.marked_uncollectible` event.
    pub fn try_mark_uncollectible(&self, invoice_id: &str) -> Result<Value, ApiError> {
        self.act_on_invoice("invoice.marked_uncollectible", |st| {
            invoices::mark_uncollectible(st, &AUTOMATIC, invoice_id)
        })
    }

    /// Refunds `amount` (default: all that is left) of the card payment behind a paid invoice,
    /// as the merchant would from the Dashboard; returns the Refund.
    pub fn refund_invoice(&self, invoice_id: &str, amount: Option<i64>) -> Result<Value, ApiError> {
        self.in_state(|st| {
            let charge = payments::charge_of_invoice(st, invoice_id)?;
            payments::refund(
                st,
                &AUTOMATIC,
                &json!({ "charge": charge, "amount": amount }),
            )
        })
    }

    /// The customer's bank disputes the card payment behind a paid invoice; an `inquiry` moves no
    /// money. Returns the Dispute.
    pub fn dispute_invoice(&self, invoice_id: &str, inquiry: bool) -> Result<Value, ApiError> {
        self.in_state(|st| payments::open_dispute(st, &AUTOMATIC, invoice_id, inquiry))
    }

    /// Issues a credit note on a paid invoice (`{"refund_amount": …, "credit_amount": …,
    /// "out_of_band_amount": …}`), as the merchant would from the Dashboard; returns it.
    pub fn credit_note(&self, params: &Value) -> Result<Value, ApiError> {
        self.in_state(|st| payments::create_credit_note(st, &AUTOMATIC, params))
    }

    /// A refund fails after it was made (`refund.failed`); returns the Refund.
    pub fn fail_refund(&self, refund_id: &str) -> Result<Value, ApiError> {
        self.in_state(|st| payments::fail_refund(st, &AUTOMATIC, refund_id))
    }

    /// Closes a dispute, won or lost; returns the Dispute.
    pub fn close_dispute(&self, dispute_id: &str, won: bool) -> Result<Value, ApiError> {
        self.in_state(|st| payments::close_dispute(st, &AUTOMATIC, dispute_id, won))
    }

    /// Runs `act` on the state, then delivers the events it emitted.
    fn in_state(
        &self,
        act: impl FnOnce(&mut State) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let result = act(&mut self.lock());
        self.flush_outbox();
        result
    }

    /// [`FakeStripe::try_pay_invoice`] by card; panics when Stripe would refuse.
    pub fn pay_invoice(&self, invoice_id: &str) -> Value {
        expect(invoice_id, self.try_pay_invoice(invoice_id, false))
    }

    /// [`FakeStripe::try_pay_invoice`] out of band; panics when Stripe would refuse.
    pub fn pay_invoice_out_of_band(&self, invoice_id: &str) -> Value {
        expect(invoice_id, self.try_pay_invoice(invoice_id, true))
    }

    /// [`FakeStripe::try_void_invoice`]; panics when Stripe would refuse.
    pub fn void_invoice(&self, invoice_id: &str) -> Value {
        expect(invoice_id, self.try_void_invoice(invoice_id))
    }

    /// [`FakeStripe::try_mark_uncollectible`]; panics when Stripe would refuse.
    pub fn mark_uncollectible(&self, invoice_id: &str) -> Value {
        expect(invoice_id, self.try_mark_uncollectible(invoice_id))
    }
}

fn expect(invoice_id: &str, result: Result<Value, ApiError>) -> Value {
    result.unwrap_or_else(|e| panic!("fake stripe: {invoice_id}: {}", e.message))
}

fn open_invoice(st: &mut State, customer: &str, amount: i64, currency: &str, md: Value) -> Value {
    let draft = invoices::insert_draft(st, customer, currency, md, &AUTOMATIC);
    let id = draft["id"].as_str().expect("id").to_string();
    let item =
        json!({ "invoice": id, "amount": amount, "currency": currency, "description": "credits" });
    invoice_items::create(st, &AUTOMATIC, &item).expect("add invoice item");
    invoices::finalize(st, &AUTOMATIC, &id, &json!({})).expect("finalize")
}
