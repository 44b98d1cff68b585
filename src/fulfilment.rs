//! The one function that turns a paid purchase into exactly one credit grant.
//!
//! Every route to a grant (webhook, re-sync, replay, sweeper, admin retry) only makes the purchase
//! due (`status = 'granting'`, decided by [`crate::purchase::lifecycle::decide`]); a worker that
//! holds the purchase's lease then runs [`fulfil`]. Why a crash at any line can neither grant
//! twice nor lose a paid purchase:
//!
//! 1. *Before the grant request is marked*: nothing reached Stripe. The purchase stays `granting`,
//!    its lease expires, and another worker starts again from the top.
//! 2. *`grant_requested` is committed before the request leaves* ([`db::work::mark_grant_requested`]).
//!    So any later attempt knows a grant may exist and pages through the customer's grants,
//!    adopting the one whose metadata carries this purchase id (voided or not), before it may
//!    create one. The same statement fixes the body (an `expires_after_days` expiry), so every
//!    request under one key is identical.
//! 3. *The request carries `creditd-grant-<purchase>-<generation>` as its Idempotency-Key.* Within
//!    Stripe's 24 hours a retry replays the first answer (or gets 409 while it still runs), so even
//!    a grant that is not listed yet cannot be created twice. After 24 hours the key is gone, but by
//!    then the grant is long visible to step 2.
//! 4. *The generation changes only after Stripe itself answered 500* (stored for the key and
//!    replayed forever), and only after two looks that found nothing, the last one at least the
//!    settle time (60 s by default) after the 500 ([`db::unknown_writes`]), so a grant list that
//!    lags behind the create cannot make a second grant. The 500 is noted before the attempt ends;
//!    a crash before that re-sends the old key, which replays the 500, which is then noted.
//! 5. *Between Stripe's success and our commit*: step 2 adopts the grant on the next attempt.
//! 6. *After the commit*: the purchase is `granted` and no longer due. `credit_grant_id` is unique.
//! 7. *A lost lease*: every write but `mark_granted` requires the lease; `mark_granted` only ever
//!    records a grant that exists, and both holders can only find or replay the same grant.
//!
//! Money's effect is never lost either: a paid invoice that cannot be granted (it does not cover
//! the purchase, its fixed expiry passed before payment, Stripe refused) ends `rejected` or
//! `failed` with `paid_at` set, which the "paid without credits" gauge counts and alerts on.

use std::time::Duration;

use crate::attempt::{Attempt, AttemptOutcome, AttemptResult, Lookup};
use crate::db;
use crate::db::unknown_writes::{AfterLookup, Write};
use crate::purchase::{CreditSpec, Purchase, PurchaseStatus, Settlement};
use crate::reversal;
use crate::services::Services;
use crate::stripe::StripeError;
use crate::stripe::api;
use crate::stripe::types::{CreditGrant, Invoice};

/// A grant must be usable for at least this long after it is created, or it is not created.
const MIN_GRANT_LIFETIME_SECS: i64 = 60;

/// Why an invoice cannot pay for a purchase.
#[derive(Debug, PartialEq, Eq)]
enum InvoiceCheck {
    NotPaidYet(String),
    Mismatch(String),
}

/// Runs one attempt at granting `purchase`, which `owner` has claimed.
pub async fn fulfil(services: &Services, purchase: &Purchase, owner: &str) -> AttemptResult {
    let attempt = Attempt {
        services,
        purchase,
        owner,
    };
    let Some(invoice_id) = purchase.invoice_id.as_ref() else {
        return attempt
            .finish(
                PurchaseStatus::Failed,
                "purchase has no invoice".into(),
                None,
            )
            .await;
    };
    let invoice: Invoice = match attempt.call(api::get_invoice(invoice_id)).await? {
        Ok(invoice) => invoice,
        Err(error) => return attempt.stripe_failed(error).await,
    };
    let settlement = invoice.settlement();
    match check_invoice(purchase, &invoice, services.livemode) {
        Ok(()) => {}
        Err(InvoiceCheck::Mismatch(reason)) => {
            let rejected = PurchaseStatus::Rejected;
            return attempt.finish(rejected, reason, Some(&settlement)).await;
        }
        Err(InvoiceCheck::NotPaidYet(reason)) => return attempt.retry(reason).await,
    }
    // How the invoice was paid, so a later refund or dispute finds this purchase in one lookup.
    let reversals_due = match reversal::link_invoice_payments(&attempt, invoice_id.as_str()).await?
    {
        Ok(due) => due,
        Err(error) => return attempt.stripe_failed(error).await,
    };
    if purchase.grant_requested {
        match find_grant(&attempt).await? {
            Lookup::Found(grant) => return granted(&attempt, *grant, true, &settlement).await,
            Lookup::Ended(outcome) => return Ok(outcome),
            Lookup::NotFound => {}
        }
        if purchase.grant_unknown_since.is_some() {
            let settle = services.policy.unknown_outcome_settle;
            match db::unknown_writes::note_lookup(
                &services.db,
                &purchase.id,
                owner,
                Write::Grant,
                settle,
            )
            .await?
            {
                None => return Ok(AttemptOutcome::LeaseLost),
                Some(AfterLookup::LookAgainIn(delay)) => {
                    let reason = "Stripe stored a 500 for the grant request; looking for the grant again before using a new key";
                    return attempt
                        .wait(delay.max(Duration::from_millis(100)), reason.into())
                        .await;
                }
                Some(AfterLookup::NewKey(_)) => {}
            }
        }
    } else if let Some(reason) = dead_on_arrival(&purchase.credit, chrono::Utc::now().timestamp()) {
        return attempt
            .finish(PurchaseStatus::Rejected, reason, Some(&settlement))
            .await;
    }
    let grant_value = if purchase.grant_requested {
        purchase.grant_value.unwrap_or(purchase.credit.0.value)
    } else {
        match value_before_grant(&attempt, reversals_due).await? {
            Ok(Some(0)) => {
                let reason = "the payment was refunded or disputed in full before the grant; no grant was created";
                return attempt
                    .finish(PurchaseStatus::Reversed, reason.into(), Some(&settlement))
                    .await;
            }
            Ok(Some(value)) => value,
            Ok(None) => return Ok(AttemptOutcome::LeaseLost),
            Err(error) => return attempt.stripe_failed(error).await,
        }
    };
    let credit = &purchase.credit.0;
    let Some(marked) = db::work::mark_grant_requested(
        &services.db,
        &purchase.id,
        owner,
        services.policy.lease,
        credit.expires_after_days,
        grant_value,
    )
    .await?
    else {
        return Ok(AttemptOutcome::LeaseLost);
    };
    match attempt.call(api::create_grant(&marked)).await? {
        Ok(grant) => granted(&attempt, grant, false, &settlement).await,
        Err(error) if error.is_stored_server_error() => {
            db::unknown_writes::note_unknown(&services.db, &purchase.id, owner, Write::Grant)
                .await?;
            let reason = format!(
                "Stripe stored a 500 for the grant request; looking for the grant before a new key: {error}"
            );
            attempt.retry(reason).await
        }
        Err(error) => attempt.stripe_failed(error).await,
    }
}

/// The value of the grant about to be created: the credit's value less what refunds and disputes
/// before it took ([`reversal::account_before_grant`]). None if the lease was lost.
async fn value_before_grant(
    attempt: &Attempt<'_>,
    reversals_due: bool,
) -> anyhow::Result<Result<Option<i64>, StripeError>> {
    let services = attempt.services;
    let purchase = attempt.purchase;
    if reversals_due || purchase.reversal_sync_due {
        let paid = reversal::amount_paid(services, purchase).await?;
        return reversal::account_before_grant(attempt, paid).await;
    }
    let moves = db::grant_moves::moves_of(&services.db, &purchase.id).await?;
    Ok(Ok(Some(reversal::remaining_before_grant(
        purchase.credit.0.value,
        &moves,
    ))))
}

/// Pages through the customer's grants for the one carrying this purchase id, voided or not (a
/// replacement made after a refund carries the id too, but is never the purchase's first grant).
async fn find_grant(attempt: &Attempt<'_>) -> anyhow::Result<Lookup<CreditGrant>> {
    let purchase = attempt.purchase;
    let page = |cursor: Option<&str>| api::list_grants(&purchase.customer, cursor);
    let ours = |grant: &CreditGrant| {
        grant.purchase_id_in_metadata() == Some(purchase.id.as_str()) && !grant.is_replacement()
    };
    attempt.find_in_pages(page, ours).await
}

/// A fixed expiry that has passed (or nearly) by grant time: Stripe would refuse the grant or
/// create it already dead. `expires_after_days` never is.
fn dead_on_arrival(credit: &CreditSpec, now: i64) -> Option<String> {
    let expires_at = credit.expires_at?;
    (expires_at <= now + MIN_GRANT_LIFETIME_SECS).then(|| {
        format!(
            "credit.expires_at {expires_at} passed before the invoice was paid (granting at {now}); \
             no grant was created"
        )
    })
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
    if invoice.customer != purchase.customer.as_str() {
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
        Some("void") => {
            return Err(InvoiceCheck::Mismatch("invoice is void, not paid".into()));
        }
        // `open` and `uncollectible` may still be paid.
        other => {
            return Err(InvoiceCheck::NotPaidYet(format!(
                "invoice status is {}",
                other.unwrap_or("unknown")
            )));
        }
    }
    // The customer's balance, discounts and out-of-band payment never reject a paid invoice: what
    // must cover the purchase is the invoice's amount before them.
    let gross = invoice.gross();
    if gross < purchase.amount {
        return Err(InvoiceCheck::Mismatch(format!(
            "invoice amount before balance and discounts ({gross}) is less than the purchase amount {}",
            purchase.amount
        )));
    }
    Ok(())
}

async fn granted(
    attempt: &Attempt<'_>,
    grant: CreditGrant,
    adopted: bool,
    settlement: &Settlement,
) -> AttemptResult {
    let services = attempt.services;
    let purchase = attempt.purchase;
    let marked = db::work::mark_granted(
        &services.db,
        &purchase.id,
        &grant.id,
        grant.voided_at,
        settlement,
    )
    .await?;
    let Some(updated) = marked else {
        return Ok(AttemptOutcome::LeaseLost);
    };
    let latency = updated
        .paid_at
        .zip(updated.granted_at)
        .map(|(paid, granted)| (granted - paid).as_seconds_f64());
    services.metrics.grant_created(latency);
    tracing::info!(purchase_id = %purchase.id, credit_grant_id = %grant.id, adopted, voided = grant.voided_at.is_some(), "purchase granted");
    Ok(AttemptOutcome::Granted {
        grant_id: grant.id,
        adopted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::purchase::Applicability;

    fn credit(expires_at: Option<i64>, after_days: Option<i64>) -> CreditSpec {
        CreditSpec {
            value: 100,
            currency: Currency::parse("usd").unwrap(),
            name: "c".into(),
            category: "paid".into(),
            priority: None,
            effective_at: None,
            expires_at,
            expires_after_days: after_days,
            applicability: Applicability::PriceType {
                price_type: "metered".into(),
            },
        }
    }

    #[test]
    fn a_fixed_expiry_that_passed_is_dead_on_arrival() {
        assert!(dead_on_arrival(&credit(Some(1_000), None), 2_000).is_some());
        assert!(dead_on_arrival(&credit(Some(2_030), None), 2_000).is_some());
        assert!(dead_on_arrival(&credit(Some(5_000), None), 2_000).is_none());
        assert!(dead_on_arrival(&credit(None, Some(30)), 2_000).is_none());
    }
}
