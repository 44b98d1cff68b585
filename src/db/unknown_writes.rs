//! Stripe writes whose outcome is unknown because Stripe stored a 500 under their key: when that
//! happened, how often we looked for the result since, and when a new key may be used.

use std::time::Duration;

use sqlx::PgExecutor;

/// The two series of keyed writes a purchase makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// The credit grant (`grant_*` columns).
    Grant,
    /// The invoice creditd creates to fund a purchase (`funding_*` columns).
    Funding,
}

impl Write {
    /// (since, lookups, key generation) columns.
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Write::Grant => (
                "grant_unknown_since",
                "grant_lookups",
                "grant_key_generation",
            ),
            Write::Funding => (
                "funding_unknown_since",
                "funding_lookups",
                "funding_key_generation",
            ),
        }
    }
}

/// How many looks that find nothing must come before a new key may be used.
pub const LOOKS_BEFORE_NEW_KEY: i32 = 2;

/// Remembers that Stripe stored a 500 under the current key (the first time only, so the settle
/// time counts from the first 500).
pub async fn note_unknown(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    write: Write,
) -> sqlx::Result<bool> {
    // Not `query!`: the columns are the write's (grant or funding); one statement per write
    // would be two copies of the rule that keeps the settle time counting from the first 500.
    let (since, lookups, _) = write.columns();
    let sql = format!(
        "UPDATE purchases SET {since} = COALESCE({since}, now()), {lookups} = 0, updated_at = now()
         WHERE id = $1 AND lease_owner = $2"
    );
    let result = sqlx::query(&sql).bind(id).bind(owner).execute(db).await?;
    Ok(result.rows_affected() == 1)
}

/// What may follow a look that found nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterLookup {
    /// Enough looks, the last one late enough: write again under this new key generation.
    NewKey(i32),
    /// Look again after this long; the key stays.
    LookAgainIn(Duration),
}

/// Counts one look that found nothing. After [`LOOKS_BEFORE_NEW_KEY`] looks, the last at least
/// `settle` after the 500, moves to a fresh key generation in the same statement. None if the lease
/// is lost or no outcome is unknown.
pub async fn note_lookup(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    write: Write,
    settle: Duration,
) -> sqlx::Result<Option<AfterLookup>> {
    // Not `query!`, for the same reason as `note_unknown`: the columns are the write's.
    let (since, lookups, generation) = write.columns();
    let settled = format!(
        "({lookups} + 1 >= {LOOKS_BEFORE_NEW_KEY} AND {since} + make_interval(secs => $3) <= now())"
    );
    let sql = format!(
        "UPDATE purchases
         SET {lookups} = CASE WHEN {settled} THEN 0 ELSE {lookups} + 1 END,
             {generation} = {generation} + CASE WHEN {settled} THEN 1 ELSE 0 END,
             {since} = CASE WHEN {settled} THEN NULL ELSE {since} END,
             updated_at = now()
         WHERE id = $1 AND lease_owner = $2 AND lease_expires_at > now() AND {since} IS NOT NULL
         RETURNING {since} IS NULL, {generation},
                   COALESCE(extract(epoch FROM {since} + make_interval(secs => $3) - now()), 0)::float8"
    );
    let row: Option<(bool, i32, f64)> = sqlx::query_as(&sql)
        .bind(id)
        .bind(owner)
        .bind(settle.as_secs_f64())
        .fetch_optional(db)
        .await?;
    Ok(row.map(|(new_key, generation, wait_secs)| {
        if new_key {
            AfterLookup::NewKey(generation)
        } else {
            AfterLookup::LookAgainIn(Duration::from_secs_f64(wait_secs.max(0.0)))
        }
    }))
}
