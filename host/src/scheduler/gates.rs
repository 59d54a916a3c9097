//! Concurrency limits in the writer: running attempts counted per group (a
//! cluster's limit and, for a keyed limit, the value of the key), and the
//! ready tasks that would go over a limit parked per group, out of the
//! ready queue, so they hold no runner and block no other task. When an
//! attempt of a group ends (reported, handed back or lost), parked tasks
//! of the group go back to the front of the ready queue, as many as there
//! is room for.
//!
//! Counts live in memory only: at start every attempt that was running is
//! queued again, so they start from zero.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::model::{ConcurrencyLimit, TaskKey};

/// One limit's group: the cluster, the limit (task type and key pointer),
/// and the key's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    cluster: String,
    task: String,
    key: Option<String>,
    value: String,
}

#[derive(Default)]
struct Counted {
    running: u32,
    parked: VecDeque<TaskKey>,
}

/// Running counts and parked tasks of every limited group.
#[derive(Default)]
pub struct Gates {
    groups: HashMap<Group, Counted>,
    /// The groups each running attempt counts in.
    held: HashMap<TaskKey, Vec<Group>>,
}

impl Gates {
    /// The groups a task of type `task` with `input` counts in on
    /// `cluster`, or the first full one (where it must wait).
    pub fn admit(
        &self,
        limits: &[ConcurrencyLimit],
        cluster: &str,
        task: &str,
        input: &str,
    ) -> Result<Vec<Group>, Group> {
        let mut groups = Vec::new();
        for limit in limits.iter().filter(|l| l.task == task) {
            let group = Group {
                cluster: cluster.to_owned(),
                task: limit.task.clone(),
                key: limit.key.clone(),
                value: limit.group_of(input),
            };
            if self.groups.get(&group).is_some_and(|g| g.running >= limit.max) {
                return Err(group);
            }
            // Two limits of one task and key make one group (the lower holds).
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        Ok(groups)
    }

    /// Counts the attempt of `key` that started in `groups`.
    pub fn hold(&mut self, key: TaskKey, groups: Vec<Group>) {
        if groups.is_empty() {
            return;
        }
        for g in &groups {
            self.groups.entry(g.clone()).or_default().running += 1;
        }
        self.held.insert(key, groups);
    }

    /// Parks `key` until its group has room.
    pub fn park(&mut self, group: Group, key: TaskKey) {
        self.groups.entry(group).or_default().parked.push_back(key);
    }

    /// The attempt of `key` ended. Answers the parked tasks that have room
    /// now (with their cluster), given the clusters' current limits.
    pub fn release(
        &mut self,
        key: TaskKey,
        limits_of: impl Fn(&str) -> Option<Arc<Vec<ConcurrencyLimit>>>,
    ) -> Vec<(String, TaskKey)> {
        let Some(groups) = self.held.remove(&key) else { return Vec::new() };
        let mut ready = Vec::new();
        for group in groups {
            let Some(counted) = self.groups.get_mut(&group) else { continue };
            counted.running = counted.running.saturating_sub(1);
            let limits = limits_of(&group.cluster).unwrap_or_default();
            let matching = limits.iter().filter(|l| l.task == group.task && l.key == group.key);
            let max = matching.map(|l| l.max).min().unwrap_or(u32::MAX);
            let room = max.saturating_sub(counted.running) as usize;
            let n = room.min(counted.parked.len());
            ready.extend(counted.parked.drain(..n).map(|k| (group.cluster.clone(), k)));
            if counted.running == 0 && counted.parked.is_empty() {
                self.groups.remove(&group);
            }
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobId, TaskId};

    fn key() -> TaskKey {
        TaskKey { job: JobId::new(), task: TaskId::new() }
    }

    #[test]
    fn a_full_group_parks_tasks_and_an_ending_attempt_lets_one_in() {
        let limits = vec![ConcurrencyLimit { task: "Download".into(), key: Some("/host".into()), max: 1 }];
        let mut gates = Gates::default();
        let (a, b, c) = (key(), key(), key());
        let groups = gates.admit(&limits, "default", "Download", r#"{"host":"x"}"#).unwrap();
        gates.hold(a, groups);
        let full = gates.admit(&limits, "default", "Download", r#"{"host":"x"}"#).unwrap_err();
        gates.park(full, b);
        // Another host, and another task type, are not held back.
        assert_eq!(gates.admit(&limits, "default", "Download", r#"{"host":"y"}"#).unwrap().len(), 1);
        assert!(gates.admit(&limits, "default", "Parse", "{}").unwrap().is_empty());
        assert!(
            gates.release(c, |_| Some(Arc::new(limits.clone()))).is_empty(),
            "an attempt in no group frees nothing"
        );
        assert_eq!(gates.release(a, |_| Some(Arc::new(limits.clone()))), vec![("default".to_owned(), b)]);
        assert!(gates.groups.is_empty() || gates.groups.values().all(|g| g.parked.is_empty()));
    }
}
