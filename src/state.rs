//! What every handler can reach. It sits below both `app` (which builds it) and `http` (which
//! serves with it), so neither imports the other's internals.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::secret::Secret;
use crate::services::Services;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub api_token: Secret,
    pub admin_token: Secret,
    pub webhook: Arc<WebhookSettings>,
    /// Fires when shutdown starts; readiness then fails so load balancers stop sending traffic.
    pub shutdown: CancellationToken,
    /// Longest one request may take, body included.
    pub request_timeout: Duration,
    /// Outbound webhook settings, and the bell that wakes delivery workers.
    pub outbound: Arc<crate::outbound::Outbound>,
}

/// How incoming Stripe webhooks are checked.
pub struct WebhookSettings {
    pub secrets: Vec<Secret>,
    pub tolerance_secs: u64,
    pub max_body_bytes: usize,
}
