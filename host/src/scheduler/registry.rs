//! The task-type registry: which module implements which task type versions,
//! and which implementation a submitted version runs on.

use std::collections::{BTreeMap, HashMap};

use crate::model::{Digest, TaskLimits, TaskType, Version};

/// Registered implementations, by task name and version.
#[derive(Default, Debug)]
pub struct Registry {
    by_name: HashMap<String, BTreeMap<Version, Digest>>,
    limits: HashMap<Digest, TaskLimits>,
}

impl Registry {
    /// Sets the limits the task types of module `digest` run under.
    pub fn set_limits(&mut self, digest: Digest, limits: TaskLimits) {
        self.limits.insert(digest, limits);
    }

    /// The limits of module `digest` (the host's defaults when none were set).
    pub fn limits(&self, digest: &Digest) -> TaskLimits {
        self.limits.get(digest).cloned().unwrap_or_default()
    }

    /// Registers `digest` as the implementation of `task_type`; a re-upload of
    /// the same version replaces the earlier implementation.
    pub fn register(&mut self, task_type: &TaskType, digest: Digest) {
        self.by_name.entry(task_type.name.clone()).or_default().insert(task_type.version, digest);
    }

    /// The newest implementation that may run `requested`: same major version,
    /// minor at least as new.
    pub fn resolve(&self, requested: &TaskType) -> Option<(Version, Digest)> {
        let versions = self.by_name.get(&requested.name)?;
        let newest_of_major = Version { major: requested.version.major, minor: u32::MAX };
        versions
            .range(requested.version..=newest_of_major)
            .next_back()
            .filter(|(v, _)| v.can_run(requested.version))
            .map(|(v, d)| (*v, *d))
    }

    /// Every registered task type with its module, sorted by name and version.
    pub fn entries(&self) -> Vec<(TaskType, Digest)> {
        let mut out: Vec<_> = self
            .by_name
            .iter()
            .flat_map(|(name, versions)| {
                versions.iter().map(|(v, d)| (TaskType { name: name.clone(), version: *v }, *d))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_newest_compatible_version() {
        let mut r = Registry::default();
        let t = |s: &str| TaskType::parse(s).unwrap();
        r.register(&t("Print@v1.0"), Digest([1; 32]));
        r.register(&t("Print@v1.1"), Digest([2; 32]));
        r.register(&t("Print@v2.0"), Digest([3; 32]));
        assert_eq!(r.resolve(&t("Print@v1.0")).unwrap().1, Digest([2; 32]));
        assert_eq!(r.resolve(&t("Print@v1.1")).unwrap().1, Digest([2; 32]));
        assert!(r.resolve(&t("Print@v1.2")).is_none());
        assert_eq!(r.resolve(&t("Print@v2.0")).unwrap().1, Digest([3; 32]));
        assert!(r.resolve(&t("Print@v0.0")).is_none());
        assert!(r.resolve(&t("Other")).is_none());
    }
}
