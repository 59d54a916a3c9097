//! A definition's dependencies in the compact form new definitions are
//! written in. The subtasks of one attempt have consecutive ids
//! ([`TaskId::block`]), so each dependency is the first id of that block
//! plus the handle the parent submitted it under, and a task's handles are
//! kept as runs of consecutive ones: the 100 dependencies of a task in a
//! dense job take a few bytes instead of 1,600, and a reducer over 100,000
//! leaves takes as few. Definitions whose dependencies are not offsets from
//! one block (written by hosts that numbered subtasks one by one) keep the
//! explicit list.

use super::Error;
use crate::model::TaskId;

/// The most dependencies one packed list may expand to: a corrupt record
/// cannot make a read allocate without bound.
const MAX_EXPANDED: usize = 1 << 24;

/// Dependencies as the first id of their block and runs of handles
/// `(first, count)`, in the order the parent named them.
pub type Packed = ([u8; 16], Vec<(u32, u32)>);

/// `depends_on`, named by `handles` (same order), packed: `None` when they
/// are not one block's ids at those offsets.
pub fn pack(depends_on: &[TaskId], handles: &[u32]) -> Option<Packed> {
    let (&first, &first_handle) = (depends_on.first()?, handles.first()?);
    if depends_on.len() != handles.len() {
        return None;
    }
    let base = first.minus(first_handle)?;
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for (&dep, &handle) in depends_on.iter().zip(handles) {
        if base.offset(handle) != Some(dep) {
            return None;
        }
        match runs.last_mut() {
            Some((start, count)) if start.checked_add(*count) == Some(handle) => *count += 1,
            _ => runs.push((handle, 1)),
        }
    }
    Some((*base.as_bytes(), runs))
}

/// The dependencies and handles `packed` stands for.
pub fn unpack(packed: &Packed) -> Result<(Vec<TaskId>, Vec<u32>), Error> {
    let corrupt = |reason: &str| Error::Corrupt { what: "def", reason: reason.to_owned() };
    let total = packed.1.iter().try_fold(0usize, |sum, &(_, n)| sum.checked_add(n as usize));
    let total = total.filter(|t| *t <= MAX_EXPANDED).ok_or_else(|| corrupt("too many dependencies"))?;
    let base = TaskId::from_bytes(packed.0);
    let (mut ids, mut handles) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for &(start, count) in &packed.1 {
        for handle in start..start.checked_add(count).ok_or_else(|| corrupt("a run past u32"))? {
            ids.push(base.offset(handle).ok_or_else(|| corrupt("a handle past its block"))?);
            handles.push(handle);
        }
    }
    Ok((ids, handles))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any list of distinct handles of one block packs and unpacks to
        /// itself, in its order; consecutive handles share a run.
        #[test]
        fn handles_of_one_block_round_trip(raw in prop::collection::vec(0u32..3000, 1..300)) {
            let mut seen = std::collections::HashSet::new();
            let handles: Vec<u32> = raw.into_iter().filter(|h| seen.insert(*h)).collect();
            let block = TaskId::block(3000);
            let deps: Vec<TaskId> = handles.iter().map(|&h| block[h as usize]).collect();
            let packed = pack(&deps, &handles).expect("one block");
            let breaks = handles.windows(2).filter(|w| w[1] != w[0] + 1).count();
            prop_assert_eq!(packed.1.len(), breaks + 1);
            prop_assert_eq!(unpack(&packed).unwrap(), (deps, handles));
        }
    }

    #[test]
    fn a_dense_window_is_one_run() {
        let block = TaskId::block(200);
        let handles: Vec<u32> = (50..150).collect();
        let deps: Vec<TaskId> = block[50..150].to_vec();
        let packed = pack(&deps, &handles).unwrap();
        assert_eq!((packed.0, packed.1.as_slice()), (*block[0].as_bytes(), &[(50, 100)][..]));
    }

    #[test]
    fn ids_of_no_single_block_stay_explicit() {
        let (a, b) = (TaskId::new(), TaskId::new());
        assert_eq!(pack(&[a, b], &[0, 1]), None);
        assert_eq!(pack(&[], &[]), None);
        let block = TaskId::block(4);
        assert_eq!(pack(&block[..2], &[0]), None, "lists of different lengths");
        assert_eq!(pack(&block[..2], &[1, 0]), None, "handles that are not the offsets");
    }

    #[test]
    fn a_corrupt_list_is_refused_not_expanded() {
        let base = *TaskId::block(1)[0].as_bytes();
        assert!(unpack(&(base, vec![(0, u32::MAX), (0, u32::MAX)])).is_err());
        assert!(unpack(&(base, vec![(u32::MAX, 2)])).is_err());
        assert!(unpack(&(base, vec![(1 << 24, 1)])).is_err());
    }
}
