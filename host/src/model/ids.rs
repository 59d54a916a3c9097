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
/// Ids in one block ([`TaskId::block`]) differ in their low 24 bits only.
const BLOCK_BITS: u32 = 24;

/// The most ids one block holds.
const MAX_BLOCK: usize = 1 << BLOCK_BITS;

impl TaskId {
    /// `n` new ids that are consecutive 128-bit numbers (each
    /// 2^24 of them; a larger `n` takes several blocks), in time
    /// order like any other: a block's first id is a version 7 id of this
    /// millisecond with 50 random bits and its low 24 bits zero. A list of
    /// them is stored as offsets from the first.
    pub fn block(n: usize) -> Vec<TaskId> {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            let first = Self::block_start();
            let len = (n - ids.len()).min(MAX_BLOCK) as u128;
            ids.extend((0..len).map(|i| TaskId(Uuid::from_u128(first + i))));
        }
        ids
    }

    fn block_start() -> u128 {
        let random: [u8; 16] = *Uuid::new_v4().as_bytes();
        let random: [u8; 10] = random[..10].try_into().expect("10 bytes");
        let id = uuid::Builder::from_unix_timestamp_millis(super::now_ms(), &random).into_uuid();
        id.as_u128() & !((1u128 << BLOCK_BITS) - 1)
    }

    /// The id `by` past this one, within its block's reach.
    pub fn offset(self, by: u32) -> Option<TaskId> {
        let id = self.0.as_u128().checked_add(u128::from(by))?;
        (by < 1 << BLOCK_BITS).then(|| TaskId(Uuid::from_u128(id)))
    }

    /// The first id of the block this id would belong to, and its offset
    /// in it (an id not made by [`TaskId::block`] is still split so, but
    /// shares its block with no other id).
    pub fn in_block(self) -> (TaskId, u32) {
        let id = self.0.as_u128();
        let low = (1u128 << BLOCK_BITS) - 1;
        (TaskId(Uuid::from_u128(id & !low)), (id & low) as u32)
    }

    /// The id `by` before this one, within a block's reach.
    pub fn minus(self, by: u32) -> Option<TaskId> {
        let id = self.0.as_u128().checked_sub(u128::from(by))?;
        (by < 1 << BLOCK_BITS).then(|| TaskId(Uuid::from_u128(id)))
    }
}

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
    fn a_block_is_consecutive_time_ordered_and_apart_from_the_next() {
        let before = TaskId::new();
        let block = TaskId::block(1000);
        let next = TaskId::block(3);
        assert_eq!(block.len(), 1000);
        for (i, id) in block.iter().enumerate() {
            assert_eq!(block[0].offset(i as u32), Some(*id));
            assert_eq!(id.in_block(), (block[0], i as u32));
            assert_eq!(id.created_ms(), block[0].created_ms());
            assert_eq!(id.0.get_version_num(), 7);
            assert!(!next.contains(id));
        }
        assert!(block.is_sorted());
        assert!(before.created_ms() <= block[0].created_ms());
        assert_eq!(block[3].minus(3), Some(block[0]));
        assert_eq!(block[0].offset(1 << BLOCK_BITS), None);
        assert_ne!(before.in_block().0, block[0]);
        assert_eq!(block[999].in_block(), (block[0], 999));
        assert_ne!(next[0].in_block().0, block[0]);
    }

    #[test]
    fn lower_bound_orders_with_created_time() {
        let id = JobId::new();
        let ms = id.created_ms();
        assert!(JobId::lower_bound_at(ms) <= id);
        assert!(JobId::lower_bound_at(ms + 1) > id);
    }
}
