//! What a component answers to `task-types`, bounded before it is copied out
//! of guest memory.
//!
//! A return value is lifted by wasmtime before the guest's post-return frees
//! it, so a lazy view (`WasmList`, `WasmStr`) is not valid afterwards: the
//! bounds have to be applied while the list is lifted. [`Listed`] lifts like
//! `list<task-type>`, but first reads the list's length and the length of
//! every name and version from guest memory; only a list within
//! [`LISTED_MAX`] entries whose strings are within a task type's bounds is
//! copied. So an upload of a component claiming a million task types, or
//! names of a gigabyte, costs the host a scan of its length fields.
//!
//! This implements wasmtime's lifting traits, whose items are hidden from
//! its documentation (they are what `bindgen!` generates); every item
//! delegates to wasmtime's own implementation for `Vec<task-type>`.

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};

use super::bindings::sandflow::task::types::TaskType as GuestTaskType;
use crate::model::MAX_NAME_BYTES;

/// The most task types any host lets a module implement (what
/// `serve --limit task_types=N` may raise the default to).
pub const LISTED_MAX: usize = 10_000;

/// The bytes of one `task-type` record in guest memory: two (ptr, len) pairs.
const RECORD_BYTES: usize = 16;

/// The answer of `task-types`.
pub enum Listed {
    /// The task types as the guest wrote them.
    Types(Vec<GuestTaskType>),
    /// More than [`LISTED_MAX`] entries; none were copied.
    TooMany(usize),
    /// Entry `index` has a name or version over [`MAX_NAME_BYTES`]
    /// (counted in the string's code units); none were copied.
    TooLong { index: usize },
}

type AsList = Vec<GuestTaskType>;

// SAFETY: the representation, ABI and type check are those of
// `Vec<task-type>`, which `Lift` below lifts through.
unsafe impl ComponentType for Listed {
    type Lower = <AsList as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <AsList as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <AsList as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: every value is lifted by `Vec<task-type>`'s own implementation;
// the guest memory read before is bounds-checked.
unsafe impl Lift for Listed {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let (ptr, len) = (src[0].get_u32() as usize, src[1].get_u32() as usize);
        match refusal(cx.memory(), ptr, len) {
            Some(refused) => Ok(refused),
            None => AsList::linear_lift_from_flat(cx, ty, src).map(Listed::Types),
        }
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let word = |i: usize| bytes.get(i..i + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        match refusal(cx.memory(), word(0) as usize, word(4) as usize) {
            Some(refused) => Ok(refused),
            None => AsList::linear_lift_from_memory(cx, ty, bytes).map(Listed::Types),
        }
    }
}

/// Why the list of `len` records at `ptr` is not copied, if it is not. A
/// list outside memory is left to the lift, which refuses it.
fn refusal(memory: &[u8], ptr: usize, len: usize) -> Option<Listed> {
    if len > LISTED_MAX {
        return Some(Listed::TooMany(len));
    }
    let records = memory.get(ptr..ptr.checked_add(len * RECORD_BYTES)?)?;
    // A length's top bit tags UTF-16 in the latin1+utf16 encoding.
    let units = |b: &[u8]| (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff) as usize;
    records
        .chunks_exact(RECORD_BYTES)
        .position(|r| units(&r[4..8]) > MAX_NAME_BYTES || units(&r[12..16]) > MAX_NAME_BYTES)
        .map(|index| Listed::TooLong { index })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name_len: u32, version_len: u32) -> Vec<u8> {
        [0u32, name_len, 0, version_len].iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn long_lists_are_refused_before_memory_is_read() {
        assert!(matches!(refusal(&[], 0, LISTED_MAX + 1), Some(Listed::TooMany(n)) if n == LISTED_MAX + 1));
    }

    #[test]
    fn long_names_are_found_by_their_length_fields() {
        let mut memory = record(5, 4);
        memory.extend(record(MAX_NAME_BYTES as u32 + 1, 4));
        assert!(refusal(&memory, 0, 1).is_none());
        assert!(matches!(refusal(&memory, 0, 2), Some(Listed::TooLong { index: 1 })));
        // A UTF-16 tag is not a length.
        let tagged = record(0x8000_0005, 4);
        assert!(refusal(&tagged, 0, 1).is_none());
        // Out of memory: the lift refuses it.
        assert!(refusal(&memory, 16, 2).is_none());
    }
}
