//! What a re-sync covers: its validated parameters, stored with it. Requests become parameters in
//! [`super::resync_request`]; the Stripe list request for each page is built in
//! `stripe::api::resync`.

/// How long Stripe keeps events.
pub const EVENT_RETENTION_SECS: i64 = 30 * 86_400;
/// Objects per page, Stripe's maximum.
pub const PAGE_SIZE: i64 = 100;
/// Most `types[]` Stripe accepts.
pub const MAX_TYPES: usize = 20;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Events,
    Invoices,
}

/// What a re-sync covers; stored with it and read again when it resumes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResyncParams {
    /// Unix seconds, inclusive.
    pub since: i64,
    /// Unix seconds, inclusive; None for "up to now".
    pub until: Option<i64>,
    pub types: Vec<String>,
    pub only_undelivered: bool,
    pub dry_run: bool,
    pub source: Source,
}
