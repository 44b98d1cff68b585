//! The event types creditd sends, and the statuses of a delivery: typed, so a new variant is a
//! compile error wherever it matters rather than a string nobody checks.

use serde::Serialize;

/// What happened to a purchase. Stored as text under a CHECK constraint (0007_outbound.sql).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventType {
    #[serde(rename = "purchase.invoice_ready")]
    InvoiceReady,
    #[serde(rename = "purchase.granted")]
    Granted,
    #[serde(rename = "purchase.failed")]
    Failed,
    #[serde(rename = "purchase.rejected")]
    Rejected,
    #[serde(rename = "purchase.canceled")]
    Canceled,
    #[serde(rename = "purchase.reversed")]
    Reversed,
    #[serde(rename = "purchase.partially_reversed")]
    PartiallyReversed,
    #[serde(rename = "purchase.paid_without_credits")]
    PaidWithoutCredits,
    /// An automatic top-up was granted.
    #[serde(rename = "topup.succeeded")]
    TopupSucceeded,
    /// An automatic top-up failed (declined, authentication required, no saved card).
    #[serde(rename = "topup.failed")]
    TopupFailed,
    /// That failure paused the customer's auto top-up rule.
    #[serde(rename = "topup.paused")]
    TopupPaused,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::InvoiceReady,
        EventType::Granted,
        EventType::Failed,
        EventType::Rejected,
        EventType::Canceled,
        EventType::Reversed,
        EventType::PartiallyReversed,
        EventType::PaidWithoutCredits,
        EventType::TopupSucceeded,
        EventType::TopupFailed,
        EventType::TopupPaused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::InvoiceReady => "purchase.invoice_ready",
            EventType::Granted => "purchase.granted",
            EventType::Failed => "purchase.failed",
            EventType::Rejected => "purchase.rejected",
            EventType::Canceled => "purchase.canceled",
            EventType::Reversed => "purchase.reversed",
            EventType::PartiallyReversed => "purchase.partially_reversed",
            EventType::PaidWithoutCredits => "purchase.paid_without_credits",
            EventType::TopupSucceeded => "topup.succeeded",
            EventType::TopupFailed => "topup.failed",
            EventType::TopupPaused => "topup.paused",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one message stands with one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// An attempt got a 2xx.
    Delivered,
    /// The retry schedule ran out, or the endpoint was disabled for failing or deleted.
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// Whether an endpoint receives messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    Enabled,
    Disabled,
    Deleted,
}

impl EndpointStatus {
    pub const ALL: [EndpointStatus; 3] = [
        EndpointStatus::Enabled,
        EndpointStatus::Disabled,
        EndpointStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Enabled => "enabled",
            EndpointStatus::Disabled => "disabled",
            EndpointStatus::Deleted => "deleted",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

use crate::text_column::text_column;

text_column!(EventType, "event type");
text_column!(DeliveryStatus, "delivery status");
text_column!(EndpointStatus, "endpoint status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_parses_back_and_serializes_as_its_name() {
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(event));
            let json = serde_json::to_value(event).unwrap();
            assert_eq!(json, event.as_str());
        }
        assert_eq!(EventType::parse("purchase.unknown"), None);
    }
}
