-- Refunds and disputes take credits back, exactly once (see src/reversal.rs for the argument).
-- Additive for older binaries except the widened status set, which they never write.

ALTER TABLE purchases DROP CONSTRAINT purchases_status_check;
ALTER TABLE purchases ADD CONSTRAINT purchases_status_check CHECK (status IN (
    'creating_invoice', 'awaiting_payment', 'granting', 'granted', 'failed', 'rejected',
    'canceled', 'reversing', 'partially_reversed', 'reversed'));

ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_outcome;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_outcome CHECK (outcome IN (
    'scheduled', 'canceled', 'noted', 'unmatched', 'ignored', 'linking',
    'already_creating_invoice', 'already_awaiting_payment', 'already_granting', 'already_granted',
    'already_failed', 'already_rejected', 'already_canceled', 'already_reversing',
    'already_partially_reversed', 'already_reversed'));

-- The grant that holds the purchase's credits now. It starts as `credit_grant_id` and changes
-- when a reversal replaces it; NULL once a reversal left nothing to hold. `current_grant_value`
-- is what that grant was created with, to tell "nothing applied yet" (void) from "partly used".
ALTER TABLE purchases ADD COLUMN current_grant_id text;
ALTER TABLE purchases ADD COLUMN current_grant_value bigint;
-- The grant's value fixed when its request was first marked (a refund before the grant reduces it).
ALTER TABLE purchases ADD COLUMN grant_value bigint;
-- Set by every refund, dispute or credit-note event for this purchase's payments; the worker clears
-- it before it reads Stripe's refunds and disputes, so an event that arrives mid-read is never lost.
ALTER TABLE purchases ADD COLUMN reversal_sync_due boolean NOT NULL DEFAULT false;
UPDATE purchases SET current_grant_id = credit_grant_id WHERE credit_grant_voided_at IS NULL;

-- How the purchase's invoice was paid: one row per InvoicePayment, so a refund or dispute event
-- finds its purchase by PaymentIntent or Charge in one indexed lookup.
CREATE TABLE purchase_payments (
    invoice_payment_id  text PRIMARY KEY,
    purchase_id         text NOT NULL REFERENCES purchases (id),
    payment_intent      text,
    charge              text,
    amount_paid         bigint NOT NULL CHECK (amount_paid >= 0),
    currency            text NOT NULL,
    linked_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purchase_payments_purchase ON purchase_payments (purchase_id);
CREATE INDEX purchase_payments_intent ON purchase_payments (payment_intent) WHERE payment_intent IS NOT NULL;
CREATE INDEX purchase_payments_charge ON purchase_payments (charge) WHERE charge IS NOT NULL;

-- Refund and dispute events about a payment no purchase has linked yet. The resolver asks Stripe
-- which invoice the payment paid; the row ends `linked` or `unmatched`.
CREATE TABLE unlinked_payment_events (
    -- The stripe_events row (no foreign key: both are written by one statement).
    event_id         text PRIMARY KEY,
    payment_intent   text,
    charge           text,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'linked', 'unmatched')),
    purchase_id      text REFERENCES purchases (id),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (payment_intent IS NOT NULL OR charge IS NOT NULL)
);
CREATE INDEX unlinked_payment_events_due ON unlinked_payment_events (next_attempt_at) WHERE state = 'pending';

-- One row per money movement against a purchase's payment, keyed by Stripe's id for it: the
-- refund (`re_…`), the dispute (`du_…`, whose withdrawal is the movement) or the credit note
-- (`cn_…`, the part it returned outside a refund). `money_reversed` is Stripe's current truth
-- (a refund that failed, a dispute that was won: false), read by the worker, never by an event.
CREATE TABLE reversals (
    id              text PRIMARY KEY,
    purchase_id     text NOT NULL REFERENCES purchases (id),
    kind            text NOT NULL CHECK (kind IN ('refund', 'dispute', 'credit_note')),
    amount          bigint NOT NULL CHECK (amount >= 0),
    currency        text NOT NULL,
    stripe_status   text NOT NULL,
    money_reversed  boolean NOT NULL,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reversals_purchase ON reversals (purchase_id, first_seen_at, id);

-- A change to the purchase's credits that a reversal calls for: `take` when money left, `restore`
-- when it came back. Each is one "replace the current grant" move, written ahead of every Stripe
-- call it makes (`planned` before the void/expire, `replacing` before the create), so a crash at
-- any line resumes it instead of repeating it. `applied_at_grant`: taken by creating a smaller grant.
CREATE TABLE grant_moves (
    reversal_id        text NOT NULL REFERENCES reversals (id),
    direction          text NOT NULL CHECK (direction IN ('take', 'restore')),
    purchase_id        text NOT NULL REFERENCES purchases (id),
    step               text NOT NULL CHECK (step IN ('planned', 'replacing', 'done')),
    policy             text NOT NULL CHECK (policy IN ('reverse', 'record_only', 'at_grant')),
    credits            bigint NOT NULL CHECK (credits >= 0),
    available_before   bigint NOT NULL CHECK (available_before >= 0),
    shortfall          bigint NOT NULL DEFAULT 0 CHECK (shortfall >= 0),
    old_grant_id       text,
    end_action         text NOT NULL CHECK (end_action IN ('void', 'expire', 'none')),
    new_amount         bigint NOT NULL CHECK (new_amount >= 0),
    new_grant_id       text UNIQUE,
    planned_at         timestamptz NOT NULL DEFAULT now(),
    done_at            timestamptz,
    PRIMARY KEY (reversal_id, direction)
);
CREATE INDEX grant_moves_purchase ON grant_moves (purchase_id, planned_at);

-- `reversing` is work: the claim's partial index must cover it (tests/api/plans.rs checks the
-- claim uses it). Built in this transaction: the purchases table is small next to stripe_events.
DROP INDEX purchases_due;
CREATE INDEX purchases_due ON purchases (next_attempt_at)
    WHERE status IN ('creating_invoice', 'granting', 'reversing');
