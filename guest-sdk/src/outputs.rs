//! Outputs: what a task leaves for the tasks that depend on it. A task's
//! output is what [`Task::execute`](crate::Task::execute) returns, as JSON
//! (`()` and `None` leave none), or, after [`Context::output_from`], that
//! subtask's. A task reads the outputs of its dependencies with
//! [`Context::output_of`].

use std::cell::Cell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::sandflow::task::types;
use crate::calls;
use crate::{Context, Error, SubtaskHandle};

thread_local! {
    /// The subtask whose output this execution leaves, if one was named.
    static FROM: Cell<Option<u32>> = const { Cell::new(None) };
}

impl Context {
    /// The tasks this one depends on, as the handles its parent submitted
    /// them under, in the order of its `depends_on`.
    pub fn dependencies(&self) -> Vec<SubtaskHandle> {
        calls::dependencies().into_iter().map(SubtaskHandle::from_raw).collect()
    }

    /// The output of the dependency its parent submitted as `handle` (its
    /// parent typically passes the handles in this task's input), read as
    /// `T`. A dependency that left no output reads as JSON `null` (so as
    /// `None` for an `Option`).
    pub fn output_of<T: DeserializeOwned>(&self, handle: SubtaskHandle) -> Result<T, Error> {
        let bytes = calls::output_of(handle.raw())?;
        let text = bytes.as_deref().unwrap_or(b"null");
        serde_json::from_slice(text).map_err(|e| {
            Error::from(format!("the output of dependency {} is not what was expected: {e}", handle.raw()))
        })
    }

    /// The outputs of every dependency, in `depends_on` order, read as `T`.
    pub fn dependency_outputs<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        self.dependencies().into_iter().map(|h| self.output_of(h)).collect()
    }

    /// Makes this task's output whatever `subtask` (submitted by this
    /// execution) leaves, e.g. the last step of a pipeline it submitted.
    /// `execute` must then return `()` (or `None`).
    pub fn output_from(&self, subtask: SubtaskHandle) {
        FROM.with(|f| f.set(Some(subtask.raw())));
    }
}

/// The WIT output of an execution that returned `value`.
pub(crate) fn output_of<O: Serialize>(value: &O) -> Result<types::Output, String> {
    let json =
        serde_json::to_vec(value).map_err(|e| format!("the task's output cannot be written as JSON: {e}"))?;
    let none = json == b"null";
    match FROM.with(Cell::take) {
        Some(_) if !none => {
            Err("the task returned an output and also named a subtask's with `output_from`".into())
        }
        Some(handle) => Ok(types::Output::OfSubtask(handle)),
        None if none => Ok(types::Output::None),
        None => Ok(types::Output::Bytes(json)),
    }
}

/// Forgets a subtask named by an execution that then failed.
pub(crate) fn reset() {
    FROM.with(|f| f.set(None));
}
