//! Holding a claimed purchase while its attempt runs.
//!
//! The lease is renewed by a heartbeat, so its length bounds how long a dead process's work
//! waits, not how long an attempt may take. The attempt runs in a task of its own: if it panics
//! (a bug, or input nobody foresaw), the worker lives on, the purchase is retried later with the
//! panic as its error, and `creditd_worker_panics_total` counts it. An attempt that never
//! reached Stripe gives back the attempt its claim counted.

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use tokio_util::task::AbortOnDropHandle;

use crate::attempt::{Attempt, AttemptOutcome};
use crate::db;
use crate::purchase::Purchase;
use crate::services::Services;
use crate::stripe::reach;

/// How often the heartbeat renews a lease: five chances before it would expire.
pub fn heartbeat_interval(lease: Duration) -> Duration {
    (lease / 5).max(Duration::from_millis(100))
}

/// Runs `attempt` on a purchase `owner` has claimed, renewing the lease until it ends.
pub async fn run_held<F, Fut>(
    services: &Services,
    purchase: &Purchase,
    owner: &str,
    attempt: F,
) -> Option<AttemptOutcome>
where
    F: FnOnce(Services, Purchase, String) -> Fut,
    Fut: Future<Output = Option<AttemptOutcome>> + Send + 'static,
{
    let work = attempt(services.clone(), purchase.clone(), owner.to_owned());
    // Aborted with this future: a worker cut off at the end of the drain stops its attempt too.
    let task = AbortOnDropHandle::new(tokio::spawn(reach::track(work)));
    let joined = with_heartbeat(services, &purchase.id, owner, task).await;
    match joined {
        Ok((outcome, true)) => outcome,
        Ok((outcome, false)) => {
            match db::leases::uncount_attempt(&services.db, &purchase.id, purchase.attempts).await {
                Ok(true) => {
                    tracing::info!(purchase_id = %purchase.id, "attempt never reached Stripe; not counted")
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(purchase_id = %purchase.id, %error, "could not un-count an attempt")
                }
            }
            outcome
        }
        Err(error) if error.is_panic() => {
            let message = panic_message(error.into_panic());
            services.metrics.worker_panic();
            tracing::error!(purchase_id = %purchase.id, panic = %message, "purchase attempt panicked; retrying later");
            let reason = format!("attempt panicked: {message}");
            let attempt = Attempt {
                services,
                purchase,
                owner,
            };
            match attempt.retry(reason).await {
                Ok(outcome) => Some(outcome),
                Err(error) => {
                    // The lease runs out and another attempt starts over.
                    tracing::error!(purchase_id = %purchase.id, error = format!("{error:#}"), "could not schedule a retry after a panic");
                    None
                }
            }
        }
        Err(_) => None,
    }
}

/// Runs `work` while renewing the lease `owner` holds on the purchase; for work on a claimed
/// purchase that runs in place, such as the funding a `POST /v1/purchases` does while the client
/// waits. If `work` is dropped (the request timed out), the renewals stop with it.
pub async fn with_heartbeat<F: Future>(
    services: &Services,
    purchase_id: &str,
    owner: &str,
    work: F,
) -> F::Output {
    let heartbeat = heartbeat(services, purchase_id, owner);
    tokio::pin!(heartbeat);
    tokio::pin!(work);
    let mut beating = true;
    loop {
        tokio::select! {
            output = &mut work => return output,
            () = &mut heartbeat, if beating => beating = false,
        }
    }
}

/// Renews the lease every [`heartbeat_interval`] until it is lost; returns then.
async fn heartbeat(services: &Services, purchase_id: &str, owner: &str) {
    let lease = services.policy.lease;
    let mut ticks = tokio::time::interval(heartbeat_interval(lease));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match db::leases::renew(&services.db, purchase_id, owner, lease).await {
            Ok(true) => {}
            Ok(false) => {
                // Usually the attempt just let go; otherwise its conditional writes find out.
                tracing::debug!(purchase_id, "lease no longer held; heartbeat stops");
                return;
            }
            Err(error) => {
                tracing::warn!(purchase_id, %error, "could not renew lease; trying again")
            }
        }
    }
}

/// The text a panic carries, shortened: it becomes the purchase's `last_error`.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let text = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a non-text panic".to_owned()
    };
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_and_bounded() {
        assert_eq!(panic_message(Box::new("boom")), "boom");
        assert_eq!(panic_message(Box::new("x".repeat(900))).len(), 500);
        assert_eq!(panic_message(Box::new(7_u8)), "a non-text panic");
    }

    #[test]
    fn the_heartbeat_beats_well_within_the_lease() {
        assert_eq!(
            heartbeat_interval(Duration::from_secs(25)),
            Duration::from_secs(5)
        );
        assert_eq!(
            heartbeat_interval(Duration::from_millis(200)),
            Duration::from_millis(100)
        );
    }
}
