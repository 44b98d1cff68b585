-- History for scripts/bench-growth: :events recorded events and :purchases purchases in mixed
-- statuses, as a year of traffic would leave them. psql variables: events, purchases (events must
-- be at least 5 x purchases), payload (the benchmark's 3.6 KB invoice.paid event).
--
-- Everything goes in through the tables' own constraints and triggers (the status-count deltas of
-- 0004, the transition log of 0001), so /metrics and the admin views see a consistent history.
-- Purchase p's invoice is event 5p's; per thousand purchases (p % 1000):
--   0-749 granted | 750-899 awaiting_payment | 900-949 canceled | 960-989 failed (960-961 after
--   payment) | 990-991 rejected (paid) | the rest granted, except one in 5,000 (p % 5000 = 950)
--   granting, due in a day: the work queue is what is in flight, not a share of history (every
--   granting purchase is read by the oldest-paid-ungranted gauge on each scrape).
-- Event g: g % 5 = 0 is purchase g/5's invoice event (invoice.paid scheduled, invoice.finalized
-- ignored for unpaid purchases, invoice.voided canceled for canceled ones); of the rest, three in
-- four are payments of invoices creditd does not know (invoice.paid, unmatched) and one in four a
-- customer.updated (ignored). Received times spread over the past year, oldest first.
\set ON_ERROR_STOP 1
BEGIN;
CREATE TEMP TABLE seed_purchases AS
SELECT p,
       CASE WHEN p % 1000 < 750 THEN 'granted'
            WHEN p % 1000 < 900 THEN 'awaiting_payment'
            WHEN p % 1000 < 950 THEN 'canceled'
            WHEN p % 5000 = 950 THEN 'granting'
            WHEN p % 1000 BETWEEN 960 AND 989 THEN 'failed'
            WHEN p % 1000 BETWEEN 990 AND 991 THEN 'rejected'
            ELSE 'granted' END AS status,
       'pur_hist' || lpad(p::text, 9, '0') AS id,
       'in_hist' || lpad((5 * p)::text, 10, '0') AS invoice_id,
       'evt_hist' || lpad((5 * p)::text, 10, '0') AS event_id,
       now() - make_interval(secs => 31536000.0 * (:purchases - p) / :purchases) AS created_at
FROM generate_series(1, :purchases) p;

INSERT INTO purchases (id, status, customer, amount, currency, invoice_id, livemode, credit,
                       credit_grant_id, grant_requested, attempts, next_attempt_at, last_error,
                       paid_event_id, paid_at, granted_at, settlement, created_at, updated_at)
SELECT id, status, 'cus_hist' || (p % 5000), 2500, 'usd', invoice_id, false,
       '{"value": 2500, "currency": "usd", "name": "Usage credits", "category": "paid",
         "applicability": {"price_type": "metered"}}'::jsonb,
       CASE WHEN status = 'granted' THEN 'credgr_hist' || p END,
       status IN ('granted', 'granting'),
       CASE WHEN status IN ('granted', 'granting', 'failed') THEN 1 ELSE 0 END,
       CASE WHEN status = 'granting' THEN now() + interval '1 day' END,
       CASE WHEN status IN ('failed', 'rejected') THEN 'seeded history' END,
       CASE WHEN paid THEN event_id END,
       CASE WHEN paid THEN created_at + interval '1 minute' END,
       CASE WHEN status = 'granted' THEN created_at + interval '1 minute 2 seconds' END,
       CASE WHEN status = 'granted' THEN '{"gross": 2500, "total": 2500, "amount_paid": 2500,
         "balance_applied": 0, "discounts": 0, "paid_out_of_band": 0}'::jsonb END,
       created_at, created_at + interval '2 minutes'
FROM (SELECT *, status IN ('granted', 'granting', 'rejected') OR (status = 'failed' AND p % 1000 < 962) AS paid
      FROM seed_purchases) s;

-- A running creditd prunes the payloads of ignored events after 30 days (db::retention); so does
-- the seed, so the retention task has no backlog to work through while the benchmark measures.
INSERT INTO stripe_events (id, type, livemode, stripe_created, invoice_id, metadata_purchase_id,
                           purchase_id, outcome, source, payload, payload_pruned_at, received_at)
SELECT id, type, false, stripe_created, invoice_id, NULL, purchase_id, outcome, 'webhook',
       CASE WHEN pruned THEN 'null'::json ELSE :'payload'::json END,
       CASE WHEN pruned THEN now() END,
       received_at
FROM (
    SELECT *, outcome = 'ignored' AND received_at < now() - interval '30 days' AS pruned
    FROM (
        SELECT 'evt_hist' || lpad(g::text, 10, '0') AS id,
               CASE WHEN sp.p IS NOT NULL THEN
                        CASE WHEN sp.status = 'awaiting_payment' THEN 'invoice.finalized'
                             WHEN sp.status = 'canceled' THEN 'invoice.voided'
                             WHEN sp.status = 'failed' AND sp.p % 1000 >= 962 THEN 'invoice.finalized'
                             ELSE 'invoice.paid' END
                    WHEN g % 5 = 1 THEN 'customer.updated'
                    ELSE 'invoice.paid' END AS type,
               extract(epoch FROM now())::bigint - (:events - g) * 31 AS stripe_created,
               CASE WHEN sp.p IS NOT NULL THEN sp.invoice_id
                    WHEN g % 5 = 1 THEN NULL
                    ELSE 'in_hist' || lpad(g::text, 10, '0') END AS invoice_id,
               sp.id AS purchase_id,
               CASE WHEN sp.p IS NOT NULL THEN
                        CASE WHEN sp.status = 'awaiting_payment' THEN 'ignored'
                             WHEN sp.status = 'canceled' THEN 'canceled'
                             WHEN sp.status = 'failed' AND sp.p % 1000 >= 962 THEN 'ignored'
                             ELSE 'scheduled' END
                    WHEN g % 5 = 1 THEN 'ignored'
                    ELSE 'unmatched' END AS outcome,
               now() - make_interval(secs => 31536000.0 * (:events - g) / :events) AS received_at
        FROM generate_series(1, :events) g
        LEFT JOIN seed_purchases sp ON g % 5 = 0 AND sp.p = g / 5
    ) e
) e;

-- Their status history is already in purchase_transitions (one row per insert, by trigger), and
-- their counts in purchase_status_deltas (one +1 row each). Fold those as the scrapes of a running
-- creditd would have (db::status_counts::FOLD), so the first measured scrape is not the one
-- that folds a year of inserts.
WITH moved AS (DELETE FROM purchase_status_deltas RETURNING status, delta)
INSERT INTO purchase_status_deltas (status, delta)
SELECT status, sum(delta) FROM moved GROUP BY status HAVING sum(delta) <> 0;
COMMIT;
VACUUM ANALYZE purchases;
VACUUM ANALYZE stripe_events;
VACUUM ANALYZE purchase_transitions;
VACUUM ANALYZE purchase_status_deltas;
