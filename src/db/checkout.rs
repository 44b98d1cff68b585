//! A Checkout-funded purchase's session, stored as soon as Stripe returns it (or a lookup finds it).

use sqlx::PgExecutor;

/// Records the session and its payment page, if this worker holds the purchase.
pub async fn set_session(
    db: impl PgExecutor<'_>,
    id: &str,
    owner: &str,
    session_id: &str,
    url: Option<&str>,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        "UPDATE purchases
         SET checkout_session_id = $3, checkout_url = COALESCE($4, checkout_url),
             funding_unknown_since = NULL, funding_lookups = 0, updated_at = now()
         WHERE id = $1 AND lease_owner = $2
           AND (checkout_session_id IS NULL OR checkout_session_id = $3)",
        id,
        owner,
        session_id,
        url,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}
