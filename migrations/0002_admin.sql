-- Operator tools: re-syncs that catch up with Stripe after lost webhooks, and an audit trail of
-- every admin action.

-- One re-sync: its parameters, progress and result. A re-sync is a leased job, like a purchase:
-- whoever holds the lease pages through Stripe; when a process dies the lease runs out and another
-- process resumes from `cursor`.
CREATE TABLE resyncs (
    -- `rsy_` + random.
    id                text PRIMARY KEY,
    status            text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    -- since, until (unix seconds), types, only_undelivered, dry_run, source (events | invoices).
    params            jsonb NOT NULL,
    -- Aggregated from resync_events at every page commit, so a page redone after a crash is never
    -- counted twice.
    seen              integer NOT NULL DEFAULT 0,
    new               integer NOT NULL DEFAULT 0,
    duplicate         integer NOT NULL DEFAULT 0,
    -- Purchases made due (or, in a dry run, that would be made due).
    granted           integer NOT NULL DEFAULT 0,
    unmatched         integer NOT NULL DEFAULT 0,
    failed            integer NOT NULL DEFAULT 0,
    -- The id of the last object (event, or invoice when source = invoices) of the last committed
    -- page; the next page starts after it.
    cursor            text,
    pages             integer NOT NULL DEFAULT 0,
    error             text,
    -- admin-token | cli
    actor             text NOT NULL,
    lease_owner       text,
    lease_expires_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz
);
CREATE INDEX resyncs_running ON resyncs (lease_expires_at) WHERE status = 'running';

-- What a re-sync did with each object it saw. The primary key makes a page that is processed
-- again after a crash update its rows rather than add new ones.
CREATE TABLE resync_events (
    resync_id    text NOT NULL REFERENCES resyncs (id),
    -- An `evt_` id, or an `in_` id when the re-sync lists invoices.
    event_id     text NOT NULL,
    -- pending (written before the object is processed) | scheduled | duplicate | unmatched |
    -- ignored | canceled | already_<status> | failed | would_schedule | would_cancel | ...
    outcome      text NOT NULL,
    -- Whether this re-sync recorded the event (false for duplicates and dry runs).
    new          boolean NOT NULL DEFAULT false,
    purchase_id  text,
    error        text,
    -- Position in the order the re-sync saw the objects.
    seq          bigserial,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resync_id, event_id)
);
CREATE INDEX resync_events_order ON resync_events (resync_id, seq);

-- The sweeper claims purchases by this column, so replicas split the work and the purchases
-- checked longest ago come first.
ALTER TABLE purchases ADD COLUMN swept_at timestamptz;
CREATE INDEX purchases_sweep ON purchases (swept_at NULLS FIRST, created_at)
    WHERE status = 'awaiting_payment' AND invoice_id IS NOT NULL;

-- Every admin action, whether by HTTP (actor admin-token) or from the command line (actor cli).
CREATE TABLE admin_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- resync.start | event.replay | purchase.retry | purchase.force_retry
    action      text NOT NULL,
    actor       text NOT NULL,
    arguments   jsonb NOT NULL,
    result      jsonb NOT NULL
);
CREATE INDEX admin_audit_at ON admin_audit (at DESC, id DESC);
