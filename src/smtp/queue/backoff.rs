//! The retry schedule: the delay doubles from `initial` per failed attempt, capped
//! at `max`; once the message has waited `lifetime` it bounces instead.

use std::time::Duration;

/// Retry policy of the outbound queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub lifetime: Duration,
}

impl Backoff {
    /// The delay before the next try after `failures` failed attempts (at least 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// When to try again after the `failures`-th failure at `now_ms` for a message
    /// enqueued at `enqueued_ms`; `None` once the lifetime is used up (bounce).
    pub fn next_attempt_ms(&self, failures: u32, enqueued_ms: i64, now_ms: i64) -> Option<i64> {
        let lifetime = i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(enqueued_ms) >= lifetime {
            return None;
        }
        let delay = i64::try_from(self.delay(failures).as_millis()).unwrap_or(i64::MAX);
        Some(now_ms.saturating_add(delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Backoff {
        Backoff {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(3600),
            lifetime: Duration::from_secs(5 * 86_400),
        }
    }

    #[test]
    fn delay_doubles_from_initial_up_to_max() {
        let b = policy();
        let secs: Vec<u64> = (1..=9).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(b.delay(0).as_secs(), 60);
        assert_eq!(b.delay(u32::MAX).as_secs(), 3600, "no overflow");
    }

    #[test]
    fn lifetime_ends_the_retries() {
        let b = policy();
        assert_eq!(b.next_attempt_ms(1, 0, 1000), Some(61_000));
        let life = 5 * 86_400 * 1000;
        assert_eq!(b.next_attempt_ms(3, 0, life - 1), Some(life - 1 + 240_000));
        assert_eq!(b.next_attempt_ms(3, 0, life), None);
    }
}
