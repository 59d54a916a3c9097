//! Outputs: what a computed task leaves for the tasks that depend on it and
//! for the user. An attempt returns an [`Output`]; once it is computed the
//! store keeps a [`StoredOutput`] (a handle is resolved to its subtask's id
//! then), which never changes. Reading one follows `Of` links to the bytes.

use super::TaskId;

/// What an attempt returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// Nothing.
    #[default]
    None,
    /// Bytes (the SDKs write JSON).
    Bytes(Vec<u8>),
    /// Whatever the subtask this attempt submitted under this handle leaves.
    OfSubtask(u32),
    /// Bytes over [`MAX_TASK_OUTPUT_BYTES`], left in the guest's memory: only
    /// their length is known.
    TooLarge(usize),
}

/// The most `task_output_bytes` may be set to; longer outputs are not even
/// copied out of the guest.
pub const MAX_TASK_OUTPUT_BYTES: usize = 64 << 20;

/// A computed task's output as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredOutput {
    /// Bytes.
    Bytes(Vec<u8>),
    /// Whatever this subtask (a child of the task) leaves.
    Of(TaskId),
}

/// Longest chain of `Of` links followed when reading an output; a longer
/// one reads as no output (a task deeper than this in a delegation chain is
/// not a shape anyone builds on purpose).
pub const MAX_OUTPUT_LINKS: usize = 10_000;

/// Why an output cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// There is no such task.
    #[error("task {0} not found")]
    NotFound(TaskId),
    /// The task has not been computed.
    #[error("task {0} has not been computed")]
    NotComputed(TaskId),
    /// The task left no output.
    #[error("task {0} left no output")]
    None(TaskId),
}
