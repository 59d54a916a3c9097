//! The host calls every other module of the SDK makes, with the signatures
//! of the WIT bindings. In a component they are the WIT imports; natively
//! (a task's unit tests) they go to the recorder that
//! [`testing::run`](crate::testing) installs for one execution, so a task
//! runs through the same code in both.

#[cfg(target_arch = "wasm32")]
pub(crate) use crate::bindings::sandflow::task::cache::{Reader, Writer, contains, delete, get, list, put};
#[cfg(target_arch = "wasm32")]
pub(crate) use crate::bindings::sandflow::task::host::{
    current, dependencies, log, mark_permanent, output_of, progress, secret, set_display, span_enter,
    span_exit, span_set, submit_subtask,
};

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::calls::*;
