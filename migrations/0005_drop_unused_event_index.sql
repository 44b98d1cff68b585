-- no-transaction
-- Issue 11: every recorded event paid for five index insertions on stripe_events. One of them,
-- stripe_events_purchase (purchase_id) WHERE purchase_id IS NOT NULL, serves no query: the only
-- statement filtering stripe_events by purchase_id (the admin purchase detail) ORs it with
-- metadata_purchase_id and invoice_id, which no index covers for every event type, so the planner
-- cannot use it there even with sequential scans disabled. Dropping it makes each insert cheaper.
--
-- Additive-safe: a binary that predates this migration runs the same queries with the same plans.
-- CONCURRENTLY (hence no transaction) so recording events never waits on the drop.
DROP INDEX CONCURRENTLY IF EXISTS stripe_events_purchase;
