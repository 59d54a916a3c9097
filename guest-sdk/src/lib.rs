//! Write Sandflow tasks in Rust.
//!
//! A task type is a serde struct (its fields are the task's input) that
//! derives [`TaskType`] (its name and version) and implements [`Task`]. One call to [`export_tasks!`] names the task types a
//! crate provides; built with `cargo build --target wasm32-wasip2`, the crate is
//! a component that the Sandflow host accepts at `POST /v1/modules`.
//!
//! ```
//! use sandflow_sdk::{Context, Error, Task, TaskType};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, TaskType)]
//! struct MoviesStats {
//!     titles: Vec<String>,
//! }
//!
//! impl Task for MoviesStats {
//!     type Output = ();
//!
//!     fn execute(&self, ctx: &Context) -> Result<(), Error> {
//!         ctx.set_display(format!("MoviesStats({})", self.titles.len()));
//!         for title in &self.titles {
//!             ctx.submit_subtask(&PrintMovieStats { title: title.clone() })?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[derive(Serialize, Deserialize, TaskType)]
//! #[task(version = "v1.1")]
//! struct PrintMovieStats {
//!     title: String,
//! }
//!
//! impl Task for PrintMovieStats {
//!     type Output = ();
//!
//!     fn execute(&self, ctx: &Context) -> Result<(), Error> {
//!         let _span = ctx.span("lookup").attr("movie.title", &self.title).enter();
//!         if self.title.is_empty() {
//!             return Err("a movie needs a title".into());
//!         }
//!         ctx.info("movie looked up").field("title", &self.title);
//!         Ok(())
//!     }
//! }
//!
//! sandflow_sdk::export_tasks!(MoviesStats, PrintMovieStats);
//! # fn main() {}
//! ```
//!
//! Subtasks run only after the submitting task returns `Ok`; if it fails (an
//! `Err` or a panic), the subtasks it submitted are discarded, and a retried
//! attempt submits its own afresh.
//!
//! What `execute` returns is the task's output ([`Task::Output`], written as
//! JSON; `()` leaves none). A task reads the outputs of the tasks it depends
//! on with [`Context::output_of`], naming each by the [`SubtaskHandle`] its
//! parent got when submitting it (handles serialize, so the parent passes
//! them in the dependent's input), or all of them with
//! [`Context::dependency_outputs`]; [`Context::output_from`] makes a task's
//! output that of one of its subtasks. See `examples/wordcount`.
//!
//! [`Context::cache`] is the job's cache: byte values under string keys
//! that every task of the job can put, get, list and delete, for data
//! larger than an input or an output (up to 64 MiB a value by default).

// `#[derive(TaskType)]` names `::sandflow_sdk`, also in this crate's own tests.
extern crate self as sandflow_sdk;

mod cache;
mod calls;
mod context;
mod error;
mod export;
#[cfg(feature = "http")]
pub mod http;
mod outputs;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
#[cfg(feature = "tracing")]
mod trace;

pub use cache::{Cache, CacheReader, CacheWriter};
pub use context::{
    Backoff, Context, Level, LogRecord, Progress, SpanBuilder, SpanGuard, SubtaskBuilder, SubtaskHandle,
};
pub use error::{Error, ResultExt};
pub use sandflow_sdk_derive::TaskType;
pub use serde;
pub use serde_json;

/// The bindings generated from Sandflow's WIT world. Task authors do not need
/// them; they are public for [`export_tasks!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "task-component",
        pub_export_macro: true,
        export_macro_name: "__export_task_component",
        default_bindings_module: "sandflow_sdk::bindings",
    });
}

#[doc(hidden)]
pub use export::{__execute, __task_types};

use serde::{Serialize, de::DeserializeOwned};

/// A task type's registered name and version. Derive it:
/// `#[derive(TaskType)]` takes the struct's identifier as the name (moving
/// the struct never changes it), and `#[task(name = "...", version =
/// "vMAJOR.MINOR")]` sets either; both are checked when the crate compiles
/// (a name of 1 to 256 bytes, a well-formed version; `v0.0` unless given).
pub trait TaskType {
    /// The task type's name, unique within a host's registry.
    const NAME: &'static str;
    /// The task type's version, `vMAJOR.MINOR`.
    const VERSION: &'static str;
}

/// A task type: its fields are its input, [`Task::execute`] is its code.
pub trait Task: TaskType + Serialize + DeserializeOwned {
    /// What the task leaves for the tasks that depend on it, written as
    /// JSON: `()` for nothing (see [`Context::output_of`] and
    /// [`Context::output_from`]).
    type Output: Serialize;

    /// Runs the task. An `Err` fails the attempt with its message; `Ok` is
    /// its output.
    fn execute(&self, ctx: &Context) -> Result<Self::Output, Error>;
}
