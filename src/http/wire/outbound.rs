//! Outbound webhooks on the wire: the endpoint and message answers of `/admin/webhook_*`, and
//! the event body creditd posts to the merchant.

use serde::Serialize;
use utoipa::ToSchema;

use super::Purchase;
use crate::db::webhook_endpoints::Endpoint;
use crate::db::webhook_messages::{Attempt, Delivery, Message};
use crate::ids::{EndpointId, MessageId, PurchaseId};
use crate::outbound::event::{DeliveryStatus, EndpointStatus, EventType};

/// What creditd posts to an endpoint, signed per Standard Webhooks (`webhook-id` is `id`).
/// Ordering is not guaranteed: use `created` and the purchase's current state it carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEvent {
    #[schema(value_type = String, example = "msg_8Yv1_t12_granted")]
    pub id: MessageId,
    /// purchase.invoice_ready, purchase.granted, purchase.failed, purchase.rejected,
    /// purchase.canceled, purchase.reversed, purchase.partially_reversed or
    /// purchase.paid_without_credits.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "purchase.granted")]
    pub event_type: EventType,
    /// When the transition happened (unix seconds).
    pub created: i64,
    pub data: WebhookEventData,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEventData {
    /// The purchase as `GET /v1/purchases/{id}` shows it when the message is first sent.
    pub purchase: Purchase,
    /// For `topup.*` events: the customer's rule as `GET /v1/customers/{c}/auto_topup` shows it
    /// (with the pause reason after `topup.paused`); null for `purchase.*` events.
    pub auto_topup: Option<super::AutoTopup>,
}

/// A webhook endpoint, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    #[schema(value_type = String, example = "we_3kTq")]
    pub id: EndpointId,
    pub object: String,
    pub url: String,
    /// Event types, or `["*"]` for all.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// enabled or disabled.
    #[schema(value_type = String)]
    pub status: EndpointStatus,
    /// `admin` when an operator disabled it, `failing` when creditd did.
    pub disabled_reason: Option<String>,
    /// When the current run of failed attempts began (unix seconds).
    pub failing_since: Option<i64>,
    /// Until when the previous secret is still signed with, after a rotation.
    pub previous_secret_expires_at: Option<i64>,
    pub created: i64,
    pub updated: i64,
}

/// The answer that created an endpoint or rotated its secret: the only one with the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// `whsec_...`: shown once; store it to verify signatures.
    pub secret: String,
}

impl From<&Endpoint> for WebhookEndpoint {
    fn from(endpoint: &Endpoint) -> Self {
        WebhookEndpoint {
            id: endpoint.id.clone(),
            object: "webhook_endpoint".into(),
            url: endpoint.url.clone(),
            events: endpoint.events.clone(),
            description: endpoint.description.clone(),
            status: endpoint.status,
            disabled_reason: endpoint.disabled_reason.clone(),
            failing_since: endpoint.failing_since.map(|t| t.timestamp()),
            previous_secret_expires_at: endpoint.previous_secret_expires_at.map(|t| t.timestamp()),
            created: endpoint.created_at.timestamp(),
            updated: endpoint.updated_at.timestamp(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointList {
    pub object: String,
    pub data: Vec<WebhookEndpoint>,
    pub has_more: bool,
}

/// One message with its delivery to each endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookMessage {
    #[schema(value_type = String)]
    pub id: MessageId,
    pub object: String,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub event_type: EventType,
    #[schema(value_type = String)]
    pub purchase_id: PurchaseId,
    pub created: i64,
    pub deliveries: Vec<WebhookDelivery>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDelivery {
    #[schema(value_type = String)]
    pub endpoint: EndpointId,
    /// pending, delivered or failed.
    #[schema(value_type = String)]
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    /// Every attempt, oldest first.
    pub attempts: Vec<WebhookAttempt>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttempt {
    /// The HTTP status answered; null when no answer came (see `error`).
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i32,
    /// The first KiB of the answer's body.
    pub response: Option<String>,
    pub at: i64,
}

impl WebhookMessage {
    pub fn assemble(message: &Message, deliveries: &[Delivery], attempts: &[Attempt]) -> Self {
        let deliveries = deliveries
            .iter()
            .filter(|d| d.message_id == message.id)
            .map(|d| WebhookDelivery {
                endpoint: d.endpoint_id.clone(),
                status: d.status,
                next_attempt_at: d.next_attempt_at.map(|t| t.timestamp()),
                last_error: d.last_error.clone(),
                delivered_at: d.delivered_at.map(|t| t.timestamp()),
                failed_at: d.failed_at.map(|t| t.timestamp()),
                attempts: attempts
                    .iter()
                    .filter(|a| a.message_id == d.message_id && a.endpoint_id == d.endpoint_id)
                    .map(|a| WebhookAttempt {
                        http_status: a.http_status,
                        error: a.error.clone(),
                        latency_ms: a.latency_ms,
                        response: a.response.clone(),
                        at: a.at.timestamp(),
                    })
                    .collect(),
            })
            .collect();
        WebhookMessage {
            id: message.id.clone(),
            object: "webhook_message".into(),
            event_type: message.event_type,
            purchase_id: message.purchase_id.clone(),
            created: message.created_at.timestamp(),
            deliveries,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookMessageList {
    pub object: String,
    pub data: Vec<WebhookMessage>,
    pub has_more: bool,
}

/// How many deliveries an operator's retry or recover sent back to the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct Requeued {
    pub requeued: u64,
}
