//! Whether a unit of work reached Stripe: an attempt that never did (the connection was refused,
//! it waited for capacity, it was cut short before its first request) must not use up one of the
//! purchase's attempts.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static REACHED: Cell<bool>;
}

/// Runs `work`, returning its output and whether any request it sent may have reached Stripe.
pub async fn track<F: Future>(work: F) -> (F::Output, bool) {
    REACHED
        .scope(Cell::new(false), async move {
            let output = work.await;
            (output, REACHED.with(Cell::get))
        })
        .await
}

/// Called by the client once a request has left; a no-op outside [`track`].
pub(crate) fn mark_reached() {
    let _ = REACHED.try_with(|reached| reached.set(true));
}

/// Whether the current work reached Stripe so far. Outside [`track`] the answer is `true`, so
/// code that cannot tell counts the attempt, as before.
pub fn reached() -> bool {
    REACHED.try_with(Cell::get).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_marked_work_reached_stripe() {
        assert_eq!(track(async {}).await, ((), false));
        let ((), reached) = track(async {
            assert!(!super::reached());
            mark_reached();
        })
        .await;
        assert!(reached);
        assert!(
            super::reached(),
            "outside a tracked scope, count the attempt"
        );
    }
}
