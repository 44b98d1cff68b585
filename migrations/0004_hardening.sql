-- Hardening (issue 10). Additive only, like every migration for one release: the binary before
-- this one ignores what it does not know and keeps working against this schema.

-- Payloads of ignored events are deleted after EVENT_PAYLOAD_RETENTION_DAYS; the row, its type
-- and its outcome stay, so the idempotency table still knows the event. The partial index finds
-- what is left to prune without walking the pruned rows again.
ALTER TABLE stripe_events ADD COLUMN payload_pruned_at timestamptz;
CREATE INDEX stripe_events_prunable ON stripe_events (received_at)
    WHERE outcome = 'ignored' AND payload_pruned_at IS NULL;

-- Purchases per status for /metrics without grouping the whole table on every scrape. Triggers
-- append +1/-1 rows (insert-only, so concurrent transactions never wait on a shared counter row)
-- and each scrape folds them into one row per status in a single statement.
CREATE TABLE purchase_status_deltas (
    status  text NOT NULL,
    delta   bigint NOT NULL
);

CREATE FUNCTION count_purchase_status() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO purchase_status_deltas (status, delta) VALUES (OLD.status, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO purchase_status_deltas (status, delta) VALUES (NEW.status, 1);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- The triggers come first: creating them locks out writers until this migration commits, so the
-- backfill below sees exactly the rows the triggers did not.
CREATE TRIGGER purchases_status_count_rows AFTER INSERT OR DELETE ON purchases
    FOR EACH ROW EXECUTE FUNCTION count_purchase_status();
CREATE TRIGGER purchases_status_count_changes AFTER UPDATE OF status ON purchases
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION count_purchase_status();

INSERT INTO purchase_status_deltas (status, delta)
SELECT status, count(*) FROM purchases GROUP BY status;
