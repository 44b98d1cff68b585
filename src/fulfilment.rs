//! The one function that turns a paid purchase into exactly one credit grant.
//!
//! Every route to a grant (webhook, re-sync, replay, sweeper, admin retry) only makes the purchase
//! due (`status = 'granting'`); a worker that holds the purchase's lease then runs [`fulfil`].
//! Why a crash at any line can neither grant twice nor lose a paid purchase:
//!
//! 1. *Before the grant request is marked*: nothing reached Stripe. The purchase stays `granting`,
//!    its lease expires, and another worker starts again from the top.
//! 2. *`grant_requested` is committed before the request leaves* ([`db::purchases::mark_grant_requested`]).
//!    So any later attempt knows a grant may exist and lists the customer's grants, adopting the one
//!    whose metadata carries this purchase id, before it may create one.
//! 3. *The request carries `creditd-grant-<purchase>-<generation>` as its Idempotency-Key.* Within
//!    Stripe's 24 hours a retry replays the first answer (or gets 409 while it still runs), so even
//!    a grant that is not listed yet cannot be created twice. After 24 hours the key is gone, but by
//!    then the grant is long visible to step 2.
//! 4. *The generation changes only after Stripe itself answered 500* (stored for the key and
//!    replayed forever). The request under the old key has then finished, so step 2 sees its grant
//!    if it made one.
//! 5. *Between Stripe's success and our commit*: step 2 adopts the grant on the next attempt.
//! 6. *After the commit*: the purchase is `granted` and no longer due. `credit_grant_id` is unique.
//! 7. *A lost lease*: every write but `mark_granted` requires the lease; `mark_granted` only ever
//!    records a grant that exists, and both holders can only find or replay the same grant.

use crate::db;
use crate::purchase::{Purchase, PurchaseStatus};
use crate::services::Services;
use crate::stripe::api;
use crate::stripe::types::{CreditGrant, Invoice};
use crate::stripe::{StripeError, StripeRequest};

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Granted {
        grant_id: String,
        adopted: bool,
    },
    Rejected(String),
    Failed(String),
    RetryScheduled(String),
    /// Funding finished: the purchase's invoice is open (or already paid or void).
    InvoiceReady {
        invoice_id: String,
        status: PurchaseStatus,
    },
    /// Another worker took the purchase over, or it left `granting`; nothing was written.
    LeaseLost,
}

/// Why an invoice cannot pay for a purchase.
#[derive(Debug, PartialEq, Eq)]
enum InvoiceCheck {
    NotPaidYet(String),
    Mismatch(String),
}

/// Runs one attempt at granting `purchase`, which `owner` has claimed.
pub async fn fulfil(
    services: &Services,
    purchase: &Purchase,
    owner: &str,
) -> anyhow::Result<Outcome> {
    let Some(invoice_id) = purchase.invoice_id.as_deref() else {
        return finish(
            services,
            purchase,
            owner,
            PurchaseStatus::Failed,
            "purchase has no invoice".into(),
        )
        .await;
    };
    let invoice: Invoice = match call(services, purchase, api::get_invoice(invoice_id)).await? {
        Ok(invoice) => invoice,
        Err(error) => return stripe_failed(services, purchase, owner, error).await,
    };
    match check_invoice(purchase, &invoice, services.livemode) {
        Ok(()) => {}
        Err(InvoiceCheck::Mismatch(reason)) => {
            return finish(services, purchase, owner, PurchaseStatus::Rejected, reason).await;
        }
        Err(InvoiceCheck::NotPaidYet(reason)) => {
            return retry(services, purchase, owner, reason, false).await;
        }
    }
    if purchase.grant_requested {
        let search = services
            .stripe
            .find_grant_for_purchase(&purchase.customer, &purchase.id)
            .await;
        match search {
            Ok(Some(grant)) => return granted(services, purchase, grant, true).await,
            Ok(None) => {}
            Err(error) => return stripe_failed(services, purchase, owner, error).await,
        }
    }
    if !db::purchases::mark_grant_requested(
        &services.db,
        &purchase.id,
        owner,
        services.policy.lease,
    )
    .await?
    {
        return Ok(Outcome::LeaseLost);
    }
    match call(services, purchase, api::create_grant(purchase)).await? {
        Ok(grant) => granted(services, purchase, grant, false).await,
        Err(error) if error.is_stored_server_error() => {
            let reason = format!(
                "Stripe stored a 500 for the grant request; next attempt uses a fresh key: {error}"
            );
            retry(services, purchase, owner, reason, true).await
        }
        Err(error) => stripe_failed(services, purchase, owner, error).await,
    }
}

/// Sends a request and logs it against the purchase. The outer error is the database's.
pub(crate) async fn call<T: serde::de::DeserializeOwned>(
    services: &Services,
    purchase: &Purchase,
    request: StripeRequest,
) -> anyhow::Result<Result<T, StripeError>> {
    let outcome = services.stripe.send(&request).await;
    db::calls::record(&services.db, &purchase.id, &request, &outcome).await?;
    Ok(outcome)
}

fn check_invoice(
    purchase: &Purchase,
    invoice: &Invoice,
    livemode: bool,
) -> Result<(), InvoiceCheck> {
    if invoice.livemode != livemode || invoice.livemode != purchase.livemode {
        return Err(InvoiceCheck::Mismatch(format!(
            "invoice livemode is {} but the purchase was made with a {} key",
            invoice.livemode,
            if purchase.livemode { "live" } else { "test" }
        )));
    }
    if invoice.customer != purchase.customer {
        return Err(InvoiceCheck::Mismatch(format!(
            "invoice customer {} is not the purchase customer {}",
            invoice.customer, purchase.customer
        )));
    }
    if !invoice.currency.eq_ignore_ascii_case(&purchase.currency) {
        return Err(InvoiceCheck::Mismatch(format!(
            "invoice currency {} is not the purchase currency {}",
            invoice.currency, purchase.currency
        )));
    }
    match invoice.status.as_deref() {
        Some("paid") => {}
        Some(status @ ("void" | "uncollectible")) => {
            return Err(InvoiceCheck::Mismatch(format!(
                "invoice is {status}, not paid"
            )));
        }
        other => {
            return Err(InvoiceCheck::NotPaidYet(format!(
                "invoice status is {}",
                other.unwrap_or("unknown")
            )));
        }
    }
    if invoice.amount_paid < purchase.amount {
        return Err(InvoiceCheck::Mismatch(format!(
            "invoice amount_paid {} is less than the purchase amount {}",
            invoice.amount_paid, purchase.amount
        )));
    }
    Ok(())
}

async fn granted(
    services: &Services,
    purchase: &Purchase,
    grant: CreditGrant,
    adopted: bool,
) -> anyhow::Result<Outcome> {
    match db::purchases::mark_granted(&services.db, &purchase.id, &grant.id).await? {
        Some(updated) => {
            let latency = updated
                .paid_at
                .zip(updated.granted_at)
                .map(|(paid, granted)| (granted - paid).as_seconds_f64());
            services.metrics.grant_created(latency);
            tracing::info!(purchase_id = %purchase.id, credit_grant_id = %grant.id, adopted, "purchase granted");
            Ok(Outcome::Granted {
                grant_id: grant.id,
                adopted,
            })
        }
        None => Ok(Outcome::LeaseLost),
    }
}

/// Transient failures are retried later; Stripe refusing for good fails the purchase.
pub(crate) async fn stripe_failed(
    services: &Services,
    purchase: &Purchase,
    owner: &str,
    error: StripeError,
) -> anyhow::Result<Outcome> {
    if error.is_transient() {
        retry(services, purchase, owner, error.to_string(), false).await
    } else {
        finish(
            services,
            purchase,
            owner,
            PurchaseStatus::Failed,
            error.to_string(),
        )
        .await
    }
}

/// Schedules another attempt, or gives up with `failed` once the attempts are spent.
pub(crate) async fn retry(
    services: &Services,
    purchase: &Purchase,
    owner: &str,
    reason: String,
    fresh_grant_key: bool,
) -> anyhow::Result<Outcome> {
    // An attempt that never reached Stripe is given back (see `lease`), so it cannot fail one.
    if purchase.attempts >= services.policy.max_attempts && crate::stripe::reach::reached() {
        let message = format!("gave up after {} attempts: {reason}", purchase.attempts);
        return finish(services, purchase, owner, PurchaseStatus::Failed, message).await;
    }
    let delay = services.policy.delay_after(purchase.attempts);
    tracing::warn!(purchase_id = %purchase.id, attempts = purchase.attempts, delay_ms = delay.as_millis() as u64, %reason, "purchase attempt will be retried");
    if db::purchases::retry_later(
        &services.db,
        purchase,
        owner,
        delay,
        &reason,
        fresh_grant_key,
    )
    .await?
    {
        Ok(Outcome::RetryScheduled(reason))
    } else {
        Ok(Outcome::LeaseLost)
    }
}

pub(crate) async fn finish(
    services: &Services,
    purchase: &Purchase,
    owner: &str,
    status: PurchaseStatus,
    reason: String,
) -> anyhow::Result<Outcome> {
    if !db::purchases::finish(&services.db, purchase, owner, status, &reason).await? {
        return Ok(Outcome::LeaseLost);
    }
    tracing::warn!(purchase_id = %purchase.id, status = status.as_str(), %reason, "purchase stopped");
    Ok(match status {
        PurchaseStatus::Rejected => Outcome::Rejected(reason),
        _ => Outcome::Failed(reason),
    })
}
