//! Grant moves: each change a reversal makes to a purchase's credits, written ahead of every Stripe
//! call it makes (see `crate::reversal`), and the reversals as the API and explain view show them.

use sqlx::PgExecutor;

use crate::ids::PurchaseId;
use crate::reversal::{Direction, EndAction, MovePolicy, MoveStep, ReversalKind};

/// One change to a purchase's credits, as planned and carried out.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct GrantMove {
    pub reversal_id: String,
    pub direction: Direction,
    pub step: MoveStep,
    pub policy: MovePolicy,
    /// Credits the move takes (or gives back).
    pub credits: i64,
    pub available_before: i64,
    /// Credits a take could not take back: the customer had used them already.
    pub shortfall: i64,
    pub old_grant_id: Option<String>,
    pub end_action: EndAction,
    pub new_amount: i64,
    pub new_grant_id: Option<String>,
    pub planned_at: chrono::DateTime<chrono::Utc>,
    pub done_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl GrantMove {
    /// The key of every Stripe write this move makes, and of the replacement's metadata.
    pub fn key(&self) -> String {
        format!("{}-{}", self.reversal_id, self.direction.as_str())
    }
}

pub async fn moves_of(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
) -> sqlx::Result<Vec<GrantMove>> {
    sqlx::query_as!(
        GrantMove,
        r#"SELECT reversal_id, direction AS "direction: Direction", step AS "step: MoveStep",
                  policy AS "policy: MovePolicy", credits, available_before, shortfall,
                  old_grant_id, end_action AS "end_action: EndAction", new_amount, new_grant_id,
                  planned_at, done_at
           FROM grant_moves WHERE purchase_id = $1 ORDER BY planned_at, reversal_id, direction"#,
        purchase_id as &PurchaseId,
    )
    .fetch_all(db)
    .await
}

/// Writes a planned move ahead of its first Stripe call, if this worker still holds the
/// purchase (or, for bookkeeping before the grant exists, in the same way). A move done at once
/// (`record_only`, bookkeeping before the grant, nothing to change) is written done.
pub async fn plan_move(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
    owner: &str,
    planned: &GrantMove,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        r#"
        INSERT INTO grant_moves (reversal_id, direction, purchase_id, step, policy, credits,
                                 available_before, shortfall, old_grant_id, end_action, new_amount,
                                 done_at)
        SELECT $3, $4, p.id, $5, $6, $7, $8, $9, $10, $11, $12,
               CASE WHEN $5 = 'done' THEN now() END
        FROM purchases p
        WHERE p.id = $1 AND p.lease_owner = $2 AND p.lease_expires_at > now()
        ON CONFLICT (reversal_id, direction) DO NOTHING
        "#,
        purchase_id as &PurchaseId,
        owner,
        planned.reversal_id,
        planned.direction as Direction,
        planned.step as MoveStep,
        planned.policy as MovePolicy,
        planned.credits,
        planned.available_before,
        planned.shortfall,
        planned.old_grant_id,
        planned.end_action as EndAction,
        planned.new_amount,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Write-ahead for the replacement grant: committed before its create request leaves, so a later
/// attempt looks for it by metadata before creating one.
pub async fn mark_replacing(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
    owner: &str,
    grant_move: &GrantMove,
) -> sqlx::Result<bool> {
    let result = sqlx::query!(
        r#"
        UPDATE grant_moves m SET step = 'replacing'
        FROM purchases p
        WHERE m.reversal_id = $3 AND m.direction = $4 AND m.step = 'planned'
          AND p.id = $1 AND m.purchase_id = p.id
          AND p.lease_owner = $2 AND p.lease_expires_at > now()
        "#,
        purchase_id as &PurchaseId,
        owner,
        grant_move.reversal_id,
        grant_move.direction as Direction,
    )
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends a move and makes its result the purchase's current grant, in one statement. Safe without
/// the lease: everything it records exists at Stripe, and any other holder can only find the same.
pub async fn complete_move(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
    grant_move: &GrantMove,
    new_grant_id: Option<&str>,
) -> sqlx::Result<bool> {
    let done = sqlx::query_scalar!(
        r#"
        WITH done AS (
            UPDATE grant_moves SET step = 'done', new_grant_id = $4, done_at = now()
            WHERE reversal_id = $2 AND direction = $3 AND step <> 'done'
            RETURNING end_action, new_amount
        ), current AS (
            UPDATE purchases p
            SET current_grant_id = CASE WHEN $4::text IS NOT NULL THEN $4
                                        WHEN d.end_action <> 'none' THEN NULL
                                        ELSE p.current_grant_id END,
                current_grant_value = CASE WHEN $4::text IS NOT NULL THEN d.new_amount
                                           WHEN d.end_action <> 'none' THEN NULL
                                           ELSE p.current_grant_value END,
                updated_at = now()
            FROM done d WHERE p.id = $1
            RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM current) AS "done!"
        "#,
        purchase_id as &PurchaseId,
        grant_move.reversal_id,
        grant_move.direction as Direction,
        new_grant_id,
    )
    .fetch_one(db)
    .await?;
    Ok(done)
}

/// A reversal with the moves it caused, for the API and the explain view.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReversalView {
    pub purchase_id: PurchaseId,
    pub id: String,
    pub kind: ReversalKind,
    pub amount: i64,
    pub currency: String,
    pub stripe_status: String,
    pub money_reversed: bool,
    pub take_step: Option<MoveStep>,
    pub take_policy: Option<MovePolicy>,
    pub take_credits: Option<i64>,
    pub take_shortfall: Option<i64>,
    pub take_end_action: Option<EndAction>,
    pub take_old_grant_id: Option<String>,
    pub take_new_grant_id: Option<String>,
    pub restore_step: Option<MoveStep>,
    pub restore_credits: Option<i64>,
    pub restore_new_grant_id: Option<String>,
}

/// The reversals of the given purchases, oldest first within each, in one query.
pub async fn views_for(
    db: impl PgExecutor<'_>,
    purchase_ids: &[&PurchaseId],
) -> sqlx::Result<Vec<ReversalView>> {
    let ids: Vec<&str> = purchase_ids.iter().map(|id| id.as_str()).collect();
    sqlx::query_as!(
        ReversalView,
        r#"
        SELECT r.purchase_id AS "purchase_id: PurchaseId", r.id, r.kind AS "kind: ReversalKind",
               r.amount, r.currency, r.stripe_status, r.money_reversed,
               t.step AS "take_step?: MoveStep", t.policy AS "take_policy?: MovePolicy",
               t.credits AS "take_credits?", t.shortfall AS "take_shortfall?",
               t.end_action AS "take_end_action?: EndAction",
               t.old_grant_id AS take_old_grant_id, t.new_grant_id AS take_new_grant_id,
               s.step AS "restore_step?: MoveStep", s.credits AS "restore_credits?",
               s.new_grant_id AS restore_new_grant_id
        FROM reversals r
        LEFT JOIN grant_moves t ON t.reversal_id = r.id AND t.direction = 'take'
        LEFT JOIN grant_moves s ON s.reversal_id = r.id AND s.direction = 'restore'
        WHERE r.purchase_id = ANY($1)
        ORDER BY r.purchase_id, r.first_seen_at, r.id
        "#,
        &ids as &[&str],
    )
    .fetch_all(db)
    .await
}
