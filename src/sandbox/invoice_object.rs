//! The full invoice object (all 78 fields of the 2026-07-29.dahlia schema) for a new draft.

use serde_json::{Value, json};

/// A draft invoice with zero totals; callers fill in metadata, items and status changes.
pub fn blank_invoice(id: &str, customer: &str, currency: &str, now: i64) -> Value {
    let inv = json!({
        "id": id, "object": "invoice", "account_country": "US", "account_name": "Fake Stripe",
        "account_tax_ids": null, "amount_due": 0, "amount_overpaid": 0, "amount_paid": 0,
        "amount_paid_off_stripe": 0, "amount_remaining": 0, "amount_shipping": 0, "application": null,
        "attempt_count": 0, "attempted": false, "auto_advance": false,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null },
        "automatically_finalizes_at": null, "billing_reason": "manual",
        "collection_method": "charge_automatically", "confirmation_secret": null, "created": now,
        "currency": currency, "custom_fields": null, "customer": customer, "customer_account": null,
        "customer_address": null, "customer_email": null, "customer_name": null, "customer_phone": null,
        "customer_shipping": null, "customer_tax_exempt": "none", "customer_tax_ids": [],
    });
    let more = json!({
        "default_payment_method": null, "default_source": null, "default_tax_rates": [], "description": null,
        "discounts": [], "due_date": null, "effective_at": null, "ending_balance": null, "footer": null,
        "from_invoice": null, "hosted_invoice_url": null, "invoice_pdf": null, "issuer": { "type": "self" },
        "last_finalization_error": null, "latest_revision": null,
        "lines": { "object": "list", "data": [], "has_more": false, "total_count": 0, "url": format!("/v1/invoices/{id}/lines") },
    });
    let rest = json!({
        "livemode": false, "metadata": {}, "next_payment_attempt": null, "number": null, "on_behalf_of": null,
        "parent": null,
        "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
        "payments": { "object": "list", "data": [], "has_more": false, "total_count": 0, "url": "/v1/invoice_payments" },
        "period_end": now, "period_start": now, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "receipt_number": null, "rendering": null, "shipping_cost": null,
        "shipping_details": null, "starting_balance": 0, "statement_descriptor": null, "status": "draft",
        "status_transitions": { "finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null },
        "subtotal": 0, "subtotal_excluding_tax": 0, "test_clock": null, "threshold_reason": null, "total": 0,
        "total_discount_amounts": [], "total_excluding_tax": 0, "total_pretax_credit_amounts": [],
        "total_taxes": [], "webhooks_delivered_at": null,
    });
    let mut out = serde_json::Map::new();
    for part in [inv, more, rest] {
        if let Value::Object(m) = part {
            out.extend(m);
        }
    }
    Value::Object(out)
}
