//! Exponential backoff with full jitter.
use std::time::Duration;

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    pub initial_ms: u64,
    pub max_ms: u64,
    pub multiplier: f64,
    /// Attempts before giving up; 0 retries forever.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { initial_ms: 50, max_ms: 5_000, multiplier: 2.0, max_attempts: 0 }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1-based): uniformly random up to the exponential cap,
    /// so that many clients retrying at once spread out.
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap =
            (self.initial_ms as f64 * self.multiplier.powi(attempt.saturating_sub(1) as i32)).min(self.max_ms as f64);
        let floor = cap / 2.0;
        Duration::from_millis(rand::rng().random_range(floor..=cap.max(floor + 1.0)) as u64)
    }

    /// Waits out the delay before retry number `attempt`, or until `stop`; answers whether it
    /// was stopped.
    pub async fn wait(&self, attempt: u32, stop: &CancellationToken) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(self.delay(attempt)) => false,
            _ = stop.cancelled() => true,
        }
    }

    pub fn exhausted(&self, attempt: u32) -> bool {
        self.max_attempts != 0 && attempt >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let policy = RetryPolicy { initial_ms: 100, max_ms: 1_000, multiplier: 2.0, max_attempts: 5 };
        for _ in 0..100 {
            let first = policy.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(101), "{first:?}");
            let late = policy.delay(10);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1_001), "{late:?}");
        }
        assert!(!policy.exhausted(4));
        assert!(policy.exhausted(5));
        assert!(!RetryPolicy::default().exhausted(1_000));
    }
}
