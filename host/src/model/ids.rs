//! Job, task and automation identifiers: UUIDv7, so their byte order is their time order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A parse failure of a job or task id.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a valid id: expected a UUID such as 018dd029-58ca-74e5-8b58-b4f99d610f9a")]
pub struct ParseIdError(pub String);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }

            /// The id whose 16 bytes are `bytes`.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(Uuid::from_bytes(bytes))
            }

            /// The id's 16 bytes, in time order.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// The smallest id created at or after `ms` (Unix milliseconds).
            pub fn lower_bound_at(ms: u64) -> Self {
                let mut bytes = [0u8; 16];
                bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
                $name(Uuid::from_bytes(bytes))
            }

            /// The creation time in Unix milliseconds.
            pub fn created_ms(&self) -> u64 {
                let mut ms = [0u8; 8];
                ms[2..].copy_from_slice(&self.0.as_bytes()[..6]);
                u64::from_be_bytes(ms)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Only the hyphenated form, the one the host writes.
                match Uuid::try_parse(s) {
                    Ok(id) if s.len() == 36 => Ok($name(id)),
                    _ => Err(ParseIdError(s.chars().take(64).collect())),
                }
            }
        }
    };
}

uuid_id!(
    /// Identifies a job. Time-ordered: a range of ids is a range of submission times.
    JobId
);
uuid_id!(
    /// Identifies a task within the whole host.
    TaskId
);
uuid_id!(
    /// Identifies an automation (a schedule that submits jobs).
    AutomationId
);

/// A task's full address: its job and its own id.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct TaskKey {
    /// The job the task belongs to.
    pub job: JobId,
    /// The task itself.
    pub task: TaskId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_order_by_time() {
        let a = JobId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = JobId::new();
        assert!(a.as_bytes() < b.as_bytes());
        assert_eq!(a.to_string().parse::<JobId>().unwrap(), a);
        assert!("nope".parse::<JobId>().is_err());
    }

    #[test]
    fn lower_bound_orders_with_created_time() {
        let id = JobId::new();
        let ms = id.created_ms();
        assert!(JobId::lower_bound_at(ms) <= id);
        assert!(JobId::lower_bound_at(ms + 1) > id);
    }
}
