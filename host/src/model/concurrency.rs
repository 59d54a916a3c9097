//! Concurrency limits of a cluster: at most `max` running tasks of one
//! task type, or of one task type per distinct value of a field of their
//! input (`key`, a JSON pointer such as `/host`). A task that would go over
//! a limit waits, ready, holding no runner, until a task of its group ends.

use serde_json::Value;

/// Most limits per cluster.
pub const MAX_LIMITS: usize = 32;
/// Largest `max` of a limit.
pub const MAX_CONCURRENCY: u32 = 1_000_000;
/// Longest task name or key pointer of a limit, in characters.
pub const MAX_LIMIT_TEXT: usize = 256;

/// One limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyLimit {
    /// The task type's name (any version).
    pub task: String,
    /// A JSON pointer into the task's input: the limit holds per value
    /// found there (a task without the field is in the group `null`).
    pub key: Option<String>,
    /// Most tasks of the group running at once on the cluster.
    pub max: u32,
}

impl ConcurrencyLimit {
    /// The group a task with `input` (JSON text) is in under this limit.
    pub fn group_of(&self, input: &str) -> String {
        let Some(pointer) = &self.key else { return String::new() };
        let input: Value = serde_json::from_str(input).unwrap_or(Value::Null);
        match input.pointer(pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "null".into(),
        }
    }
}

/// Checks a cluster's limits: at most [`MAX_LIMITS`], each with a task
/// name of 1 to [`MAX_LIMIT_TEXT`] characters, a key that is a JSON
/// pointer (`/field/0`, at most [`MAX_LIMIT_TEXT`] characters) and a `max`
/// of 1 to [`MAX_CONCURRENCY`]. Of two limits for the same task and key,
/// the lower holds.
pub fn check_limits(limits: &[ConcurrencyLimit]) -> Result<(), String> {
    if limits.len() > MAX_LIMITS {
        return Err(format!("a cluster has at most {MAX_LIMITS} concurrency limits, got {}", limits.len()));
    }
    for (i, l) in limits.iter().enumerate() {
        if l.task.is_empty() || l.task.chars().count() > MAX_LIMIT_TEXT {
            return Err(format!("limit {i}: the task name must be 1 to {MAX_LIMIT_TEXT} characters"));
        }
        if let Some(key) = &l.key
            && (!key.starts_with('/') || key.chars().count() > MAX_LIMIT_TEXT)
        {
            return Err(format!(
                "limit {i}: key `{}` is not a JSON pointer such as `/host` (at most {MAX_LIMIT_TEXT} characters)",
                key.escape_debug()
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&l.max) {
            return Err(format!("limit {i}: max must be 1 to {MAX_CONCURRENCY}, got {}", l.max));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(task: &str, key: Option<&str>, max: u32) -> ConcurrencyLimit {
        ConcurrencyLimit { task: task.into(), key: key.map(Into::into), max }
    }

    #[test]
    fn groups_come_from_the_keyed_field() {
        let by_host = limit("Download", Some("/source/host"), 2);
        assert_eq!(by_host.group_of(r#"{"source": {"host": "a.example"}}"#), "a.example");
        assert_eq!(by_host.group_of(r#"{"source": {"host": 7}}"#), "7");
        assert_eq!(by_host.group_of(r#"{"other": 1}"#), "null");
        assert_eq!(by_host.group_of("not json"), "null");
        assert_eq!(limit("Download", None, 2).group_of(r#"{"source": 1}"#), "");
    }

    #[test]
    fn bad_limits_are_refused_with_their_reason() {
        assert!(check_limits(&[limit("Download", None, 4), limit("Download", Some("/host"), 1)]).is_ok());
        assert!(check_limits(&[limit("D", None, 1), limit("D", None, 2)]).is_ok(), "the lower holds");
        let err = |l: Vec<ConcurrencyLimit>| check_limits(&l).unwrap_err();
        assert_eq!(err(vec![limit("Download", None, 0)]), "limit 0: max must be 1 to 1000000, got 0");
        assert!(err(vec![limit("D", Some("host"), 1)]).contains("is not a JSON pointer"));
        assert!(err(vec![limit("", None, 1)]).starts_with("limit 0: the task name must be 1 to 256"));
        assert!(err(vec![limit("D", None, 1); 33]).starts_with("a cluster has at most 32"));
    }
}
