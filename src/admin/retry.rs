//! Sending a `failed` purchase (or, forced, a `rejected` one) back to the workers.

use crate::db;
use crate::purchase::{Purchase, PurchaseStatus};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no purchase with id '{0}'")]
    NotFound(String),
    #[error(
        "purchase is rejected: Stripe's invoice did not match it; retry with force to override"
    )]
    NeedsForce,
    #[error("purchase is {0}; only failed (or, with force, rejected) purchases can be retried")]
    NotRetryable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The step a retried purchase resumes at: granting once payment is known, otherwise the invoice
/// is created again (creditd-funded purchases without an invoice) or awaited.
pub async fn resume_status(
    services: &Services,
    purchase: &Purchase,
) -> sqlx::Result<PurchaseStatus> {
    if purchase.paid_at.is_some()
        || db::lifecycle::has_recorded_payment(&services.db, &purchase.id).await?
    {
        Ok(PurchaseStatus::Granting)
    } else if purchase.invoice_id.is_none() && purchase.funding.is_some() {
        Ok(PurchaseStatus::CreatingInvoice)
    } else {
        Ok(PurchaseStatus::AwaitingPayment)
    }
}

/// Retries the purchase; returns it as it is now. Conditional on the status read, so two operators
/// retrying at once move it once.
pub async fn retry(services: &Services, id: &str, force: bool) -> Result<Purchase, RetryError> {
    let purchase = db::purchases::find(&services.db, id)
        .await?
        .ok_or_else(|| RetryError::NotFound(id.to_string()))?;
    let from = purchase.status();
    match from {
        PurchaseStatus::Failed => {}
        PurchaseStatus::Rejected if force => {}
        PurchaseStatus::Rejected => return Err(RetryError::NeedsForce),
        other => return Err(RetryError::NotRetryable(other.as_str().to_string())),
    }
    let next = resume_status(services, &purchase).await?;
    match db::purchases::retry(&services.db, id, from, next).await? {
        Some(moved) => {
            if matches!(
                next,
                PurchaseStatus::Granting | PurchaseStatus::CreatingInvoice
            ) {
                services.wake.notify_one();
            }
            Ok(moved)
        }
        None => {
            let current = db::purchases::find(&services.db, id)
                .await?
                .ok_or_else(|| RetryError::NotFound(id.to_string()))?;
            Err(RetryError::NotRetryable(current.status.to_string()))
        }
    }
}
