//! How many tasks a runner claims at once: as many as it expects to finish
//! within [`TARGET`], judged by how long its recent tasks took.

use std::time::Duration;

use crate::scheduler::MAX_CLAIM_BATCH;

/// How long a batch should take.
const TARGET: Duration = Duration::from_millis(2);

/// Weight of the newest observation in the moving average.
const WEIGHT: f64 = 0.25;

/// A moving average of the time per task.
#[derive(Debug, Default)]
pub struct Pace {
    per_task: Option<f64>,
}

impl Pace {
    /// The next claim's size: one until a task has been timed.
    pub fn batch_size(&self) -> usize {
        let Some(per_task) = self.per_task else { return 1 };
        let fits = TARGET.as_secs_f64() / per_task.max(1e-9);
        (fits as usize).clamp(1, MAX_CLAIM_BATCH)
    }

    /// Records that `tasks` tasks took `elapsed`.
    pub fn observe(&mut self, elapsed: Duration, tasks: usize) {
        if tasks == 0 {
            return;
        }
        let sample = elapsed.as_secs_f64() / tasks as f64;
        self.per_task = Some(match self.per_task {
            Some(avg) => avg + WEIGHT * (sample - avg),
            None => sample,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_single_tasks() {
        assert_eq!(Pace::default().batch_size(), 1);
    }

    #[test]
    fn short_tasks_are_batched_up_to_the_maximum() {
        let mut pace = Pace::default();
        pace.observe(Duration::from_micros(20), 1);
        assert_eq!(pace.batch_size(), MAX_CLAIM_BATCH);
        let mut pace = Pace::default();
        pace.observe(Duration::from_micros(200), 1);
        assert_eq!(pace.batch_size(), 10);
    }

    #[test]
    fn a_long_task_brings_the_size_back_to_one() {
        let mut pace = Pace::default();
        pace.observe(Duration::from_micros(20), 1);
        pace.observe(Duration::from_secs(2), 1);
        assert_eq!(pace.batch_size(), 1);
    }
}
