//! The operator API's answers (`/admin/*`).

use serde::Serialize;
use utoipa::ToSchema;

use super::Purchase;
use crate::admin::replay;
use crate::ids::PurchaseId;
use crate::purchase::lifecycle::Outcome;

/// A re-sync that was accepted and runs in the background.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResyncStarted {
    pub id: String,
    pub object: String,
    pub status: String,
}

/// What replaying one event did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub event_id: String,
    #[schema(value_type = String)]
    pub outcome: Outcome,
    #[schema(value_type = Option<String>)]
    pub purchase_id: Option<PurchaseId>,
    /// `stored` when the event was already recorded, `stripe` when it was fetched now.
    pub from: String,
}

impl From<&replay::Replayed> for Replayed {
    fn from(replayed: &replay::Replayed) -> Self {
        Replayed {
            event_id: replayed.event_id.clone(),
            outcome: replayed.outcome,
            purchase_id: replayed.purchase_id.clone(),
            from: replayed.from.to_owned(),
        }
    }
}

/// A page of recorded events, newest first, each with its stored outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub object: String,
    // Rows are still shaped in db/admin.rs; typed rows are issue 9 item 3.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
    pub has_more: bool,
}

/// A purchase with everything that explains it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseExplained {
    #[serde(flatten)]
    pub purchase: Purchase,
    pub grant: GrantState,
    /// Every change a refund or dispute made to the credits, step by step: the balance it read,
    /// the grant it voided or expired, the replacement, the shortfall.
    #[schema(value_type = Vec<Object>)]
    pub grant_moves: Vec<crate::db::grant_moves::GrantMove>,
    pub paid_event_id: Option<String>,
    /// Status transitions, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<serde_json::Value>,
    /// The recorded events that touched the purchase.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Every Stripe call made for the purchase.
    #[schema(value_type = Vec<Object>)]
    pub stripe_calls: Vec<serde_json::Value>,
}

/// The purchase's grant as creditd tracks it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantState {
    pub id: Option<String>,
    pub requested: bool,
    pub idempotency_key: String,
}
