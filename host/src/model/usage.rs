//! What attempts use, as the sandbox measures it (CPU time on the thread
//! that ran the guest and its host calls; the peak of its linear memory),
//! and what a job's attempts used in all.

/// What one attempt used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time, in µs.
    pub cpu_us: u64,
    /// The most linear memory its instance held at once, in bytes.
    pub peak_memory_bytes: u64,
}

/// A job's execution so far: when its first attempt started and its last
/// reported attempt ended, and the wall and CPU time of its reported
/// attempts added up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobStats {
    /// When its first attempt started (Unix ms).
    pub first_start_ms: Option<u64>,
    /// When its last reported attempt ended (Unix ms).
    pub last_stop_ms: Option<u64>,
    /// Start to report of every reported attempt, added up (ms).
    pub compute_ms: u64,
    /// The CPU time of every reported attempt, added up (µs).
    pub cpu_us: u64,
}

impl JobStats {
    /// Records an attempt that started at `ms`.
    pub fn started(&mut self, ms: u64) {
        self.first_start_ms.get_or_insert(ms);
    }

    /// Records an attempt that started at `started_ms` and was reported at
    /// `ended_ms`, having used `usage`.
    pub fn ended(&mut self, started_ms: u64, ended_ms: u64, usage: Option<Usage>) {
        self.last_stop_ms = Some(self.last_stop_ms.unwrap_or(0).max(ended_ms));
        self.compute_ms = self.compute_ms.saturating_add(ended_ms.saturating_sub(started_ms));
        self.cpu_us = self.cpu_us.saturating_add(usage.map_or(0, |u| u.cpu_us));
    }

    /// First start to last stop (ms).
    pub fn elapsed_ms(&self) -> Option<u64> {
        Some(self.last_stop_ms?.saturating_sub(self.first_start_ms?))
    }

    /// Compute time over elapsed time: how many attempts ran at once, on average.
    pub fn parallelism(&self) -> Option<f64> {
        let elapsed = self.elapsed_ms().filter(|e| *e > 0)?;
        Some(self.compute_ms as f64 / elapsed as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_add_up_attempts() {
        let mut s = JobStats::default();
        assert_eq!((s.elapsed_ms(), s.parallelism()), (None, None));
        s.started(1_000);
        s.started(1_010);
        s.ended(1_000, 1_400, Some(Usage { cpu_us: 300, peak_memory_bytes: 1 }));
        s.ended(1_010, 1_200, None);
        assert_eq!((s.first_start_ms, s.last_stop_ms), (Some(1_000), Some(1_400)));
        assert_eq!((s.compute_ms, s.cpu_us, s.elapsed_ms()), (590, 300, Some(400)));
        assert_eq!(s.parallelism(), Some(590.0 / 400.0));
    }
}
