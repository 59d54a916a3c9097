//! What one task attempt may use: time, memory, captured output, and the
//! bounds on what it records (`model::Bounds`, shared with the host's check
//! of remote runners' reports).

use std::sync::Arc;
use std::time::Duration;

use crate::model::{Bounds, TaskLimits};

/// Per-attempt limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock time of one attempt, host calls included.
    pub timeout: Duration,
    /// Bytes of all linear memories of the attempt's instance together.
    pub memory_bytes: usize,
    /// Bytes of stdout and of stderr captured; writing more fails the
    /// attempt with a message naming the limit.
    pub output_bytes: usize,
    /// What the attempt may record (counts and bytes).
    pub bounds: Arc<Bounds>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(15 * 60),
            memory_bytes: 256 << 20,
            output_bytes: 1 << 20,
            bounds: Arc::new(Bounds::default()),
        }
    }
}

impl Limits {
    /// These limits, with what an upload asked for where it is lower.
    pub fn narrowed(&self, asked: &TaskLimits) -> Limits {
        let mut limits = self.clone();
        if let Some(ms) = asked.timeout_ms {
            limits.timeout = limits.timeout.min(Duration::from_millis(ms));
        }
        if let Some(bytes) = asked.memory_bytes {
            limits.memory_bytes = limits.memory_bytes.min(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
        limits
    }
}
