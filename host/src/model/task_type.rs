//! Task types: a name and a `vMAJOR.MINOR` version, and version compatibility.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest task type name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Why a task type or version was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskTypeError {
    /// The name is empty or too long.
    #[error("task type name must be 1 to {MAX_NAME_BYTES} bytes, got {0}")]
    NameLength(usize),
    /// The name holds a character reserved for the `name@version` notation.
    #[error("task type name `{0}` must not contain `@` or control characters")]
    NameCharacters(String),
    /// The version is not `vMAJOR.MINOR`.
    #[error("version `{0}` is not of the form vMAJOR.MINOR (for example v1.0)")]
    Version(String),
}

/// A task type version, `vMAJOR.MINOR`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Version {
    /// Incompatible changes bump the major version.
    pub major: u32,
    /// Compatible changes bump the minor version.
    pub minor: u32,
}

impl Version {
    /// Whether an implementation of version `self` may run a task submitted as
    /// `requested`: same major, and a minor at least as new.
    pub fn can_run(self, requested: Version) -> bool {
        self.major == requested.major && self.minor >= requested.minor
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

impl FromStr for Version {
    type Err = TaskTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TaskTypeError::Version(s.chars().take(64).collect());
        let (major, minor) = s.strip_prefix('v').and_then(|rest| rest.split_once('.')).ok_or_else(bad)?;
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<u32>().map_err(|_| bad())
        };
        Ok(Version { major: number(major)?, minor: number(minor)? })
    }
}

/// Identifies a task type: its name and version.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct TaskType {
    /// 1 to 256 bytes.
    pub name: String,
    /// The version.
    pub version: Version,
}

impl TaskType {
    /// A checked task type.
    pub fn new(name: &str, version: &str) -> Result<Self, TaskTypeError> {
        check_name(name)?;
        Ok(TaskType { name: name.to_owned(), version: version.parse()? })
    }

    /// Parses `name` or `name@vX.Y` (the version defaults to `v0.0`).
    pub fn parse(spec: &str) -> Result<Self, TaskTypeError> {
        match spec.rsplit_once('@') {
            Some((name, version)) => TaskType::new(name, version),
            None => TaskType::new(spec, "v0.0"),
        }
    }
}

fn check_name(name: &str) -> Result<(), TaskTypeError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(TaskTypeError::NameLength(name.len()));
    }
    if name.chars().any(|c| c == '@' || c.is_control()) {
        return Err(TaskTypeError::NameCharacters(name.chars().take(64).collect()));
    }
    Ok(())
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_strictly() {
        assert_eq!("v1.2".parse::<Version>().unwrap(), Version { major: 1, minor: 2 });
        for bad in ["1.2", "v1", "v1.", "v.1", "v1.2.3", "v-1.2", "v1.+2", "", "v99999999999.0"] {
            assert!(bad.parse::<Version>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn compatibility_is_same_major_and_newer_minor() {
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(v("v1.3").can_run(v("v1.2")));
        assert!(v("v1.2").can_run(v("v1.2")));
        assert!(!v("v1.1").can_run(v("v1.2")));
        assert!(!v("v2.5").can_run(v("v1.2")));
    }

    #[test]
    fn task_type_names_are_bounded() {
        assert!(TaskType::parse("Leaf").is_ok());
        assert_eq!(TaskType::parse("Leaf@v1.1").unwrap().version, Version { major: 1, minor: 1 });
        assert!(TaskType::parse("").is_err());
        assert!(TaskType::parse(&"x".repeat(257)).is_err());
        assert!(TaskType::parse("a\nb").is_err());
    }
}
