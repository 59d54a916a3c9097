//! The in-memory table of recent writes, in two parts, which both backends
//! keep. The active part takes every applied group. A checkpoint (`local.rs`)
//! or a commit (`postgres/`) freezes it (a swap with an empty map, under the
//! lock for an instant), writes the frozen part to sled or the database
//! without holding any lock, and then drops it. Reads look at the active
//! part, then the frozen one, then the durable store.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

use itertools::{EitherOrBoth, Itertools};
use sled::IVec;

use super::Error;

/// A key and its latest value (`None`: deleted).
pub(super) type Pending = (IVec, Option<IVec>);

/// Keys and their latest values (`None`: deleted).
pub(super) type Map = BTreeMap<IVec, Option<IVec>>;

/// What an entry of `key_len` and `value_len` bytes counts (with the map's
/// own overhead).
pub(super) fn entry_size(key_len: usize, value_len: usize) -> usize {
    key_len + value_len + 48
}

/// A frozen part's entries and the log files that hold them.
pub(super) type FrozenPart = (Arc<Map>, Vec<PathBuf>);

/// The part a checkpoint is writing to sled, and the log files that hold
/// it (deleted once sled has it).
pub(super) struct Frozen {
    pub(super) map: Arc<Map>,
    pub(super) files: Vec<PathBuf>,
    bytes: usize,
}

/// The latest value of every key written since the last checkpoint.
#[derive(Default)]
pub(super) struct Table {
    active: Map,
    active_bytes: usize,
    frozen: Option<Frozen>,
    /// Groups put since start (replay counts them).
    pub(super) groups: u64,
}

impl Table {
    /// Puts one group's writes.
    pub(super) fn put_group(&mut self, group: impl IntoIterator<Item = Pending>) {
        self.groups += 1;
        for (key, value) in group {
            let (key_len, value_len) = (key.len(), value.as_ref().map_or(0, |v| v.len()));
            match self.active.insert(key, value) {
                Some(old) => self.active_bytes = self.active_bytes - old.map_or(0, |v| v.len()) + value_len,
                None => self.active_bytes += entry_size(key_len, value_len),
            }
        }
    }

    /// The table's latest value of `key`: `None` if the table does not
    /// know the key (sled has the answer), `Some(None)` if it was deleted.
    pub(super) fn get(&self, key: &[u8]) -> Option<Option<IVec>> {
        if let Some(v) = self.active.get(key) {
            return Some(v.clone());
        }
        self.frozen.as_ref()?.map.get(key).cloned()
    }

    /// The entries in `bounds`, deletions included, in key order (`rev`:
    /// descending); the active part wins over the frozen one.
    pub(super) fn range(&self, bounds: (Bound<&[u8]>, Bound<&[u8]>), rev: bool) -> Vec<Pending> {
        let active = self.active.range::<[u8], _>(bounds);
        let frozen = self.frozen.iter().flat_map(|f| f.map.range::<[u8], _>(bounds));
        let mut all: Vec<Pending> = active
            .merge_join_by(frozen, |(a, _), (f, _)| a.cmp(f))
            .map(|entry| match entry {
                EitherOrBoth::Left((k, v)) | EitherOrBoth::Both((k, v), _) | EitherOrBoth::Right((k, v)) => {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        if rev {
            all.reverse();
        }
        all
    }

    /// Bytes of the active part (what starts a checkpoint).
    pub(super) fn active_bytes(&self) -> usize {
        self.active_bytes
    }

    /// Bytes of both parts (what the writer's back-pressure counts).
    pub(super) fn bytes(&self) -> usize {
        self.active_bytes + self.frozen.as_ref().map_or(0, |f| f.bytes)
    }

    /// Entries in both parts (a key in both counts twice).
    pub(super) fn len(&self) -> usize {
        self.active.len() + self.frozen.as_ref().map_or(0, |f| f.map.len())
    }

    /// Nothing to checkpoint.
    pub(super) fn is_empty(&self) -> bool {
        self.active.is_empty() && self.frozen.is_none()
    }

    /// The frozen part, if a checkpoint has one (it failed, or runs).
    pub(super) fn frozen(&self) -> Option<FrozenPart> {
        self.frozen.as_ref().map(|f| (f.map.clone(), f.files.clone()))
    }

    /// Makes the active part the frozen one (there must be none) and starts
    /// an empty active part; `files` are the log files that hold it.
    pub(super) fn freeze(&mut self, files: Vec<PathBuf>) -> FrozenPart {
        assert!(self.frozen.is_none(), "one frozen part at a time");
        let map = Arc::new(std::mem::take(&mut self.active));
        let bytes = std::mem::take(&mut self.active_bytes);
        self.frozen = Some(Frozen { map: map.clone(), files: files.clone(), bytes });
        (map, files)
    }

    /// Drops the frozen part: sled holds it now.
    pub(super) fn release(&mut self) {
        self.frozen = None;
    }
}

/// The table's entries of a range (in scan order, from [`Table::range`])
/// merged with the durable ones of the same range and order, the table
/// winning on equal keys; deleted keys are skipped, the durable side's
/// errors passed on.
pub(super) fn merged<E>(
    mem: Vec<Pending>,
    durable: impl Iterator<Item = Result<(IVec, IVec), E>>,
    rev: bool,
) -> impl Iterator<Item = Result<(IVec, IVec), Error>>
where
    Error: From<E>,
{
    let order = move |(m, _): &Pending, d: &Result<(IVec, IVec), E>| match d {
        Err(_) => std::cmp::Ordering::Greater,
        Ok((d, _)) if rev => d.cmp(m),
        Ok((d, _)) => m.cmp(d),
    };
    mem.into_iter().merge_join_by(durable, order).filter_map(|entry| match entry {
        EitherOrBoth::Left((k, v)) | EitherOrBoth::Both((k, v), _) => v.map(|v| Ok((k, v))),
        EitherOrBoth::Right(d) => Some(d.map_err(Error::from)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(table: &mut Table, writes: &[(&str, Option<&str>)]) {
        table.put_group(
            writes.iter().map(|(k, v)| (IVec::from(k.as_bytes()), v.map(|v| IVec::from(v.as_bytes())))),
        );
    }

    fn keys(entries: &[Pending]) -> Vec<(String, Option<String>)> {
        let text = |b: &IVec| String::from_utf8(b.to_vec()).unwrap();
        entries.iter().map(|(k, v)| (text(k), v.as_ref().map(text))).collect()
    }

    #[test]
    fn the_active_part_wins_over_the_frozen_one() {
        let mut table = Table::default();
        put(&mut table, &[("a", Some("old")), ("b", Some("old")), ("c", Some("old"))]);
        let frozen_bytes = table.active_bytes();
        table.freeze(vec![]);
        assert_eq!((table.active_bytes(), table.bytes()), (0, frozen_bytes));
        put(&mut table, &[("b", Some("new")), ("c", None), ("d", Some("new"))]);
        assert_eq!(table.get(b"a"), Some(Some(IVec::from("old"))));
        assert_eq!(table.get(b"b"), Some(Some(IVec::from("new"))));
        assert_eq!(table.get(b"c"), Some(None), "deleted after the freeze");
        assert_eq!(table.get(b"e"), None, "unknown to the table");
        let all = (Bound::Unbounded, Bound::Unbounded);
        let want = [("a", Some("old")), ("b", Some("new")), ("c", None), ("d", Some("new"))]
            .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)));
        assert_eq!(keys(&table.range(all, false)), want);
        let mut reversed = want.to_vec();
        reversed.reverse();
        assert_eq!(keys(&table.range(all, true)), reversed);
        table.release();
        assert_eq!(table.get(b"a"), None);
        assert_eq!(table.len(), 3);
    }
}
