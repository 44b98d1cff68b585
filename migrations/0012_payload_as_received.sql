-- Issue 11, ingest cost: an event's payload is stored as `json` (the text Stripe signed, kept as
-- received) compressed with lz4, instead of `jsonb` compressed with pglz.
--
-- Why: profiled under load (perf, pgbench running RECORD_EVENTS), pglz compressing the ~3.6 KB
-- payload took 15 % of the machine's CPU. pgbench on RECORD_EVENTS, one event per transaction:
-- 5,440/s as jsonb with pglz, 6,205/s as jsonb with lz4, 7,270/s as json with lz4 (building the
-- jsonb tree is the difference). Nothing in SQL looks inside a payload (creditd parses events in
-- Rust; the payload is read whole, for replays), so jsonb's tree bought nothing. `json` only
-- validates, and keeps the event byte for byte as Stripe sent it (key order, whitespace): a better
-- record of what was received. And it stores every valid JSON text, where jsonb refused some
-- (a lone surrogate escape in a string, a number beyond numeric's range): such an event failed its
-- insert on every delivery. lz4 stores up to ~17 % more bytes than pglz for these payloads.
--
-- The release before this one keeps working against this schema (see README, "Migrations and
-- rollbacks"): its insert casts to jsonb, and PostgreSQL's assignment cast stores that as json;
-- its reads decode `json` and `jsonb` alike (sqlx's `Json`); its pruning writes `'null'::jsonb`,
-- cast the same way. Nothing is tightened: `json` accepts every document `jsonb` accepts.
--
-- This rewrites stripe_events under an ACCESS EXCLUSIVE lock (README, "Migrations and
-- rollbacks"; ~45 s per million events on a 2-core machine): recording
-- events waits meanwhile, webhooks answer 503 after their statement timeout and Stripe retries
-- them. lock_timeout keeps the migration from queueing every webhook behind a long transaction:
-- it fails instead, and the migration is retried.
--
-- Type and compression change in one statement: the rewrite then compresses with lz4 (a type
-- change after `SET COMPRESSION` would reset it). A server built without lz4 refuses the method
-- before rewriting anything; the payload then becomes json with the server's default compression.
SET LOCAL lock_timeout = '10s';
DO $$
BEGIN
    ALTER TABLE stripe_events
        ALTER COLUMN payload TYPE json USING payload::json,
        ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4; event payloads keep its default compression';
    ALTER TABLE stripe_events ALTER COLUMN payload TYPE json USING payload::json;
END
$$;
