//! Session settings that keep the hot statements on their indexes whatever the statistics say.
//!
//! The danger: after five executions PostgreSQL may cache a *generic* plan for a prepared
//! statement and keep it until the table's statistics change. A table analyzed while empty (a
//! fresh deployment, a truncate, a restored backup) yields a generic Seq Scan for
//! `WHERE id = $1`, and every execution then costs O(table size) until the next analyze: the plan
//! cliff of issue 11. PostgreSQL has no hints, and no rewrite of the SQL changes that costing.

use sqlx::postgres::PgConnectOptions;

/// The recorder's sessions: sequential scans are priced out (`enable_seqscan = off`), so the
/// plan PostgreSQL caches for `RECORD_EVENTS` reaches every row through an index (the primary key
/// of `stripe_events`, the invoice and primary keys of `purchases`) even when it was planned
/// against tables believed empty; and that one generic plan is always used
/// (`plan_cache_mode = force_generic_plan`), so the statement is planned once per connection.
///
/// Why not `force_custom_plan` here: re-planning this statement (a five-part CTE joined with the
/// decision table) on every execution cost more than the write itself; it took duplicates from
/// about 11,000/s to under 2,000/s in `scripts/bench-webhooks` (2026-12-02). And why not leave the
/// choice to PostgreSQL (`auto`): its parameters are arrays, so every custom plan knows the batch's
/// size and the generic one guesses it; when the guess prices the generic plan above the custom
/// ones, PostgreSQL re-plans every execution, which it did under group commit (PostgreSQL CPU per
/// duplicate 0.65 ms instead of 0.07 ms, 2026-12-02). Every table this session touches has the
/// index its statement needs, so the settings never force a worse plan.
pub fn index_scans_only(options: PgConnectOptions) -> PgConnectOptions {
    options.options([
        ("enable_seqscan", "off"),
        ("plan_cache_mode", "force_generic_plan"),
    ])
}

/// The pool's sessions: each execution of a prepared statement is planned with its actual
/// parameters (`plan_cache_mode = force_custom_plan`). A custom plan also sees the table's
/// current size (the planner reads the relation's real page count, not just `pg_class`), so
/// claiming due work and matching turn to their indexes as soon as the tables have rows. The pool
/// also runs admin and API queries that may rightly scan, so sequential scans stay allowed; its
/// statements run far less often than the recorder's, so planning each time costs little.
pub fn custom_plans_only(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("plan_cache_mode", "force_custom_plan")])
}
