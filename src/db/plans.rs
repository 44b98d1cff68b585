//! Session settings that keep the hot statements on their indexes whatever the statistics say.

use sqlx::postgres::PgConnectOptions;

/// Every creditd session plans each execution of a prepared statement with its actual parameters
/// (`plan_cache_mode = force_custom_plan`).
///
/// Why not the default: after five executions PostgreSQL may cache a *generic* plan and keep it
/// until the table's statistics change. A table analyzed while empty (a fresh deployment, a
/// truncate, a restored backup) yields a generic Seq Scan for `WHERE id = $1`, and every event
/// then costs O(table size) until the next analyze: the plan cliff of issue 11. A custom plan
/// also looks at the table's *current* size (the planner reads the relation's real page count,
/// not just `pg_class`), so it turns to the index as soon as the table has rows.
///
/// Why not only restructure the statements: a generic plan for a key lookup on a table believed
/// empty is a Seq Scan however the SQL is written, and hints do not exist in PostgreSQL. The
/// price is planning on each execution, about 0.1 ms for `RECORD_EVENT`, small against its commit.
pub fn custom_plans_only(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("plan_cache_mode", "force_custom_plan")])
}
