//! Clusters: named pools of runners. Every task runs on a runner of its
//! cluster; `default` always exists.

use super::task::check_cluster;

/// The cluster that always exists and cannot be deleted.
pub const DEFAULT_CLUSTER: &str = "default";

/// Longest cluster name or description kept.
pub const MAX_CLUSTER_TEXT: usize = 1000;

/// A cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// Its id in URLs, jobs and subtasks: `[A-Za-z0-9-]`, at most 100.
    pub slug: String,
    /// Its name for people.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// When it was created (Unix ms).
    pub created_ms: u64,
    /// Its concurrency limits.
    pub limits: Vec<super::ConcurrencyLimit>,
}

impl Cluster {
    /// The built-in `default` cluster.
    pub fn default_cluster() -> Self {
        Cluster {
            slug: DEFAULT_CLUSTER.into(),
            name: "Default".into(),
            description: "Runs every task that names no cluster.".into(),
            created_ms: 0,
            limits: Vec::new(),
        }
    }
}

/// A slug for `name`: its letters and digits lowercased, other runs of
/// characters as `-`, then `-` and `suffix` (a short random string).
pub fn slug_from(name: &str, suffix: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let base: String = slug.trim_end_matches('-').chars().take(90).collect();
    let slug = if base.is_empty() { format!("cluster-{suffix}") } else { format!("{base}-{suffix}") };
    debug_assert!(check_cluster(&slug).is_ok());
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_letters_and_digits() {
        assert_eq!(slug_from("GPU Pool #2 (east)", "x1y2"), "gpu-pool-2-east-x1y2");
        assert_eq!(slug_from("¡¡¡", "abc"), "cluster-abc");
        assert!(slug_from(&"a".repeat(500), "z").len() <= 100);
    }
}
