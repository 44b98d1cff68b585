//! Spaces Stripe requests evenly so one process stays under its share of Stripe's rate limit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Clone)]
pub struct RateLimiter {
    interval: Duration,
    next_slot: Arc<Mutex<Instant>>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next_slot: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Waits for the next free slot; returns whether it had to wait.
    pub async fn acquire(&self) -> bool {
        let slot = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_by_the_interval() {
        let limiter = RateLimiter::new(10);
        let start = Instant::now();
        assert!(!limiter.acquire().await);
        for _ in 0..4 {
            assert!(limiter.acquire().await);
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }
}
