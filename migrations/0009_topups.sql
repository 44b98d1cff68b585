-- Buying credits through Checkout, and automatic top-ups (see src/checkout.rs and src/topup/).

-- A purchase funded through a Checkout Session: the session, and the page the customer pays on.
ALTER TABLE purchases ADD COLUMN checkout_session_id text UNIQUE;
ALTER TABLE purchases ADD COLUMN checkout_url text;

-- A top-up: the customer whose rule made it, and what triggered it (balance seen, threshold,
-- the debit event or the sweep), for the explain view.
ALTER TABLE purchases ADD COLUMN topup_customer text;
ALTER TABLE purchases ADD COLUMN topup_trigger jsonb;

-- At most one top-up in flight per rule: concurrent triggers for one crossing create one.
CREATE UNIQUE INDEX purchases_one_topup_in_flight ON purchases (topup_customer)
    WHERE topup_customer IS NOT NULL
      AND status IN ('creating_invoice', 'awaiting_payment', 'granting');
-- The rule's month, cooldown and recent top-ups.
CREATE INDEX purchases_topups ON purchases (topup_customer, created_at DESC)
    WHERE topup_customer IS NOT NULL;

-- Failed top-ups of the last day, for /metrics without scanning every top-up.
CREATE INDEX purchases_failed_topups ON purchases (updated_at)
    WHERE topup_customer IS NOT NULL AND status = 'failed';

-- One automatic top-up rule per customer.
CREATE TABLE auto_topup_rules (
    customer               text PRIMARY KEY,
    threshold              bigint NOT NULL CHECK (threshold >= 0),
    -- Either a fixed purchase amount, or the balance to top up to.
    amount                 bigint CHECK (amount > 0),
    top_up_to              bigint,
    currency               text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    -- The grant every top-up creates (value set per top-up): name, category, priority, expiry,
    -- applicability; the balance checked is the one for this scope.
    credit                 jsonb NOT NULL,
    max_topups_per_month   integer NOT NULL CHECK (max_topups_per_month > 0),
    max_amount_per_month   bigint NOT NULL CHECK (max_amount_per_month > 0),
    pause_after_failures   integer NOT NULL CHECK (pause_after_failures > 0),
    enabled                boolean NOT NULL DEFAULT true,
    consecutive_failures   integer NOT NULL DEFAULT 0,
    paused_at              timestamptz,
    paused_reason          text,
    last_balance           bigint,
    last_checked_at        timestamptz,
    -- Why the last check that found the balance low made no top-up (cap, cooldown, in flight).
    last_skip_reason       text,
    -- When the balance is next to be checked: now after a debit, else the sweep interval.
    check_due_at           timestamptz NOT NULL DEFAULT now(),
    -- Why the next check is due early (the debit event that asked for it); NULL: the sweep.
    check_reason           text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((amount IS NULL) <> (top_up_to IS NULL)),
    CHECK (top_up_to IS NULL OR top_up_to > threshold)
);
CREATE INDEX auto_topup_rules_due ON auto_topup_rules (check_due_at)
    WHERE enabled AND paused_at IS NULL;

-- A top-up's outcome counts against its rule in the same transaction as the status change: a
-- failed one adds to the consecutive failures and pauses the rule at its limit; a granted one
-- resets them.
CREATE FUNCTION count_topup_outcome() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'failed' THEN
        UPDATE auto_topup_rules
        SET consecutive_failures = consecutive_failures + 1,
            paused_at = CASE WHEN consecutive_failures + 1 >= pause_after_failures
                             THEN COALESCE(paused_at, now()) ELSE paused_at END,
            paused_reason = CASE WHEN consecutive_failures + 1 >= pause_after_failures
                                 THEN format('paused after %s consecutive failed top-ups; the last: %s',
                                             consecutive_failures + 1, NEW.last_error)
                                 ELSE paused_reason END,
            updated_at = now()
        WHERE customer = NEW.topup_customer;
    ELSIF NEW.status = 'granted' THEN
        UPDATE auto_topup_rules SET consecutive_failures = 0, updated_at = now()
        WHERE customer = NEW.topup_customer;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER purchases_topup_outcome AFTER UPDATE OF status ON purchases
    FOR EACH ROW WHEN (NEW.topup_customer IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION count_topup_outcome();
