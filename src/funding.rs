//! Funds a purchase by creating, filling and finalizing its one-off Stripe invoice, resumably.
//!
//! Why a crash, a lost answer or an admin retry at any point cannot make a second invoice (a
//! possible double charge) nor leave the purchase without one:
//!
//! 1. *`funding_requested` is committed before the invoice is created*
//!    ([`db::work::mark_funding_requested`]). Every attempt that may follow an earlier one therefore
//!    pages through all of the customer's invoices for the one whose metadata names this purchase
//!    before it may create one, whatever its attempt count (an admin retry resets it).
//! 2. *Every write carries a key derived from the purchase, the step and a generation*, so within
//!    Stripe's 24 hours a retry replays the first answer instead of writing again.
//! 3. *The invoice id is stored as soon as Stripe returns it (or the lookup finds it).* From then on
//!    each attempt retrieves the invoice by id, which Stripe answers from its current state, and
//!    resumes where it stands: a draft without creditd's line gets the line, a draft with it is
//!    finalized, an open invoice ends funding. A found draft is resumed, never abandoned.
//! 4. *A stored 500 follows the grant's rule.* For the invoice itself (found only through a list,
//!    which may lag), the generation changes only after two looks that found nothing, the last one
//!    the settle time after the 500. For the line and the finalization, the retrieved invoice is
//!    the look: it shows the line or the finalization if the failed request made them.

use crate::attempt::{Attempt, AttemptOutcome, AttemptResult, Lookup};
use crate::db;
use crate::db::unknown_writes::{AfterLookup, Write};
use crate::ids::InvoiceId;
use crate::purchase::lifecycle::{self, Happening};
use crate::purchase::{Purchase, PurchaseStatus};
use crate::services::Services;
use crate::stripe::StripeError;
use crate::stripe::api::funding as requests;
use crate::stripe::types::{Invoice, InvoiceItem};

/// Moves a `creating_invoice` purchase as far as it can go: to `awaiting_payment` once the invoice
/// is open, or further when Stripe already shows it paid or voided.
pub async fn advance(services: &Services, purchase: &Purchase, owner: &str) -> AttemptResult {
    let checkout = purchase.funding.as_ref().and_then(|f| f.0.checkout.clone());
    if let Some(checkout) = checkout {
        return crate::checkout::advance(services, purchase, owner, &checkout).await;
    }
    let attempt = Attempt {
        services,
        purchase,
        owner,
    };
    let invoice_id = match &purchase.invoice_id {
        Some(id) => id.clone(),
        None => match find_or_create_invoice(&attempt).await? {
            Step::Done(invoice) => {
                let id = InvoiceId::parse(&invoice.id)?;
                if !db::work::set_invoice(&services.db, &purchase.id, owner, &id).await? {
                    return Ok(AttemptOutcome::LeaseLost);
                }
                id
            }
            Step::Ended(outcome) => return Ok(outcome),
        },
    };
    let invoice: Invoice = match attempt.call(requests::get_invoice(&invoice_id)).await? {
        Ok(invoice) => invoice,
        Err(error) => return attempt.stripe_failed(error).await,
    };
    let invoice = if invoice.status.as_deref() == Some("draft") {
        match fill_and_finalize(&attempt, &invoice).await? {
            Step::Done(invoice) => *invoice,
            Step::Ended(outcome) => return Ok(outcome),
        }
    } else {
        invoice
    };
    let pays_now = purchase
        .funding
        .as_ref()
        .is_some_and(|f| f.0.pay_off_session);
    let invoice = if pays_now && invoice.status.as_deref() == Some("open") {
        match charge_saved_card(&attempt, &invoice).await? {
            Step::Done(invoice) => *invoice,
            Step::Ended(outcome) => return Ok(outcome),
        }
    } else {
        invoice
    };
    let opened = |uncollectible| (PurchaseStatus::AwaitingPayment, uncollectible);
    let decided = |happening| lifecycle::decide(purchase.status, false, happening).next;
    let (next, uncollectible) = match invoice.status.as_deref() {
        Some("open") => opened(false),
        Some("uncollectible") => opened(true),
        Some("paid") => (decided(Happening::Paid).unwrap_or(purchase.status), false),
        Some("void") => (decided(Happening::Voided).unwrap_or(purchase.status), false),
        other => {
            let state = other.unwrap_or("in an unknown state");
            return attempt
                .retry(format!("invoice {invoice_id} is {state}"))
                .await;
        }
    };
    let url = invoice.hosted_invoice_url.as_deref();
    if !db::work::invoice_ready(&services.db, &purchase.id, owner, next, url, uncollectible).await?
    {
        return Ok(AttemptOutcome::LeaseLost);
    }
    tracing::info!(purchase_id = %purchase.id, %invoice_id, status = next.as_str(), "purchase invoice ready");
    if next == PurchaseStatus::Granting {
        services.wake.notify_one();
    }
    Ok(AttemptOutcome::InvoiceReady {
        invoice_id: invoice_id.to_string(),
        status: next,
    })
}

/// A funding step either produced the invoice or ended the attempt.
enum Step {
    Done(Box<Invoice>),
    Ended(AttemptOutcome),
}

async fn find_or_create_invoice(attempt: &Attempt<'_>) -> anyhow::Result<Step> {
    let purchase = attempt.purchase;
    if purchase.funding_requested {
        match find_invoice(attempt).await? {
            Lookup::Found(invoice) => return Ok(Step::Done(invoice)),
            Lookup::Ended(outcome) => return Ok(Step::Ended(outcome)),
            Lookup::NotFound => {}
        }
    }
    let generation = match key_generation_for_create(attempt, "the invoice").await? {
        Ok(generation) => generation,
        Err(outcome) => return Ok(Step::Ended(outcome)),
    };
    let request = requests::create_invoice(purchase, generation);
    finish_step(
        attempt,
        attempt.call(request).await?,
        StepKind::CreateInvoice,
    )
    .await
}

/// Which idempotency-key generation creating the funding object (`what`) may use, once a lookup
/// found no such object; or why the attempt ends instead.
///
/// The first create is written ahead (`funding_requested`) so a crash after it is followed by a
/// lookup, never by a blind second create. After Stripe stored a 500 for the key, the same key
/// would only replay that 500, so a new generation is used, but only after the settle time has
/// passed with lookups still finding nothing (`db::unknown_writes`). Shared by invoice and
/// Checkout funding, whose crash arguments are the same.
pub(crate) async fn key_generation_for_create(
    attempt: &Attempt<'_>,
    what: &str,
) -> anyhow::Result<Result<i32, AttemptOutcome>> {
    let (services, purchase) = (attempt.services, attempt.purchase);
    if !purchase.funding_requested {
        let marked =
            db::work::mark_funding_requested(&services.db, &purchase.id, attempt.owner).await?;
        return Ok(if marked {
            Ok(purchase.funding_key_generation)
        } else {
            Err(AttemptOutcome::LeaseLost)
        });
    }
    if purchase.funding_unknown_since.is_none() {
        return Ok(Ok(purchase.funding_key_generation));
    }
    let settle = services.policy.unknown_outcome_settle;
    let after = db::unknown_writes::note_lookup(
        &services.db,
        &purchase.id,
        attempt.owner,
        Write::Funding,
        settle,
    )
    .await?;
    Ok(match after {
        None => Err(AttemptOutcome::LeaseLost),
        Some(AfterLookup::LookAgainIn(delay)) => {
            let reason = format!(
                "Stripe stored a 500 creating {what}; looking for it again before using a new key"
            );
            let delay = delay.max(std::time::Duration::from_millis(100));
            Err(attempt.wait(delay, reason).await?)
        }
        Some(AfterLookup::NewKey(next)) => Ok(next),
    })
}

/// Pages through all of the customer's invoices for the one whose metadata names this purchase.
async fn find_invoice(attempt: &Attempt<'_>) -> anyhow::Result<Lookup<Invoice>> {
    let purchase = attempt.purchase;
    let page = |cursor: Option<&str>| requests::list_invoices(&purchase.customer, cursor);
    let ours = |invoice: &Invoice| invoice.purchase_id_in_metadata() == Some(purchase.id.as_str());
    attempt.find_in_pages(page, ours).await
}

/// Adds creditd's line to a draft that lacks it, then finalizes it.
async fn fill_and_finalize(attempt: &Attempt<'_>, invoice: &Invoice) -> anyhow::Result<Step> {
    let purchase = attempt.purchase;
    if !invoice.currency.eq_ignore_ascii_case(&purchase.currency) {
        let reason = format!(
            "invoice currency {} is not the purchase currency {}",
            invoice.currency, purchase.currency
        );
        return Ok(Step::Ended(attempt.stripe_failed(mismatch(reason)).await?));
    }
    let generation = purchase.funding_key_generation;
    if !invoice.has_line_for(&purchase.id) {
        if invoice.line_count() > 0 {
            let reason = format!(
                "draft invoice {} has lines that creditd did not add; not finalizing it",
                invoice.id
            );
            return Ok(Step::Ended(attempt.stripe_failed(mismatch(reason)).await?));
        }
        let added = attempt
            .call::<InvoiceItem>(requests::add_item(purchase, &invoice.id, generation))
            .await?;
        if let Err(error) = added {
            return finish_step(attempt, Err(error), StepKind::OnKnownInvoice).await;
        }
    }
    let request = requests::finalize(purchase, &invoice.id, generation);
    finish_step(
        attempt,
        attempt.call(request).await?,
        StepKind::OnKnownInvoice,
    )
    .await
}

/// A top-up's open invoice is charged to the saved card now (`off_session`). A decline, or a bank
/// that wants the customer to authenticate, ends the top-up `failed` with Stripe's reason (and the
/// hosted page where the customer can still pay); the invoice stays open, and paying it later
/// still grants. The key is derived from the purchase: after a crash, the retrieved invoice shows
/// the payment, or the retry replays Stripe's first answer.
async fn charge_saved_card(attempt: &Attempt<'_>, invoice: &Invoice) -> anyhow::Result<Step> {
    let purchase = attempt.purchase;
    let generation = purchase.funding_key_generation;
    let request = requests::pay_off_session(purchase, &invoice.id, generation);
    let error = match attempt.call::<Invoice>(request).await? {
        Ok(paid) => return Ok(Step::Done(Box::new(paid))),
        Err(error) => error,
    };
    let StripeError::Api {
        status: 402,
        code,
        message,
        ..
    } = &error
    else {
        return finish_step(attempt, Err(error), StepKind::OnKnownInvoice).await;
    };
    let url = invoice.hosted_invoice_url.as_deref();
    let reason = match (code.as_deref(), url) {
        (Some("authentication_required"), Some(url)) => format!(
            "the customer's bank asks them to authenticate the payment; they can pay at {url}"
        ),
        _ => format!("the saved card was declined: {message}"),
    };
    let (db, id, owner) = (&attempt.services.db, &purchase.id, attempt.owner);
    if !db::topups::note_hosted_url(db, id, owner, url).await? {
        return Ok(Step::Ended(AttemptOutcome::LeaseLost));
    }
    Ok(Step::Ended(
        attempt.finish(PurchaseStatus::Failed, reason, None).await?,
    ))
}

/// Which funding write a step made.
enum StepKind {
    /// Creating the invoice: found again only through a list, which may lag.
    CreateInvoice,
    /// Adding the line or finalizing: the invoice, retrieved by id, shows their effect.
    OnKnownInvoice,
}

/// Ends a funding step. After a stored 500 the key generation must change before the step can be
/// tried again: for the invoice itself only after the lookups ([`Write::Funding`]); for the line
/// and the finalization at once, because the next attempt retrieves the invoice by id first.
async fn finish_step(
    attempt: &Attempt<'_>,
    answer: Result<Invoice, StripeError>,
    kind: StepKind,
) -> anyhow::Result<Step> {
    let error = match answer {
        Ok(invoice) => return Ok(Step::Done(Box::new(invoice))),
        Err(error) => error,
    };
    if !error.is_stored_server_error() {
        return Ok(Step::Ended(attempt.stripe_failed(error).await?));
    }
    let (db, id, owner) = (&attempt.services.db, &attempt.purchase.id, attempt.owner);
    let noted = match kind {
        StepKind::CreateInvoice => {
            db::unknown_writes::note_unknown(db, id, owner, Write::Funding).await?
        }
        StepKind::OnKnownInvoice => db::work::bump_funding_key(db, id, owner).await?,
    };
    if !noted {
        return Ok(Step::Ended(AttemptOutcome::LeaseLost));
    }
    let reason = format!("Stripe stored a 500 for a funding step: {error}");
    Ok(Step::Ended(attempt.retry(reason).await?))
}

fn mismatch(message: String) -> StripeError {
    StripeError::Api {
        status: 400,
        error_type: "creditd_mismatch".into(),
        code: None,
        message,
        param: None,
    }
}

/// Stripe's own words, which the API passes on to the client.
pub fn stripe_message(error: &StripeError) -> String {
    match error {
        StripeError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
