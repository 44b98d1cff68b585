//! Keeping and giving back leases on claimed purchases: the heartbeat's renewal, the undo of an
//! attempt that never reached Stripe, and the release of everything a stopping process holds.

use std::time::Duration;

use sqlx::PgExecutor;

/// Extends the lease `owner` holds on a purchase. False once it no longer holds it (the attempt
/// finished and let go, or another worker took over after an expiry).
pub async fn renew(
    db: impl PgExecutor<'_>,
    purchase_id: &str,
    owner: &str,
    lease: Duration,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        "UPDATE purchases SET lease_expires_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND lease_owner = $2",
        purchase_id,
        owner,
        lease.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Takes back the attempt a claim counted, when that attempt never reached Stripe. Conditional
/// on the count the claim produced, so it can only ever undo its own claim, and only while the
/// purchase is still waiting for work.
pub async fn uncount_attempt(
    db: impl PgExecutor<'_>,
    purchase_id: &str,
    claimed_attempts: i32,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        "UPDATE purchases SET attempts = attempts - 1
         WHERE id = $1 AND attempts = $2 AND attempts > 0
           AND status IN ('creating_invoice', 'granting', 'reversing')",
        purchase_id,
        claimed_attempts,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Releases every purchase still leased to one of `owners` (a stopping process's workers), due
/// at once and without counting the attempt that was cut short, so another replica resumes it
/// now instead of after the lease. Safe: a grant request cut short was marked requested first,
/// so the next attempt looks for its grant before creating one.
pub async fn release_all(db: impl PgExecutor<'_>, owners: &[String]) -> sqlx::Result<u64> {
    let result = sqlx::query!(
        "UPDATE purchases
         SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = now(),
             attempts = greatest(attempts - 1, 0), updated_at = now()
         WHERE lease_owner = ANY($1) AND status IN ('creating_invoice', 'granting', 'reversing')",
        owners,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}
