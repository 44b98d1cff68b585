//! The JSON shapes of creditd's API, for the OpenAPI document. Tests compare them with real answers.

use std::collections::BTreeMap;

use utoipa::ToSchema;

/// `POST /v1/purchases`. Without `invoice_id`, creditd creates, fills and finalizes the invoice.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PurchaseRequest {
    #[schema(example = "cus_R2d2")]
    customer: String,
    /// In the currency's minor unit (cents; yen for JPY).
    #[schema(example = 5000, minimum = 1)]
    amount: i64,
    #[schema(example = "usd")]
    currency: String,
    invoice_id: Option<String>,
    credit: Option<CreditSpec>,
    description: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
    /// Only without `invoice_id`: `charge_automatically` (default) or `send_invoice`.
    collection_method: Option<String>,
    /// Required with `send_invoice`, 1 to 365.
    days_until_due: Option<i64>,
}

/// The credit grant a purchase buys; every field has a default derived from the purchase.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreditSpec {
    value: Option<i64>,
    currency: Option<String>,
    #[schema(max_length = 100)]
    name: Option<String>,
    /// `paid` (default) or `promotional`.
    category: Option<String>,
    #[schema(minimum = 0, maximum = 100)]
    priority: Option<i64>,
    effective_at: Option<i64>,
    /// A fixed expiry. If it has passed by the time the invoice is paid, no grant is created and
    /// the purchase ends `rejected` (and is alerted on).
    expires_at: Option<i64>,
    /// Credits valid for this many days from the grant (1 to 3650); exclusive with `expires_at`.
    #[schema(minimum = 1, maximum = 3650)]
    expires_after_days: Option<i64>,
    applicability: Option<Applicability>,
}

/// `{"price_type": "metered"}` (default) or `{"prices": ["price_.."]}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Applicability {
    price_type: Option<String>,
    prices: Option<Vec<String>>,
}

/// A purchase as the API returns it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Purchase {
    #[schema(example = "pur_8Yv1")]
    id: String,
    object: String,
    /// creating_invoice, awaiting_payment, granting, granted, failed, rejected or canceled.
    status: String,
    customer: String,
    amount: i64,
    currency: String,
    /// The amount in the major unit, for people: "50.00 USD", "5000 JPY".
    amount_display: String,
    livemode: bool,
    invoice_id: Option<String>,
    hosted_invoice_url: Option<String>,
    /// When Stripe marked the invoice uncollectible; the purchase stays payable until it is voided.
    uncollectible_at: Option<i64>,
    /// What settled the invoice, as Stripe showed it when creditd judged it.
    settlement: Option<Settlement>,
    #[schema(value_type = Object)]
    credit: CreditSpec,
    credit_grant_id: Option<String>,
    /// Set when the purchase's grant was found voided at Stripe; it is still this purchase's grant.
    credit_grant_voided_at: Option<i64>,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    collection_method: Option<String>,
    attempts: i32,
    last_error: Option<String>,
    paid_at: Option<i64>,
    granted_at: Option<i64>,
    created: i64,
    updated: i64,
}

/// What settled a paid invoice, in the currency's minor unit.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Settlement {
    /// The invoice's amount before discounts and the customer's balance; must cover the purchase.
    gross: i64,
    total: i64,
    amount_paid: i64,
    balance_applied: i64,
    discounts: i64,
    paid_out_of_band: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PurchaseList {
    object: String,
    data: Vec<Purchase>,
    has_more: bool,
}

/// Every error answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorResponse {
    error: ErrorBody,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    #[schema(example = "invalid_field")]
    code: String,
    message: String,
    /// The request field at fault, when there is one.
    field: Option<String>,
}

/// The answer to a recorded webhook.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct WebhookAck {
    received: bool,
    event_id: String,
    duplicate: bool,
    /// scheduled, canceled, already_<status>, unmatched, ignored or duplicate.
    outcome: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreditBalance {
    object: String,
    customer: String,
    balances: Vec<CurrencyBalance>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CurrencyBalance {
    available: Amount,
    ledger: Amount,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Amount {
    value: i64,
    currency: String,
    display: Option<String>,
}

/// Stripe's credit balance transactions, passed through.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreditTransactions {
    object: String,
    #[schema(value_type = Vec<Object>)]
    data: Vec<serde_json::Value>,
    has_more: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Status {
    status: String,
}
