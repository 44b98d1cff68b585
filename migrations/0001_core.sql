-- The core of creditd: purchases (a state machine that doubles as the work queue),
-- the Stripe events we have recorded, and the calls we made to Stripe on a purchase's behalf.

CREATE TABLE purchases (
    -- Our id, `pur_` + random; it is the key every Stripe idempotency key and grant metadata is derived from.
    id                    text PRIMARY KEY,
    status                text NOT NULL CHECK (status IN (
                              'creating_invoice', 'awaiting_payment', 'granting',
                              'granted', 'failed', 'rejected', 'canceled')),
    customer              text NOT NULL,
    -- What the customer pays, in the currency's minor unit.
    amount                bigint NOT NULL CHECK (amount > 0),
    currency              text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    -- One purchase per invoice: the last line of defence against two purchases granting for one payment.
    invoice_id            text UNIQUE,
    hosted_invoice_url    text,
    -- Whether the Stripe key that created this purchase is a live key; the paid invoice must agree.
    livemode              boolean NOT NULL,
    -- The credit grant to create: value, currency, name, category, priority, dates, applicability.
    credit                jsonb NOT NULL,
    description           text,
    metadata              jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- How the invoice is collected when creditd creates it (issue: purchases that fund themselves).
    funding               jsonb,
    -- One grant per purchase, and one purchase per grant.
    credit_grant_id       text UNIQUE,
    -- Set (and committed) before every grant request, so that after any crash we look for an
    -- existing grant before creating one.
    grant_requested       boolean NOT NULL DEFAULT false,
    -- Part of the grant's Idempotency-Key; bumped only after Stripe stored a 500 under the old key.
    grant_key_generation  integer NOT NULL DEFAULT 0,
    -- Work queue: how many times a worker claimed this purchase, when it is next due, and who holds it.
    attempts              integer NOT NULL DEFAULT 0,
    next_attempt_at       timestamptz,
    lease_owner           text,
    lease_expires_at      timestamptz,
    last_error            text,
    -- The event that told us the invoice was paid, and when we learned it.
    paid_event_id         text,
    paid_at               timestamptz,
    granted_at            timestamptz,
    -- The client's Idempotency-Key for POST /v1/purchases and a hash of the body it came with.
    idempotency_key       text UNIQUE,
    request_hash          text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'granted' OR credit_grant_id IS NOT NULL)
);

-- The work queue: purchases a worker has to act on, by due time.
CREATE INDEX purchases_due ON purchases (next_attempt_at)
    WHERE status IN ('creating_invoice', 'granting');
CREATE INDEX purchases_customer_created ON purchases (customer, created_at DESC, id DESC);
CREATE INDEX purchases_status_created ON purchases (status, created_at DESC, id DESC);

-- Every status change, written by a trigger so no code path can forget it.
CREATE TABLE purchase_transitions (
    id            bigserial PRIMARY KEY,
    purchase_id   text NOT NULL REFERENCES purchases (id),
    from_status   text,
    to_status     text NOT NULL,
    last_error    text,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purchase_transitions_purchase ON purchase_transitions (purchase_id, id);

CREATE FUNCTION record_purchase_transition() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO purchase_transitions (purchase_id, from_status, to_status, last_error)
        VALUES (NEW.id, CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END, NEW.status, NEW.last_error);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER purchases_transition AFTER INSERT OR UPDATE OF status ON purchases
    FOR EACH ROW EXECUTE FUNCTION record_purchase_transition();

-- The idempotency table for Stripe events: one row per event id, whatever route it came by.
CREATE TABLE stripe_events (
    id                     text PRIMARY KEY,
    type                   text NOT NULL,
    livemode               boolean NOT NULL,
    -- Stripe's `created`, unix seconds.
    stripe_created         bigint NOT NULL,
    -- For invoice events: the invoice and, when creditd created it, the purchase named in its metadata.
    invoice_id             text,
    metadata_purchase_id   text,
    -- The purchase this event was matched to when it was recorded (or later, by the matcher).
    purchase_id            text,
    -- scheduled | canceled | already_<status> | unmatched | ignored
    outcome                text NOT NULL,
    -- webhook | resync | replay
    source                 text NOT NULL,
    payload                jsonb NOT NULL,
    received_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_paid_invoice ON stripe_events (invoice_id) WHERE type = 'invoice.paid';
CREATE INDEX stripe_events_paid_metadata ON stripe_events (metadata_purchase_id)
    WHERE type = 'invoice.paid' AND metadata_purchase_id IS NOT NULL;
CREATE INDEX stripe_events_received ON stripe_events (received_at DESC, id DESC);
CREATE INDEX stripe_events_purchase ON stripe_events (purchase_id) WHERE purchase_id IS NOT NULL;

-- Every HTTP request creditd sent to Stripe for a purchase, so an operator can explain it.
CREATE TABLE stripe_calls (
    id               bigserial PRIMARY KEY,
    purchase_id      text NOT NULL REFERENCES purchases (id),
    method           text NOT NULL,
    path             text NOT NULL,
    idempotency_key  text,
    -- HTTP status, or NULL when no answer came (connection error, timeout).
    http_status      integer,
    error            text,
    at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_calls_purchase ON stripe_calls (purchase_id, id);
