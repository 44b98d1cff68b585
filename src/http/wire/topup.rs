//! An auto top-up rule as the API takes and shows it.

use serde::Serialize;
use utoipa::ToSchema;

use super::Purchase;

/// `PUT /v1/customers/{customer}/auto_topup`: the rule (the OpenAPI shape; parsing lives in
/// `topup::rule_request`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct AutoTopupRequest {
    /// Top up when the available credits for the rule's scope fall below this (minor units).
    pub threshold: i64,
    /// Buy this much each time (exclusive with `top_up_to`).
    pub amount: Option<i64>,
    /// Or buy what brings the balance to this.
    pub top_up_to: Option<i64>,
    pub currency: String,
    /// Name, category, priority, expires_after_days and applicability of each top-up's grant
    /// (the scope whose balance is watched; default `{"price_type": "metered"}`).
    #[schema(value_type = Option<Object>)]
    pub credit: Option<serde_json::Value>,
    pub max_topups_per_month: i32,
    pub max_amount_per_month: i64,
    /// Consecutive failed top-ups after which the rule pauses itself (default 3).
    pub pause_after_failures: Option<i32>,
    /// Default true. Setting the rule again also lifts a pause.
    pub enabled: Option<bool>,
}

/// A customer's auto top-up rule and what it has done.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutoTopup {
    pub object: String,
    pub customer: String,
    pub threshold: i64,
    pub amount: Option<i64>,
    pub top_up_to: Option<i64>,
    pub currency: String,
    #[schema(value_type = Object)]
    pub credit: crate::purchase::CreditSpec,
    pub max_topups_per_month: i32,
    pub max_amount_per_month: i64,
    pub pause_after_failures: i32,
    pub enabled: bool,
    /// active, paused, disabled (or deleted, in the answer to DELETE).
    pub state: String,
    pub consecutive_failures: i32,
    pub paused_at: Option<i64>,
    pub paused_reason: Option<String>,
    /// The available credits the last check saw, and when.
    pub last_balance: Option<i64>,
    pub last_checked_at: Option<i64>,
    /// Why the last check that found the balance low made no top-up (a cap, the cooldown, one in
    /// flight).
    pub last_skip_reason: Option<String>,
    /// The latest top-ups, newest first.
    pub recent_topups: Vec<Purchase>,
    pub created: i64,
    pub updated: i64,
}

impl AutoTopup {
    pub fn new(rule: &crate::db::topups::Rule, recent: &[crate::purchase::Purchase]) -> Self {
        let state = match (rule.paused_at.is_some(), rule.enabled) {
            (true, _) => "paused",
            (false, true) => "active",
            (false, false) => "disabled",
        };
        AutoTopup {
            object: "auto_topup".into(),
            customer: rule.customer.clone(),
            threshold: rule.threshold,
            amount: rule.amount,
            top_up_to: rule.top_up_to,
            currency: rule.currency.clone(),
            credit: rule.credit.0.clone(),
            max_topups_per_month: rule.max_topups_per_month,
            max_amount_per_month: rule.max_amount_per_month,
            pause_after_failures: rule.pause_after_failures,
            enabled: rule.enabled,
            state: state.into(),
            consecutive_failures: rule.consecutive_failures,
            paused_at: rule.paused_at.map(|t| t.timestamp()),
            paused_reason: rule.paused_reason.clone(),
            last_balance: rule.last_balance,
            last_checked_at: rule.last_checked_at.map(|t| t.timestamp()),
            last_skip_reason: rule.last_skip_reason.clone(),
            recent_topups: recent.iter().map(Purchase::from).collect(),
            created: rule.created_at.timestamp(),
            updated: rule.updated_at.timestamp(),
        }
    }
}
