"""Drives the creditd sandbox through stripe-python's StripeClient, so that the sandbox's answers
are the shapes an official client expects: typed objects, list auto-paging, idempotent replays,
typed errors, and webhook signatures that Webhook.construct_event accepts.

Run by tests/api/sdk_fidelity.rs with SANDBOX_URL, CUSTOMER, CARD_INVOICE (paid by card),
WEBHOOK_SECRET, WEBHOOK_PAYLOAD and WEBHOOK_SIGNATURE (one invoice.paid delivery captured from the
sandbox) in the environment.
Exits non-zero on the first difference."""

import os

import stripe

env = os.environ
client = stripe.StripeClient(
    "sk_test_sdk_fidelity",
    base_addresses={"api": env["SANDBOX_URL"]},
    max_network_retries=0,
)
v1 = client.v1
cus = env["CUSTOMER"]

# Customers: created and read back as stripe.Customer, balance included.
other = v1.customers.create({"name": "SDK", "email": "sdk@example.com", "balance": -250,
                             "metadata": {"from": "sdk"}})
assert isinstance(other, stripe.Customer) and other.id.startswith("cus_"), other
again = v1.customers.retrieve(other.id)
assert again.balance == -250 and again.metadata["from"] == "sdk" and again.discount is None, again

# Invoices: the calls creditd makes to fund a purchase, then payment out of band.
create = {
    "customer": cus,
    "collection_method": "send_invoice",
    "days_until_due": 7,
    "metadata": {"creditd_purchase_id": "pur_sdk"},
    "pending_invoice_items_behavior": "exclude",
}
inv = v1.invoices.create(create, {"idempotency_key": "sdk-invoice-1"})
assert isinstance(inv, stripe.Invoice) and inv.status == "draft", inv
assert v1.invoices.create(create, {"idempotency_key": "sdk-invoice-1"}).id == inv.id
item = v1.invoice_items.create(
    {"customer": cus, "invoice": inv.id, "unit_amount_decimal": "2500", "quantity": 2,
     "currency": "usd", "description": "credits"}
)
assert isinstance(item, stripe.InvoiceItem) and item.amount == 5000, item
assert v1.invoice_items.retrieve(item.id).invoice == inv.id
fin = v1.invoices.finalize_invoice(inv.id, {"auto_advance": False})
assert fin.status == "open" and fin.amount_due == 5000 and fin.number, fin
paid = v1.invoices.pay(inv.id, {"paid_out_of_band": True})
assert paid.status == "paid" and paid.amount_paid == 5000, paid
assert paid.status_transitions.paid_at >= paid.created
assert paid.metadata["creditd_purchase_id"] == "pur_sdk"
listed = [i.id for i in v1.invoices.list({"customer": cus, "limit": 1}).auto_paging_iter()]
assert inv.id in listed and len(listed) == len(set(listed)) >= 2, listed
only_paid = v1.invoices.list({"customer": cus, "status": "paid", "created": {"gte": inv.created}})
assert all(i.status == "paid" for i in only_paid.data)

# Billing credits: create, retrieve, list, balance summary, transactions.
grant = v1.billing.credit_grants.create(
    {
        "customer": cus,
        "name": "SDK credits",
        "category": "paid",
        "amount": {"type": "monetary", "monetary": {"value": 5000, "currency": "usd"}},
        "applicability_config": {"scope": {"price_type": "metered"}},
        "metadata": {"invoice_id": inv.id},
    },
    {"idempotency_key": "sdk-grant-1"},
)
assert isinstance(grant, stripe.billing.CreditGrant), type(grant)
assert grant.amount.monetary.value == 5000 and grant.metadata["invoice_id"] == inv.id
assert v1.billing.credit_grants.retrieve(grant.id).id == grant.id
grants = list(v1.billing.credit_grants.list({"customer": cus, "limit": 1}).auto_paging_iter())
assert [g.id for g in grants] == [grant.id], grants
summary = v1.billing.credit_balance_summary.retrieve(
    {"customer": cus, "filter": {"type": "applicability_scope",
                                 "applicability_scope": {"price_type": "metered"}}}
)
assert isinstance(summary, stripe.billing.CreditBalanceSummary), type(summary)
assert summary.balances[0].available_balance.monetary.value == 5000
txns = list(
    v1.billing.credit_balance_transactions.list(
        {"customer": cus, "credit_grant": grant.id}
    ).auto_paging_iter()
)
assert isinstance(txns[0], stripe.billing.CreditBalanceTransaction), type(txns[0])
assert txns[0].type == "credit" and txns[0].credit.type == "credits_granted"

# The card payment behind a paid invoice, and a partial refund of it.
payments = v1.invoice_payments.list({"invoice": env["CARD_INVOICE"]})
assert isinstance(payments.data[0], stripe.InvoicePayment), payments
intent = v1.payment_intents.retrieve(payments.data[0].payment.payment_intent)
assert isinstance(intent, stripe.PaymentIntent) and intent.status == "succeeded", intent
refund = v1.refunds.create({"payment_intent": intent.id, "amount": 100,
                            "reason": "requested_by_customer"})
assert isinstance(refund, stripe.Refund) and refund.status == "succeeded", refund
charge = v1.charges.retrieve(refund.charge)
assert isinstance(charge, stripe.Charge) and charge.amount_refunded == 100, charge

# Events: typed, newest first, with the invoice inside.
events = list(v1.events.list({"type": "invoice.paid", "limit": 1}).auto_paging_iter())
assert all(isinstance(e, stripe.Event) for e in events) and len(events) >= 2, events
mine = [e for e in events if e.data.object.id == inv.id]
assert len(mine) == 1 and isinstance(mine[0].data.object, stripe.Invoice), mine
assert v1.events.retrieve(mine[0].id).type == "invoice.paid"

# Errors arrive as stripe's typed exceptions.
try:
    v1.invoices.retrieve("in_nope")
    raise AssertionError("retrieving an unknown invoice succeeded")
except stripe.InvalidRequestError as e:
    assert e.http_status == 404 and e.code == "resource_missing", e
try:
    v1.billing.credit_grants.create(
        {"customer": cus, "category": "paid",
         "amount": {"type": "monetary", "monetary": {"value": 100, "currency": "usd"}},
         "applicability_config": {"scope": {"price_type": "metered"}}, "colour": "blue"}
    )
    raise AssertionError("an unknown parameter was accepted")
except stripe.InvalidRequestError as e:
    assert e.param == "colour", e

# A webhook the sandbox delivered verifies with the SDK's own check.
event = stripe.Webhook.construct_event(
    env["WEBHOOK_PAYLOAD"], env["WEBHOOK_SIGNATURE"], env["WEBHOOK_SECRET"]
)
assert event.type == "invoice.paid" and isinstance(event.data.object, stripe.Invoice), event
try:
    stripe.Webhook.construct_event(env["WEBHOOK_PAYLOAD"], env["WEBHOOK_SIGNATURE"], "whsec_other")
    raise AssertionError("a wrong secret verified")
except stripe.SignatureVerificationError:
    pass

print(f"stripe-python {stripe.VERSION}: invoices, credit grants, events and webhooks agree")
