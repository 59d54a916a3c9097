//! Copying a whole store to another, empty one (`sandflow store copy`):
//! every key and value as stored, so jobs, tasks, logs, outputs, modules,
//! clusters, automations and sealed secrets arrive as they were, between
//! either backend. Module bytes are written before the record that names
//! them, as uploads do.

use super::kv::{KvWrite, prefix_end};
use super::{Error, Store, keys};
use crate::model::Digest;

/// Bytes of keys and values per applied group.
const GROUP_BYTES: usize = 4 << 20;
/// Bytes after which the destination moves what it holds in memory to its
/// final place, so a copy of any size runs in bounded memory.
const CHECKPOINT_BYTES: usize = 64 << 20;

/// What a copy moved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Keys written.
    pub keys: u64,
    /// Bytes of those keys and values.
    pub bytes: u64,
    /// Modules whose bytes were copied.
    pub modules: u64,
}

impl Store {
    /// Copies everything in this store into `to`, which must hold nothing
    /// yet (a store just created); `to` keeps its own layout version and
    /// the larger of the two start counts.
    pub fn copy_to(&self, to: &Store) -> Result<Copied, Error> {
        ensure_empty(to)?;
        let (mut copied, mut group, mut group_bytes, mut since_checkpoint) =
            (Copied::default(), Vec::new(), 0, 0);
        for item in self.kv.range((std::ops::Bound::Unbounded, std::ops::Bound::Unbounded), false) {
            let (key, value) = item?;
            if key.first() == Some(&keys::META) {
                continue;
            }
            if key.first() == Some(&keys::MODULE) {
                let digest = Digest(key[1..].try_into().map_err(|_| super::corrupt_key("module"))?);
                let bytes = self.kv.read_module(&digest)?.ok_or_else(|| Error::Corrupt {
                    what: "module",
                    reason: format!("the bytes of module {digest} are missing"),
                })?;
                to.kv.write_module(&digest, &bytes)?;
                copied.modules += 1;
            }
            let size = key.len() + value.len();
            (copied.keys, copied.bytes) = (copied.keys + 1, copied.bytes + size as u64);
            (group_bytes, since_checkpoint) = (group_bytes + size, since_checkpoint + size);
            group.push((key.to_vec(), Some(value.to_vec())));
            if group_bytes >= GROUP_BYTES {
                to.kv.apply(vec![std::mem::take(&mut group)])?;
                group_bytes = 0;
            }
            if since_checkpoint >= CHECKPOINT_BYTES {
                to.kv.checkpoint()?;
                since_checkpoint = 0;
            }
        }
        to.kv.apply(vec![group, vec![epoch_write(self, to)]])?;
        to.kv.checkpoint()?;
        Ok(copied)
    }
}

/// Fails unless `store` holds nothing but its own meta keys.
fn ensure_empty(store: &Store) -> Result<(), Error> {
    let past_meta = (prefix_end(&[keys::META]), std::ops::Bound::Unbounded);
    let before_meta = (std::ops::Bound::Unbounded, std::ops::Bound::Excluded(vec![keys::META]));
    let mut any = store.kv.range(before_meta, false).chain(store.kv.range(past_meta, false));
    match any.next().transpose()? {
        None => Ok(()),
        Some(_) => Err(Error::NotEmpty),
    }
}

/// The destination's start count: the larger of the two stores'.
fn epoch_write(from: &Store, to: &Store) -> KvWrite {
    (keys::meta("epoch"), Some(from.epoch.max(to.epoch).to_be_bytes().to_vec()))
}
