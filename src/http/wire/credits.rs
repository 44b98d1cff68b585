//! Credit balances and transactions as `/v1/customers/{customer}/…` answers them.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct CreditBalance {
    pub object: String,
    pub customer: String,
    pub balances: Vec<CurrencyBalance>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyBalance {
    pub available: Amount,
    pub ledger: Amount,
}

/// An amount in the currency's minor unit, with a display form for people when the currency is known.
#[derive(Debug, Serialize, ToSchema)]
pub struct Amount {
    pub value: i64,
    pub currency: String,
    pub display: Option<String>,
}

/// Stripe's credit balance transactions, passed through.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditTransactions {
    pub object: String,
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
    pub has_more: bool,
}
