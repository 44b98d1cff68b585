//! The body of a message: rendered from the purchase by the same code as `GET /v1/purchases/{id}`
//! and frozen the first time the message is claimed (see the module doc of `outbound`).

use anyhow::Context;

use crate::db;
use crate::db::webhook_deliveries::Claimed;
use crate::http::wire;

/// The message's body: the frozen one, or the purchase rendered now and frozen.
pub async fn body(db: &sqlx::PgPool, claim: &Claimed) -> anyhow::Result<String> {
    if let Some(frozen) = &claim.payload {
        return Ok(frozen.clone());
    }
    let purchase = db::purchases::find(db, &claim.purchase_id)
        .await?
        .with_context(|| {
            format!(
                "purchase {} of message {} is gone",
                claim.purchase_id, claim.message_id
            )
        })?;
    let auto_topup = match (&purchase.topup_customer, claim.event_type.as_str()) {
        (Some(customer), kind) if kind.starts_with("topup.") => {
            match db::topups::find(db, customer).await? {
                Some(rule) => {
                    let recent = db::topups::recent(db, customer, 5).await?;
                    Some(wire::AutoTopup::new(&rule, &recent))
                }
                None => None,
            }
        }
        _ => None,
    };
    let event = wire::WebhookEvent {
        id: claim.message_id.clone(),
        event_type: claim.event_type,
        created: claim.created_at.timestamp(),
        data: wire::WebhookEventData {
            purchase: crate::http::purchases::shown(db, &purchase).await?,
            auto_topup,
        },
    };
    let rendered = serde_json::to_string(&event).context("rendering the event")?;
    Ok(db::webhook_deliveries::freeze_payload(db, &claim.message_id, &rendered).await?)
}
