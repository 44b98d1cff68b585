//! Shares this process's Stripe rate between money and proxied reads, money first.
//!
//! Grants, funding and the reads fulfilment depends on (`Lane::Money`) reserve the next free slot
//! and wait for it, however long the queue: they must happen, and only they decide how busy the
//! queue is. Proxied reads (`Lane::Read`, the balance endpoints of `/v1`) never reserve ahead: they
//! take a slot only when it is free now, at most `read_share` of the rate, and give up after a
//! bounded wait with [`Busy`], so a flood of reads can neither queue without end nor push a grant
//! back by more than one slot. No maintained crate offers this pair of lanes (governor's limiters
//! have one queue and no priorities), hence the hand-written scheduler.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Which share of the Stripe budget a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Grants, funding, and the reads fulfilment needs: always served, first.
    Money,
    /// Reads creditd only passes on to its own clients: a bounded share and a bounded wait.
    Read,
}

/// A read that found no capacity within its wait; `retry_after` is when one is likely free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: Duration,
}

#[derive(Clone)]
pub struct RateLimiter {
    interval: Duration,
    read_interval: Duration,
    read_max_wait: Duration,
    slots: Arc<Mutex<Slots>>,
}

struct Slots {
    /// The first instant no request holds yet.
    next: Instant,
    /// The first instant the read share allows another read.
    next_read: Instant,
}

impl RateLimiter {
    /// `read_share_percent` of `per_second` (1..=100) may go to reads, each waiting at most
    /// `read_max_wait` for it.
    pub fn new(per_second: u32, read_share_percent: u32, read_max_wait: Duration) -> Self {
        let interval = Duration::from_secs(1) / per_second.max(1);
        let share = read_share_percent.clamp(1, 100);
        let now = Instant::now();
        RateLimiter {
            interval,
            read_interval: interval * 100 / share,
            read_max_wait,
            slots: Arc::new(Mutex::new(Slots {
                next: now,
                next_read: now,
            })),
        }
    }

    /// Waits for a slot in `lane`; returns whether it had to wait, or [`Busy`] for a read that
    /// found none in time.
    pub async fn acquire(&self, lane: Lane) -> Result<bool, Busy> {
        match lane {
            Lane::Money => Ok(self.acquire_money().await),
            Lane::Read => self.acquire_read().await,
        }
    }

    async fn acquire_money(&self) -> bool {
        let slot = {
            let mut slots = self.lock();
            let slot = slots.next.max(Instant::now());
            slots.next = slot + self.interval;
            slot
        };
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
            true
        } else {
            false
        }
    }

    async fn acquire_read(&self) -> Result<bool, Busy> {
        let deadline = Instant::now() + self.read_max_wait;
        let mut waited = false;
        loop {
            let free_at = {
                let mut slots = self.lock();
                let now = Instant::now();
                let free_at = slots.next.max(slots.next_read);
                if free_at <= now {
                    slots.next = now + self.interval;
                    slots.next_read = now + self.read_interval;
                    return Ok(waited);
                }
                free_at
            };
            if free_at > deadline {
                let now = Instant::now();
                return Err(Busy {
                    retry_after: free_at
                        .saturating_duration_since(now)
                        .max(self.read_interval),
                });
            }
            waited = true;
            tokio::time::sleep_until(free_at).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The critical sections cannot panic, so a poisoned lock still holds consistent slots.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_by_the_interval() {
        let limiter = RateLimiter::new(10, 50, Duration::from_secs(1));
        let start = Instant::now();
        assert_eq!(limiter.acquire(Lane::Money).await, Ok(false));
        for _ in 0..4 {
            assert_eq!(limiter.acquire(Lane::Money).await, Ok(true));
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn reads_get_only_their_share() {
        let limiter = RateLimiter::new(10, 20, Duration::from_secs(1));
        let start = Instant::now();
        assert_eq!(limiter.acquire(Lane::Read).await, Ok(false));
        // 20 % of 10/s is one read every 500 ms.
        assert_eq!(limiter.acquire(Lane::Read).await, Ok(true));
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn money_queued_ahead_keeps_reads_out_until_they_give_up() {
        let limiter = RateLimiter::new(10, 50, Duration::from_millis(300));
        // Reserve a second of money slots.
        for _ in 0..10 {
            let _ = limiter.acquire_money_reservation();
        }
        let busy = limiter.acquire(Lane::Read).await.unwrap_err();
        assert!(busy.retry_after >= Duration::from_millis(700), "{busy:?}");
        // A grant that arrives now waits behind money only, never behind reads.
        let start = Instant::now();
        assert_eq!(limiter.acquire(Lane::Money).await, Ok(true));
        assert!(start.elapsed() <= Duration::from_secs(1));
    }

    impl RateLimiter {
        fn acquire_money_reservation(&self) -> Instant {
            let mut slots = self.lock();
            let slot = slots.next.max(Instant::now());
            slots.next = slot + self.interval;
            slot
        }
    }
}
