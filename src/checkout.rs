//! Funds a purchase through a Stripe Checkout Session: a hosted page where the customer pays,
//! after which Stripe creates a paid invoice carrying the purchase id and sends `invoice.paid`,
//! which fulfils the purchase through the usual path.
//!
//! Why a crash at any point cannot make a second session (a second page, a possible double
//! payment), with the same discipline as [`crate::funding`]:
//! 1. *`funding_requested` is committed before the session is created*; every later attempt pages
//!    through the customer's sessions for the one whose metadata names this purchase first.
//! 2. *The create carries `creditd-checkout-<purchase>`*, so within Stripe's 24 hours a retry
//!    replays the first session even before it is listed.
//! 3. *A stored 500 moves the key on only after two looks* that found nothing, the last one the
//!    settle time after the 500 (`db::unknown_writes`, as for the invoice).
//! 4. *The session id is stored as soon as it is known*; later attempts retrieve it by id and act
//!    on its status: open (waiting for the customer), complete (the invoice's `invoice.paid` does
//!    the rest), expired (the purchase is canceled, as `checkout.session.expired` would).

use crate::attempt::{Attempt, AttemptOutcome, AttemptResult, Lookup};
use crate::db;
use crate::db::unknown_writes::Write;
use crate::purchase::lifecycle::{self, Happening};
use crate::purchase::{CheckoutFunding, Purchase, PurchaseStatus};
use crate::services::Services;
use crate::stripe::api::checkout as requests;
use crate::stripe::types::CheckoutSession;

/// Moves a Checkout-funded `creating_invoice` purchase to `awaiting_payment` with its page's URL.
pub async fn advance(
    services: &Services,
    purchase: &Purchase,
    owner: &str,
    checkout: &CheckoutFunding,
) -> AttemptResult {
    let attempt = Attempt {
        services,
        purchase,
        owner,
    };
    let session = match &purchase.checkout_session_id {
        Some(id) => match attempt.call(requests::get_session(id)).await? {
            Ok(session) => session,
            Err(error) => return attempt.stripe_failed(error).await,
        },
        None => match find_or_create(&attempt, checkout).await? {
            Ok(session) => session,
            Err(outcome) => return Ok(outcome),
        },
    };
    let url = session.url.as_deref();
    if !db::checkout::set_session(&services.db, &purchase.id, owner, &session.id, url).await? {
        return Ok(AttemptOutcome::LeaseLost);
    }
    let decided = |happening| lifecycle::decide(purchase.status, false, happening).next;
    let next = match session.status.as_deref() {
        Some("expired") => decided(Happening::Voided).unwrap_or(purchase.status),
        // Open, or paid already: `invoice.paid` for the invoice it created fulfils it.
        _ => PurchaseStatus::AwaitingPayment,
    };
    if !db::work::invoice_ready(&services.db, &purchase.id, owner, next, None, false).await? {
        return Ok(AttemptOutcome::LeaseLost);
    }
    tracing::info!(purchase_id = %purchase.id, checkout_session_id = %session.id, status = next.as_str(), "checkout session ready");
    Ok(AttemptOutcome::InvoiceReady {
        invoice_id: session.id,
        status: next,
    })
}

async fn find_or_create(
    attempt: &Attempt<'_>,
    checkout: &CheckoutFunding,
) -> anyhow::Result<Result<CheckoutSession, AttemptOutcome>> {
    let (services, purchase) = (attempt.services, attempt.purchase);
    if purchase.funding_requested {
        match find_session(attempt).await? {
            Lookup::Found(session) => return Ok(Ok(*session)),
            Lookup::Ended(outcome) => return Ok(Err(outcome)),
            Lookup::NotFound => {}
        }
    }
    let generation =
        match crate::funding::key_generation_for_create(attempt, "the Checkout Session").await? {
            Ok(generation) => generation,
            Err(outcome) => return Ok(Err(outcome)),
        };
    let request = requests::create_session(purchase, checkout, generation);
    match attempt.call::<CheckoutSession>(request).await? {
        Ok(session) => Ok(Ok(session)),
        Err(error) if error.is_stored_server_error() => {
            let (db, id, owner) = (&services.db, &purchase.id, attempt.owner);
            if !db::unknown_writes::note_unknown(db, id, owner, Write::Funding).await? {
                return Ok(Err(AttemptOutcome::LeaseLost));
            }
            let reason = format!("Stripe stored a 500 creating the Checkout Session: {error}");
            Ok(Err(attempt.retry(reason).await?))
        }
        Err(error) => Ok(Err(attempt.stripe_failed(error).await?)),
    }
}

/// Pages through the customer's sessions for the one whose metadata names this purchase.
async fn find_session(attempt: &Attempt<'_>) -> anyhow::Result<Lookup<CheckoutSession>> {
    let purchase = attempt.purchase;
    let page = |cursor: Option<&str>| requests::list_sessions(&purchase.customer, cursor);
    let ours = |session: &CheckoutSession| {
        session
            .metadata
            .get("creditd_purchase_id")
            .map(String::as_str)
            == Some(purchase.id.as_str())
    };
    attempt.find_in_pages(page, ours).await
}
