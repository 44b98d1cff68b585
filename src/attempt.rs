//! One worker attempt at a purchase: the Stripe calls it makes (each logged against the purchase)
//! and the ways it can end. Fulfilment and funding are siblings that both build on this.

use std::time::Duration;

use crate::db;
use crate::ids::PurchaseId;
use crate::purchase::{Purchase, PurchaseStatus, Settlement};
use crate::services::Services;
use crate::stripe::types::{List, Listed};
use crate::stripe::{StripeError, StripeRequest};
use serde::de::DeserializeOwned;

/// Sends a request made for a purchase and logs it against the purchase, so the explain view
/// misses no call. Every Stripe call that belongs to a purchase goes through here; the outer
/// error is the log's.
pub async fn send_and_record<T: DeserializeOwned>(
    services: &Services,
    purchase_id: &PurchaseId,
    request: &StripeRequest,
) -> sqlx::Result<Result<T, StripeError>> {
    let outcome = services.stripe.send(request).await;
    db::calls::record(&services.db, purchase_id, request, &outcome).await?;
    Ok(outcome)
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
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
    /// A reversing pass ended with the purchase in this status.
    Reversed(PurchaseStatus),
    /// Another worker took the purchase over, or it left its status; nothing was written.
    LeaseLost,
}

/// What paging through a Stripe list for one object found.
pub enum Lookup<T> {
    Found(Box<T>),
    NotFound,
    /// Stripe failed; the attempt already ended with this outcome.
    Ended(AttemptOutcome),
}

/// A claimed purchase and the worker that holds its lease.
pub struct Attempt<'a> {
    pub services: &'a Services,
    pub purchase: &'a Purchase,
    pub owner: &'a str,
}

/// The outer error is the database's: the lease then runs out and another attempt starts over.
pub type AttemptResult = anyhow::Result<AttemptOutcome>;

impl Attempt<'_> {
    /// Sends a request for this attempt's purchase; see [`send_and_record`].
    pub async fn call<T: DeserializeOwned>(
        &self,
        request: StripeRequest,
    ) -> anyhow::Result<Result<T, StripeError>> {
        Ok(send_and_record(self.services, &self.purchase.id, &request).await?)
    }

    /// Pages through a Stripe list (every page logged) for the first object `wanted` accepts.
    pub async fn find_in_pages<T: DeserializeOwned + Listed>(
        &self,
        page: impl Fn(Option<&str>) -> StripeRequest,
        wanted: impl Fn(&T) -> bool,
    ) -> anyhow::Result<Lookup<T>> {
        Ok(match self.search_pages(page, wanted).await? {
            Ok(Some(found)) => Lookup::Found(Box::new(found)),
            Ok(None) => Lookup::NotFound,
            Err(error) => Lookup::Ended(self.stripe_failed(error).await?),
        })
    }

    /// [`Attempt::find_in_pages`], leaving a Stripe failure to the caller.
    pub async fn search_pages<T: DeserializeOwned + Listed>(
        &self,
        page: impl Fn(Option<&str>) -> StripeRequest,
        wanted: impl Fn(&T) -> bool,
    ) -> anyhow::Result<Result<Option<T>, StripeError>> {
        let mut cursor: Option<String> = None;
        loop {
            let list: List<T> = match self.call(page(cursor.as_deref())).await? {
                Ok(list) => list,
                Err(error) => return Ok(Err(error)),
            };
            let has_more = list.has_more;
            let last = list.data.last().map(|object| object.id().to_owned());
            if let Some(found) = list.data.into_iter().find(|object| wanted(object)) {
                return Ok(Ok(Some(found)));
            }
            match (has_more, last) {
                (true, Some(last)) => cursor = Some(last),
                _ => return Ok(Ok(None)),
            }
        }
    }

    /// Transient failures are retried later; Stripe refusing for good fails the purchase.
    pub async fn stripe_failed(&self, error: StripeError) -> AttemptResult {
        if error.is_transient() {
            self.retry(error.to_string()).await
        } else {
            self.finish(PurchaseStatus::Failed, error.to_string(), None)
                .await
        }
    }

    /// Schedules another attempt, or gives up with `failed` once the attempts are spent.
    pub async fn retry(&self, reason: String) -> AttemptResult {
        let services = self.services;
        let purchase = self.purchase;
        // An attempt that never reached Stripe is given back (see `lease`), so it cannot fail one.
        if purchase.attempts >= services.policy.max_attempts && crate::stripe::reach::reached() {
            let message = format!("gave up after {} attempts: {reason}", purchase.attempts);
            return self.finish(PurchaseStatus::Failed, message, None).await;
        }
        let delay = services.policy.delay_after(purchase.attempts);
        self.schedule(delay, reason, true).await
    }

    /// Schedules the next attempt after `delay` without counting this one: it only waited.
    pub async fn wait(&self, delay: Duration, reason: String) -> AttemptResult {
        self.schedule(delay, reason, false).await
    }

    async fn schedule(&self, delay: Duration, reason: String, counts: bool) -> AttemptResult {
        let purchase = self.purchase;
        tracing::warn!(purchase_id = %purchase.id, attempts = purchase.attempts, delay_ms = delay.as_millis() as u64, %reason, "purchase attempt will be retried");
        let scheduled = db::work::retry_later(
            &self.services.db,
            purchase,
            self.owner,
            delay,
            &reason,
            counts,
        )
        .await?;
        Ok(if scheduled {
            AttemptOutcome::RetryScheduled(reason)
        } else {
            AttemptOutcome::LeaseLost
        })
    }

    /// Ends the purchase `rejected` or `failed`, if this worker still holds it.
    pub async fn finish(
        &self,
        status: PurchaseStatus,
        reason: String,
        settlement: Option<&Settlement>,
    ) -> AttemptResult {
        let finished = db::work::finish(
            &self.services.db,
            self.purchase,
            self.owner,
            status,
            &reason,
            settlement,
        )
        .await?;
        if !finished {
            return Ok(AttemptOutcome::LeaseLost);
        }
        tracing::warn!(purchase_id = %self.purchase.id, status = status.as_str(), %reason, "purchase stopped");
        Ok(match status {
            PurchaseStatus::Rejected => AttemptOutcome::Rejected(reason),
            PurchaseStatus::Reversed => AttemptOutcome::Reversed(status),
            _ => AttemptOutcome::Failed(reason),
        })
    }
}
