-- no-transaction
-- Issue 11, cost independent of history: the admin purchase detail listed a purchase's events
-- with `purchase_id = $1 OR metadata_purchase_id = $1 OR invoice_id = <its invoice>`, which no
-- index covers, so every detail read scanned all of stripe_events. The detail now asks the three
-- questions separately (db::admin::purchase_history): `invoice.paid` events of the invoice and of
-- the purchase's metadata already have partial indexes (0001); this one serves the invoice's other
-- events (voided, marked_uncollectible, payment_failed, ...).
--
-- Partial on purpose: `invoice.paid` events, the bulk of what creditd records, never enter it, so
-- recording a payment pays no extra index insertion (issue 11's ingest target); the invoice's
-- other events are few and each pays one.
--
-- Additive-safe: a binary that predates this migration never uses it. CONCURRENTLY (hence no
-- transaction, and one statement per file) so recording events never waits on the build.
CREATE INDEX CONCURRENTLY IF NOT EXISTS stripe_events_other_invoice ON stripe_events (invoice_id)
    WHERE type <> 'invoice.paid' AND invoice_id IS NOT NULL;
