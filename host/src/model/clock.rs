//! The scheduler's wall clock: the system's time plus an offset, so that
//! tests (and `serve --clock-from`) can run schedules at a chosen time
//! without waiting for it. Every copy of a clock shares its offset.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::now_ms;

/// A wall clock, in Unix ms.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// A clock that reads `ms` now and runs at the system clock's pace.
    pub fn starting_at(ms: u64) -> Self {
        let clock = Clock::default();
        clock.offset_ms.store(signed(ms) - signed(now_ms()), Ordering::Relaxed);
        clock
    }

    /// The time now.
    pub fn now_ms(&self) -> u64 {
        let now = signed(now_ms()).saturating_add(self.offset_ms.load(Ordering::Relaxed));
        u64::try_from(now).unwrap_or(0)
    }

    /// Moves the clock (and every copy of it) `ms` ahead.
    pub fn advance(&self, ms: u64) {
        self.offset_ms.fetch_add(signed(ms), Ordering::Relaxed);
    }
}

fn signed(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_starts_where_it_is_told_and_copies_move_together() {
        let clock = Clock::starting_at(1_000_000);
        let copy = clock.clone();
        assert!((1_000_000..1_010_000).contains(&clock.now_ms()));
        copy.advance(3_600_000);
        assert!((4_600_000..4_610_000).contains(&clock.now_ms()));
        assert!(Clock::system().now_ms().abs_diff(now_ms()) < 1000);
    }
}
