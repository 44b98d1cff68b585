//! When a failed delivery is tried again: `OUTBOUND_RETRY_SCHEDULE`, jitter and `Retry-After`.

use std::time::Duration;

use rand::Rng;

/// Delays after the 1st, 2nd, … failed attempt; once they run out the delivery has failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// Roughly what Standard Webhooks senders use: 5s, 5m, 30m, 2h, 5h, 10h, 10h (~28 h in all).
    pub const DEFAULT: &'static str = "5s,5m,30m,2h,5h,10h,10h";

    /// Parses comma-separated durations: a whole number with `ms`, `s`, `m`, `h` or `d`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(|part| parse_duration(part.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if delays.len() > 50 {
            return Err("has more than 50 steps".into());
        }
        Ok(RetrySchedule(delays))
    }

    /// How many attempts a delivery gets in one round: the first one and one per step.
    pub fn attempts(&self) -> i32 {
        self.0.len() as i32 + 1
    }

    /// The delay after failed attempt number `attempt` (1-based), or None when the schedule is
    /// spent. Up to a tenth is taken off or added so that many deliveries failed by one outage
    /// do not all come back in the same second.
    pub fn delay_after(&self, attempt: i32) -> Option<Duration> {
        let step = *self.0.get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
        Some(step.mul_f64(rand::rng().random_range(0.9..=1.1)))
    }

    /// The delay after a failed attempt whose answer carried `Retry-After`: never sooner than the
    /// schedule says, and a receiver asking for more waits at most the schedule's longest step.
    pub fn delay_honouring(&self, attempt: i32, retry_after: Option<Duration>) -> Option<Duration> {
        let scheduled = self.delay_after(attempt)?;
        let longest = self.0.iter().copied().max().unwrap_or_default();
        Some(scheduled.max(retry_after.unwrap_or_default().min(longest)))
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(value)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} has an unknown unit (ms, s, m, h or d)")),
    };
    if value.saturating_mul(seconds) > 7 * 86_400 {
        return Err(format!("{text:?} is longer than 7 days"));
    }
    Ok(Duration::from_secs(value * seconds))
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_parses_to_seven_steps() {
        let schedule = RetrySchedule::parse(RetrySchedule::DEFAULT).unwrap();
        assert_eq!(schedule.attempts(), 8);
        let first = schedule.delay_after(1).unwrap();
        assert!(first >= Duration::from_millis(4500) && first <= Duration::from_millis(5500));
        let last = schedule.delay_after(7).unwrap();
        assert!(last >= Duration::from_secs(9 * 3600) && last <= Duration::from_secs(11 * 3600));
        assert_eq!(schedule.delay_after(8), None);
        assert_eq!(schedule.delay_after(0), None);
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for bad in ["", "5", "5x", "s", "5s,,5m", "-5s", "8d"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            RetrySchedule::parse("50ms, 1s").unwrap(),
            RetrySchedule(vec![Duration::from_millis(50), Duration::from_secs(1)])
        );
    }

    #[test]
    fn retry_after_is_honoured_but_capped_by_the_longest_step() {
        let schedule = RetrySchedule::parse("1s,10s").unwrap();
        let asked = schedule
            .delay_honouring(1, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(asked, Duration::from_secs(5));
        let greedy = schedule
            .delay_honouring(1, Some(Duration::from_secs(3600)))
            .unwrap();
        assert_eq!(greedy, Duration::from_secs(10));
        let sooner = schedule.delay_honouring(2, Some(Duration::ZERO)).unwrap();
        assert!(sooner >= Duration::from_secs(9));
        assert_eq!(
            schedule.delay_honouring(3, Some(Duration::from_secs(1))),
            None
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let date = "Thu, 01 Jan 2026 00:01:00 GMT";
        assert_eq!(parse_retry_after(date, now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
