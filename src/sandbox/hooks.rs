//! Fault injection, pause hooks, the global rate limit and the lagging grant list of [`FakeStripe`].

use super::FakeStripe;
use super::control::{self, Fault, FaultKind, PauseHandle, PauseShared, PauseSlot, PauseStage};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

impl FakeStripe {
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Models Stripe's list lagging behind a create: every grant created from now on is missing
    /// from `GET /v1/billing/credit_grants` for the next `n_looks` list requests that would have
    /// included it, then appears. Retrieving it by id works at once. `0` turns the lag off for
    /// grants created later.
    pub fn hide_new_grants_from_list(&self, n_looks: u32) {
        self.lock().grant_list_lag = n_looks;
    }

    pub(crate) fn take_fault(&self, method: &str, path: &str) -> Option<FaultKind> {
        let mut st = self.lock();
        let i = st.faults.iter().position(|f| f.matches(method, path))?;
        let kind = st.faults[i].kind.clone();
        match &mut st.faults[i].times {
            Some(n) if *n <= 1 => {
                st.faults.remove(i);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Some(kind)
    }

    /// Holds the next matching request after its effect (object created, idempotent result stored)
    /// and before its response, until [`PauseHandle::release`] (or the handle is dropped).
    pub fn pause_after_effect(&self, method: &str, path_prefix: &str) -> PauseHandle {
        self.pause(PauseStage::AfterEffect, method, path_prefix)
    }

    /// Holds the next matching request after it validated and took its idempotency key, before
    /// anything is executed (a concurrent request with that key gets 409 meanwhile).
    pub fn pause_before_effect(&self, method: &str, path_prefix: &str) -> PauseHandle {
        self.pause(PauseStage::BeforeEffect, method, path_prefix)
    }

    fn pause(&self, stage: PauseStage, method: &str, path_prefix: &str) -> PauseHandle {
        let shared = Arc::new(PauseShared {
            reached: watch::Sender::new(false),
            released: watch::Sender::new(false),
        });
        let mut st = self.lock();
        st.pauses.push(PauseSlot {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            stage,
            shared: shared.clone(),
        });
        PauseHandle { shared }
    }

    pub(crate) async fn pause_at(&self, stage: PauseStage, method: &str, path: &str) {
        let slot = {
            let mut st = self.lock();
            let pos = st.pauses.iter().position(|p| {
                p.stage == stage
                    && (p.method == "*" || p.method.eq_ignore_ascii_case(method))
                    && path.starts_with(&p.path_prefix)
            });
            pos.map(|i| st.pauses.remove(i))
        };
        if let Some(slot) = slot {
            control::wait_released(&slot.shared).await;
        }
    }

    /// Requests above `per_second` within any one-second window get 429 `rate_limit`.
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        let mut st = self.lock();
        st.rate_limit = per_second;
        st.rate_window.clear();
    }

    pub(crate) fn over_rate_limit(&self) -> bool {
        let mut st = self.lock();
        let Some(limit) = st.rate_limit else {
            return false;
        };
        let now = Instant::now();
        while st
            .rate_window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            st.rate_window.pop_front();
        }
        if st.rate_window.len() >= limit as usize {
            return true;
        }
        st.rate_window.push_back(now);
        false
    }
}
