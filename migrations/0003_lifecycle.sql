-- The purchase state machine across Stripe's whole invoice lifecycle (see src/purchase/lifecycle.rs).
-- Additive: an older binary ignores every column added here.

-- `invoice.marked_uncollectible` no longer ends a purchase: it is noted here and the purchase stays
-- payable, because Stripe still lets an uncollectible invoice be paid.
ALTER TABLE purchases ADD COLUMN uncollectible_at timestamptz;

-- What settled the invoice, read from Stripe at grant time: total, amount_paid, the customer
-- balance applied, discounts and the amount paid out of band (for the explain view).
ALTER TABLE purchases ADD COLUMN settlement jsonb;

-- The grant's expiry when the credit spec says `expires_after_days`: fixed (unix seconds) when the
-- grant request is first marked, so every retry under one Idempotency-Key sends the same body.
ALTER TABLE purchases ADD COLUMN grant_expires_at bigint;

-- After Stripe stored a 500 for a grant key, when that happened and how many times we looked for
-- the grant since. A new key is used only after two looks, the last one a settle period later.
ALTER TABLE purchases ADD COLUMN grant_unknown_since timestamptz;
ALTER TABLE purchases ADD COLUMN grant_lookups integer NOT NULL DEFAULT 0;

-- A grant found voided still is this purchase's grant (never grant again); shown on the purchase.
ALTER TABLE purchases ADD COLUMN credit_grant_voided_at timestamptz;

-- Funding's write-ahead flag and key generation, with the same discipline as the grant's: once an
-- invoice may have been created, every later attempt looks for it by metadata before creating one.
ALTER TABLE purchases ADD COLUMN funding_requested boolean NOT NULL DEFAULT false;
ALTER TABLE purchases ADD COLUMN funding_key_generation integer NOT NULL DEFAULT 0;
ALTER TABLE purchases ADD COLUMN funding_unknown_since timestamptz;
ALTER TABLE purchases ADD COLUMN funding_lookups integer NOT NULL DEFAULT 0;

-- Every outcome an event can be recorded with (lifecycle::Outcome::all_stored).
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_outcome CHECK (outcome IN (
    'scheduled', 'canceled', 'noted', 'unmatched', 'ignored',
    'already_creating_invoice', 'already_awaiting_payment', 'already_granting', 'already_granted',
    'already_failed', 'already_rejected', 'already_canceled'));

-- Purchases that earlier versions canceled on `invoice.marked_uncollectible` (and that no void
-- ended since) are payable again: a later payment must still grant.
UPDATE purchases p
SET status = 'awaiting_payment', uncollectible_at = e.received_at, updated_at = now()
FROM stripe_events e
WHERE p.status = 'canceled' AND p.paid_at IS NULL
  AND e.purchase_id = p.id AND e.type = 'invoice.marked_uncollectible' AND e.outcome = 'canceled'
  AND NOT EXISTS (SELECT 1 FROM stripe_events v
                  WHERE v.purchase_id = p.id AND v.type = 'invoice.voided');

-- Those whose payment was then recorded as `already_canceled` are due for granting now.
UPDATE purchases p
SET status = 'granting', paid_event_id = e.id, paid_at = now(), next_attempt_at = now(),
    attempts = 0, last_error = NULL, updated_at = now()
FROM stripe_events e
WHERE p.status = 'awaiting_payment' AND p.uncollectible_at IS NOT NULL
  AND e.purchase_id = p.id AND e.type = 'invoice.paid' AND e.outcome = 'already_canceled';

-- Paid purchases that hold no credits, for the "money taken, no credits" gauge and alert.
CREATE INDEX purchases_paid_without_credits ON purchases (paid_at)
    WHERE paid_at IS NOT NULL AND status IN ('failed', 'rejected');
