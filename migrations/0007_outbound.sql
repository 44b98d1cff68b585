-- Outbound webhooks (issue 14): the merchant's endpoints, one message per purchase transition,
-- one delivery per (message, endpoint) and one row per HTTP attempt. See src/outbound/mod.rs.
-- Additive: an older binary ignores these tables; the triggers only ever add rows here.

-- Where the merchant wants events. Soft-deleted so that messages and attempts keep their history.
CREATE TABLE webhook_endpoints (
    -- `we_` + random.
    id                          text PRIMARY KEY,
    url                         text NOT NULL,
    -- Event types (`purchase.granted`, ...) or the single entry '*'.
    events                      text[] NOT NULL CHECK (cardinality(events) > 0),
    description                 text,
    status                      text NOT NULL CHECK (status IN ('enabled', 'disabled', 'deleted')),
    -- Why it was last disabled: `admin`, or `failing` when creditd disabled it.
    disabled_reason             text,
    -- `whsec_` + base64, needed in clear to sign; wiped on delete. Never logged or returned
    -- except in the answer that created or rotated it.
    secret                      text,
    -- The secret before the last rotation, still signed with until `previous_secret_expires_at`.
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    -- When the first attempt of the current run of failures failed; cleared by any success.
    failing_since               timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK (status = 'deleted' OR secret IS NOT NULL)
);

-- One event: a purchase transition (or its hosted invoice URL appearing).
CREATE TABLE webhook_messages (
    -- Deterministic: `msg_` + purchase suffix + the transition's id + the event, so the same
    -- transition can never make a second message (see enqueue_webhook_message).
    id             text PRIMARY KEY,
    purchase_id    text NOT NULL REFERENCES purchases (id),
    event_type     text NOT NULL CHECK (event_type IN (
                       'purchase.invoice_ready', 'purchase.granted', 'purchase.failed',
                       'purchase.rejected', 'purchase.canceled', 'purchase.reversed',
                       'purchase.partially_reversed', 'purchase.paid_without_credits')),
    -- The transition that caused it (NULL for invoice_ready).
    transition_id  bigint,
    -- The exact body sent, rendered in Rust from the purchase when the message is first claimed
    -- and frozen here, so every attempt to every endpoint sends the same bytes.
    payload        text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_messages_created ON webhook_messages (created_at DESC, id DESC);
CREATE INDEX webhook_messages_purchase ON webhook_messages (purchase_id);

-- One message to one endpoint: a leased work item, like a purchase.
CREATE TABLE webhook_deliveries (
    message_id        text NOT NULL REFERENCES webhook_messages (id),
    endpoint_id       text NOT NULL REFERENCES webhook_endpoints (id),
    status            text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    -- Attempts in the current round (reset by an operator's retry or recover).
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz,
    lease_owner       text,
    lease_expires_at  timestamptz,
    last_error        text,
    delivered_at      timestamptz,
    failed_at         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, status);

-- Every HTTP attempt, for the operator's view.
CREATE TABLE webhook_attempts (
    id            bigserial PRIMARY KEY,
    message_id    text NOT NULL,
    endpoint_id   text NOT NULL,
    -- HTTP status, or NULL when no answer came (refused, timeout, address not allowed).
    http_status   integer,
    error         text,
    latency_ms    integer NOT NULL,
    -- The first KiB of the answer's body.
    response      text,
    at            timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (message_id, endpoint_id) REFERENCES webhook_deliveries (message_id, endpoint_id)
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (message_id, endpoint_id, id);

-- Inserts a message and fans it out to every enabled endpoint subscribed to its type right now.
-- With no such endpoint nothing is stored: a merchant without webhooks pays one indexless read
-- per transition, not a row. ON CONFLICT DO NOTHING: the id is deterministic, so a transition
-- seen again adds nothing.
CREATE FUNCTION enqueue_webhook_message(msg_id text, purchase text, type text, transition bigint)
RETURNS void AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints e
                   WHERE e.status = 'enabled' AND (type = ANY (e.events) OR '*' = ANY (e.events))) THEN
        RETURN;
    END IF;
    INSERT INTO webhook_messages (id, purchase_id, event_type, transition_id)
    VALUES (msg_id, purchase, type, transition)
    ON CONFLICT (id) DO NOTHING;
    IF FOUND THEN
        INSERT INTO webhook_deliveries (message_id, endpoint_id, status, next_attempt_at)
        SELECT msg_id, e.id, 'pending', now()
        FROM webhook_endpoints e
        WHERE e.status = 'enabled' AND (type = ANY (e.events) OR '*' = ANY (e.events));
    END IF;
END;
$$ LANGUAGE plpgsql;

-- The suffix of a purchase id, for message ids (`pur_abc` -> `abc`).
CREATE FUNCTION webhook_message_stem(purchase text) RETURNS text AS $$
    SELECT 'msg_' || substr(purchase, 5)
$$ LANGUAGE sql IMMUTABLE;

-- Status events are born from purchase_transitions, which a trigger on purchases already writes
-- for every status change (0001_core.sql): each transition row is exactly one change, with its
-- own never-reused id, so no code path can change a status without its message, in the same
-- transaction. Statuses are mapped by name, so `reversed` and `partially_reversed` need no change
-- here when they are added to the purchases CHECK constraint.
--
-- Only a change of *settled* status, or of the credits, is an event. Work statuses
-- (`creating_invoice`, `granting`, and `reversing`, which a refund or dispute event passes
-- through even when it changes nothing) are skipped when looking back: granted -> reversing ->
-- granted after a replayed refund event, or an operator's retry that fails again, is no event.
-- Returning to the same status is an event when a grant move (0006_reversals.sql) finished since
-- that status was reached: a second partial refund is news, a replayed one is not.
CREATE FUNCTION webhook_transition_is_event(purchase text, transition bigint, status text)
RETURNS boolean AS $$
DECLARE
    settled text;
    settled_at timestamptz;
BEGIN
    IF status NOT IN ('granted', 'failed', 'rejected', 'canceled', 'reversed', 'partially_reversed') THEN
        RETURN false;
    END IF;
    SELECT to_status, at INTO settled, settled_at FROM purchase_transitions
    WHERE purchase_id = purchase AND id < transition
      AND to_status NOT IN ('creating_invoice', 'granting', 'reversing')
    ORDER BY id DESC LIMIT 1;
    RETURN settled IS DISTINCT FROM status
        OR EXISTS (SELECT 1 FROM grant_moves g
                   WHERE g.purchase_id = purchase AND g.done_at > settled_at);
END;
$$ LANGUAGE plpgsql STABLE;

CREATE FUNCTION webhook_messages_for_transition() RETURNS trigger AS $$
DECLARE
    stem text := webhook_message_stem(NEW.purchase_id) || '_t' || NEW.id || '_';
    paid boolean;
BEGIN
    IF NOT webhook_transition_is_event(NEW.purchase_id, NEW.id, NEW.to_status) THEN
        RETURN NULL;
    END IF;
    PERFORM enqueue_webhook_message(stem || NEW.to_status, NEW.purchase_id,
                                    'purchase.' || NEW.to_status, NEW.id);
    -- "Money taken, no credits": the definition of db::purchases::paid_without_credits.
    IF NEW.to_status IN ('failed', 'rejected') THEN
        SELECT paid_at IS NOT NULL INTO paid FROM purchases WHERE id = NEW.purchase_id;
        IF paid THEN
            PERFORM enqueue_webhook_message(stem || 'paid_without_credits', NEW.purchase_id,
                                            'purchase.paid_without_credits', NEW.id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER purchase_transitions_webhooks AFTER INSERT ON purchase_transitions
    FOR EACH ROW EXECUTE FUNCTION webhook_messages_for_transition();

-- `purchase.invoice_ready` once per purchase, when its hosted invoice URL first appears.
CREATE FUNCTION webhook_message_for_invoice() RETURNS trigger AS $$
BEGIN
    IF NEW.hosted_invoice_url IS NOT NULL
       AND (TG_OP = 'INSERT' OR OLD.hosted_invoice_url IS NULL) THEN
        PERFORM enqueue_webhook_message(webhook_message_stem(NEW.id) || '_invoice_ready', NEW.id,
                                        'purchase.invoice_ready', NULL);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER purchases_invoice_ready_webhook AFTER INSERT OR UPDATE OF hosted_invoice_url ON purchases
    FOR EACH ROW EXECUTE FUNCTION webhook_message_for_invoice();
