//! The resolver: finds the purchase behind a refund or dispute whose payment no purchase had
//! linked yet (an event that arrived before `invoice.paid` was fulfilled, or a payment creditd
//! never saw), by asking Stripe which invoice the payment paid.

use std::time::Duration;

use crate::db;
use crate::purchase::lifecycle::Outcome;
use crate::services::Services;
use crate::stripe::StripeError;
use crate::stripe::api::reversal as api;
use crate::stripe::types::{InvoicePayment, List};

/// How long a claimed event is left to its resolver before it is tried again (its lease).
const HOLD: Duration = Duration::from_secs(15);
/// Events resolved per call, so a backlog never starves purchase work.
const BATCH: usize = 20;

/// What resolving one event found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Linked(Outcome),
    Unmatched,
    /// Stripe failed; tried again later.
    Later(String),
}

/// Resolves due events, up to a batch. Returns what each one found.
pub async fn resolve_due(services: &Services) -> anyhow::Result<Vec<Resolved>> {
    let mut resolved = Vec::new();
    while resolved.len() < BATCH {
        let Some(event) = db::reversals::claim_unlinked(&services.db, HOLD).await? else {
            break;
        };
        let outcome = match find_invoice_payment(services, &event).await {
            Ok(Some(payment)) => {
                match db::reversals::purchase_of_invoice(&services.db, &payment.invoice).await? {
                    Some(purchase_id) => {
                        let mut connection = services.db.acquire().await?;
                        let outcome = db::reversals::resolve_linked(
                            &mut connection,
                            &event.event_id,
                            &purchase_id,
                            &payment,
                        )
                        .await?;
                        services.wake.notify_one();
                        Resolved::Linked(outcome)
                    }
                    None => unmatched(services, &event.event_id).await?,
                }
            }
            Ok(None) => unmatched(services, &event.event_id).await?,
            Err(error) if !error.is_transient() => unmatched(services, &event.event_id).await?,
            Err(error) => {
                let reason = error.to_string();
                db::reversals::note_unlinked_error(&services.db, &event.event_id, &reason).await?;
                Resolved::Later(reason)
            }
        };
        tracing::info!(event_id = %event.event_id, ?outcome, "resolved a refund or dispute event");
        resolved.push(outcome);
    }
    Ok(resolved)
}

async fn unmatched(services: &Services, event_id: &str) -> anyhow::Result<Resolved> {
    let mut connection = services.db.acquire().await?;
    db::reversals::resolve_unmatched(&mut connection, event_id).await?;
    Ok(Resolved::Unmatched)
}

/// The InvoicePayment made by the event's payment: by its PaymentIntent, or the Charge's.
async fn find_invoice_payment(
    services: &Services,
    event: &db::reversals::UnlinkedEvent,
) -> Result<Option<InvoicePayment>, StripeError> {
    #[derive(serde::Deserialize)]
    struct Charge {
        #[serde(default)]
        payment_intent: Option<String>,
    }
    let payment_intent = match (&event.payment_intent, &event.charge) {
        (Some(pi), _) => pi.clone(),
        (None, Some(charge)) => {
            let charge: Charge = services.stripe.send(&api::get_charge(charge)).await?;
            match charge.payment_intent {
                Some(pi) => pi,
                None => return Ok(None),
            }
        }
        (None, None) => return Ok(None),
    };
    let payments: List<InvoicePayment> = services
        .stripe
        .send(&api::invoice_payments_of_intent(&payment_intent))
        .await?;
    Ok(payments.data.into_iter().next())
}
