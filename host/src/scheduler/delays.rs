//! Tasks waiting out a retry backoff, in the writer's memory. A delayed
//! task is queued with its live key marked waiting and its status's
//! `not_before_ms` set, so it holds no runner; when the time comes the
//! writer marks it ready. At start-up the delays are found again from the
//! waiting live keys (see `writer::rebuild`).

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::{TaskKey, now_ms};

/// Delayed tasks by the time they may run (Unix ms), with their cluster.
#[derive(Default)]
pub struct Delays(BTreeSet<(u64, TaskKey, String)>);

impl Delays {
    /// Records that `key` (of `cluster`) may run from `due_ms` on.
    pub fn add(&mut self, due_ms: u64, cluster: String, key: TaskKey) {
        self.0.insert((due_ms, key, cluster));
    }

    /// When the next delay ends, as an instant of this process.
    pub fn next_due(&self) -> Option<Instant> {
        let &(due, ..) = self.0.first()?;
        Some(Instant::now() + Duration::from_millis(due.saturating_sub(now_ms())))
    }

    /// Takes the delays that ended by `now_ms`: (due, cluster, task).
    pub fn take_due(&mut self, now_ms: u64) -> Vec<(u64, String, TaskKey)> {
        let mut due = Vec::new();
        while let Some(first) = self.0.first()
            && first.0 <= now_ms
        {
            let (at, key, cluster) = self.0.pop_first().expect("a first entry");
            due.push((at, cluster, key));
        }
        due
    }

    /// How many tasks wait out a delay.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobId, TaskId};

    #[test]
    fn delays_end_in_time_order() {
        let key = |_| TaskKey { job: JobId::new(), task: TaskId::new() };
        let (a, b, c) = (key(0), key(1), key(2));
        let mut d = Delays::default();
        d.add(300, "x".into(), a);
        d.add(100, "x".into(), b);
        d.add(200, "y".into(), c);
        assert_eq!(d.take_due(50), vec![]);
        let due: Vec<TaskKey> = d.take_due(250).into_iter().map(|(_, _, k)| k).collect();
        assert_eq!(due, vec![b, c]);
        assert_eq!(d.len(), 1);
    }
}
