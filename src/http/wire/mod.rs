//! The API's wire shapes: the structs handlers answer with, which are also the OpenAPI schemas,
//! so the document and the answers cannot drift apart.

mod admin;
mod credits;
mod outbound;
mod purchase;
mod reversal;
mod topup;

pub use admin::{
    EventList, GrantMove, GrantState, PurchaseEvent, PurchaseExplained, RecordedEvent, Replayed,
    Resync, ResyncCounts, ResyncOutcome, ResyncStarted, StatusChange, StripeCall,
};
pub use credits::{Amount, CreditBalance, CreditTransactions, CurrencyBalance};
pub use outbound::{
    Requeued, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEndpointList,
    WebhookEndpointWithSecret, WebhookEvent, WebhookEventData, WebhookMessage, WebhookMessageList,
};
pub use purchase::{Purchase, PurchaseList, Settlement};
pub use reversal::Reversal;
pub use topup::{AutoTopup, AutoTopupRequest};

use serde::Serialize;
use utoipa::ToSchema;

use crate::purchase::lifecycle::Outcome;

/// A liveness or readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: String,
}

impl Status {
    pub fn new(status: &str) -> Self {
        Status {
            status: status.to_owned(),
        }
    }
}

/// The answer to a recorded webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    pub received: bool,
    pub event_id: String,
    pub duplicate: bool,
    /// scheduled, canceled, noted, already_<status>, unmatched, linking (a refund or dispute whose
    /// payment is being looked up), ignored or duplicate.
    #[schema(value_type = String)]
    pub outcome: Outcome,
}
