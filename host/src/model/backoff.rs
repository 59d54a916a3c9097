//! Retry backoff: how long a task waits before a failed attempt is retried.
//! The one check of a policy ([`Backoff::check`]) serves every path that
//! sets one (a guest's subtask, a job's root task).

use serde::{Deserialize, Serialize};

/// Longest delay a policy may ask for: one day, in milliseconds.
pub const MAX_BACKOFF_MS: u64 = 86_400_000;

/// Largest growth factor between two delays.
pub const MAX_BACKOFF_FACTOR: f64 = 100.0;

/// A delay before each retry: `initial_ms` before the first, each next one
/// `factor` times longer, none longer than `max_ms`; with `jitter`, each is
/// drawn uniformly between half and all of it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the first retry, in milliseconds.
    pub initial_ms: u64,
    /// How much longer each next delay is (1 keeps it constant).
    pub factor: f64,
    /// The longest delay, in milliseconds.
    pub max_ms: u64,
    /// Whether delays are spread at random over their upper half.
    pub jitter: bool,
}

impl Backoff {
    /// Checks the policy's bounds, naming the field that breaks one.
    pub fn check(&self) -> Result<(), String> {
        if self.initial_ms > MAX_BACKOFF_MS || self.max_ms > MAX_BACKOFF_MS {
            return Err(format!(
                "backoff delays are at most {MAX_BACKOFF_MS} ms (one day); got initial {} ms, max {} ms",
                self.initial_ms, self.max_ms
            ));
        }
        if self.max_ms < self.initial_ms {
            return Err(format!(
                "backoff max ({} ms) is below its initial delay ({} ms)",
                self.max_ms, self.initial_ms
            ));
        }
        if !(1.0..=MAX_BACKOFF_FACTOR).contains(&self.factor) {
            return Err(format!(
                "backoff factor must be from 1 to {MAX_BACKOFF_FACTOR}, got {}",
                self.factor
            ));
        }
        Ok(())
    }

    /// The delay before the retry that follows failure number `failures`
    /// (from 1); `unit` is a number in [0, 1) used for jitter.
    pub fn delay_ms(&self, failures: u32, unit: f64) -> u64 {
        let grown = self.initial_ms as f64 * self.factor.powi(failures.saturating_sub(1).min(1024) as i32);
        let delay = grown.min(self.max_ms as f64);
        let delay = if self.jitter { delay * (0.5 + unit.clamp(0.0, 1.0) / 2.0) } else { delay };
        delay as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(initial_ms: u64, factor: f64, max_ms: u64, jitter: bool) -> Backoff {
        Backoff { initial_ms, factor, max_ms, jitter }
    }

    #[test]
    fn delays_grow_by_the_factor_up_to_the_cap() {
        let b = policy(100, 2.0, 1000, false);
        let delays: Vec<u64> = (1..=6).map(|n| b.delay_ms(n, 0.0)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay_ms(u32::MAX, 0.0), 1000, "huge failure counts stay at the cap");
    }

    #[test]
    fn jitter_keeps_delays_in_their_upper_half() {
        let b = policy(1000, 1.0, 1000, true);
        assert_eq!(b.delay_ms(1, 0.0), 500);
        assert_eq!(b.delay_ms(1, 0.999_999), 999);
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        assert!(policy(0, 1.0, 0, false).check().is_ok());
        assert!(policy(10, 0.5, 100, false).check().unwrap_err().contains("factor"));
        assert!(policy(10, f64::NAN, 100, false).check().unwrap_err().contains("factor"));
        assert!(policy(100, 2.0, 10, false).check().unwrap_err().contains("below"));
        assert!(policy(0, 2.0, MAX_BACKOFF_MS + 1, false).check().unwrap_err().contains("one day"));
    }
}
