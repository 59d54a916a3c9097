//! Bounds on what one task attempt may use and send to the host.

use std::time::Duration;

use crate::model::TaskLimits;

/// Per-attempt limits. Past a count limit the attempt fails with a message
/// naming the limit; over-long strings are truncated.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock time of one attempt.
    pub timeout: Duration,
    /// Bytes of each linear memory of the attempt's instance (a component
    /// with several memories may use this much in each).
    pub memory_bytes: usize,
    /// Subtasks one attempt may submit.
    pub max_subtasks: usize,
    /// Dependencies one subtask may name.
    pub max_dependencies: usize,
    /// Dependencies all subtasks of one attempt may name together.
    pub max_edges: usize,
    /// Bytes of one subtask's JSON input.
    pub max_input_bytes: usize,
    /// Log lines one attempt may record (captured output included).
    pub max_log_lines: usize,
    /// Bytes of one log message or field value; longer ones are truncated.
    pub max_log_bytes: usize,
    /// Spans one attempt may open.
    pub max_spans: usize,
    /// Bytes of stdout and of stderr captured; writing more fails the attempt.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(15 * 60),
            memory_bytes: 256 << 20,
            max_subtasks: 100_000,
            max_dependencies: 100_000,
            max_edges: 1_000_000,
            max_input_bytes: 1 << 20,
            max_log_lines: 10_000,
            max_log_bytes: 16 << 10,
            max_spans: 10_000,
            max_output_bytes: 1 << 20,
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

impl Limits {
    /// Checks the dependencies of a subtask submitted after `issued` others
    /// (whose dependencies number `edges`): only earlier handles, within the
    /// bounds. `Err` is the message the guest receives.
    pub fn check_dependencies(&self, depends_on: &[u32], issued: usize, edges: usize) -> Result<(), String> {
        if let Some(bad) = depends_on.iter().find(|&&h| h as usize >= issued) {
            return Err(format!("depends on subtask handle {bad}, but only {issued} were issued before it"));
        }
        if depends_on.len() > self.max_dependencies {
            return Err(format!(
                "{} dependencies exceed the limit of {} per subtask",
                depends_on.len(),
                self.max_dependencies
            ));
        }
        if edges + depends_on.len() > self.max_edges {
            return Err(format!(
                "the attempt's subtasks would name {} dependencies in all, over the limit of {} per attempt",
                edges + depends_on.len(),
                self.max_edges
            ));
        }
        Ok(())
    }
}

/// A log message as stored: at most `limits.max_log_bytes` bytes.
pub fn truncate_log(message: String, limits: &Limits) -> String {
    truncate_bytes(message, limits.max_log_bytes)
}

/// Keeps at most `max` bytes of `s`, cut at a character boundary.
pub fn truncate_bytes(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_name_earlier_handles_within_the_bounds() {
        let limits = Limits { max_dependencies: 3, max_edges: 5, ..Limits::default() };
        assert_eq!(limits.check_dependencies(&[0, 1], 2, 0), Ok(()));
        assert_eq!(
            limits.check_dependencies(&[2], 2, 0),
            Err("depends on subtask handle 2, but only 2 were issued before it".into())
        );
        assert_eq!(
            limits.check_dependencies(&[0, 1, 2, 3], 9, 0),
            Err("4 dependencies exceed the limit of 3 per subtask".into())
        );
        assert_eq!(
            limits.check_dependencies(&[0, 1, 2], 9, 3),
            Err("the attempt's subtasks would name 6 dependencies in all, over the limit of 5 per attempt"
                .into())
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_bytes("héllo".into(), 2), "h");
        assert_eq!(truncate_bytes("abc".into(), 10), "abc");
    }
}
