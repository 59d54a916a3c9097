//! Unit-test tasks natively, without a host: [`run`] executes a task with a
//! host that records what it does, through the same code a component runs.
//!
//! ```
//! use sandflow_sdk::testing::{self, Run};
//! # use sandflow_sdk::{Context, Error, Task, TaskType};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, TaskType)]
//! # struct Double { n: u32 }
//! # impl Task for Double {
//! #     type Output = u32;
//! #     fn execute(&self, ctx: &Context) -> Result<u32, Error> {
//! #         ctx.info("doubling").field("n", self.n);
//! #         Ok(self.n * 2)
//! #     }
//! # }
//! let done = testing::run(&Double { n: 21 });
//! assert_eq!(done.error, None);
//! assert_eq!(done.output, Some(serde_json::json!(42)));
//! assert_eq!(done.logs[0].message, "doubling");
//! let with_inputs = Run::new().secret("API_KEY", "k").cache_value("a", b"1").execute(&Double { n: 1 });
//! assert_eq!(with_inputs.cache["a"], b"1");
//! ```
//!
//! [`Run`] sets what the real host would hold: the outputs of the task's
//! dependencies (by handle), secrets, the job cache, the attempt number.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::sandflow::task::types::{Output, TaskType as WitTaskType};
use crate::{SubtaskHandle, Task};

pub(crate) mod calls;
#[cfg(test)]
mod tests;

/// A subtask the task submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// Its task type's name and version.
    pub name: String,
    pub version: String,
    /// Its input, as JSON.
    pub input: serde_json::Value,
    pub depends_on: Vec<SubtaskHandle>,
    pub max_retries: u32,
    pub cluster: Option<String>,
    /// Submitted as optional.
    pub optional: bool,
    /// Its backoff, as the host gets it: (initial ms, factor, max ms, jitter).
    pub backoff: Option<(u64, f64, u64, bool)>,
}

impl Submitted {
    /// The subtask as a `T`, if it is of task type `T`.
    pub fn task<T: Task>(&self) -> Option<T> {
        (self.name == T::NAME && self.version == T::VERSION)
            .then(|| serde_json::from_value(self.input.clone()).ok())
            .flatten()
    }
}

/// A log record the task wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// What one execution did.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Its output (JSON), if it left one of its own.
    pub output: Option<serde_json::Value>,
    /// The subtask whose output it left (`Context::output_from`).
    pub output_of_subtask: Option<SubtaskHandle>,
    /// Why it failed, as the host would report it (a panic included).
    pub error: Option<String>,
    /// Whether it marked its failure permanent (no retry).
    pub permanent: bool,
    pub subtasks: Vec<Submitted>,
    pub display: Option<String>,
    pub logs: Vec<Logged>,
    /// The spans it opened: name and attributes.
    pub spans: Vec<(String, Vec<(String, String)>)>,
    /// Progress by label: items added to the total, items done.
    pub progress: BTreeMap<String, (u64, u64)>,
    /// The job cache after the execution.
    pub cache: BTreeMap<String, Vec<u8>>,
}

/// What the host holds for a test execution; [`Run::execute`] runs a task.
#[derive(Debug, Clone)]
pub struct Run {
    pub(crate) outputs: Vec<(u32, Option<Vec<u8>>)>,
    pub(crate) secrets: HashMap<String, String>,
    pub(crate) cache: BTreeMap<String, Vec<u8>>,
    pub(crate) attempt: u32,
}

impl Default for Run {
    fn default() -> Self {
        Run { outputs: Vec::new(), secrets: HashMap::new(), cache: BTreeMap::new(), attempt: 1 }
    }
}

impl Run {
    pub fn new() -> Self {
        Self::default()
    }

    /// A dependency submitted as `handle` that left `value` (as JSON).
    pub fn output(mut self, handle: SubtaskHandle, value: &impl Serialize) -> Self {
        let json = serde_json::to_vec(value).expect("a test output serializes");
        self.outputs.push((handle.raw(), Some(json)));
        self
    }

    /// A dependency submitted as `handle` that left no output.
    pub fn no_output(mut self, handle: SubtaskHandle) -> Self {
        self.outputs.push((handle.raw(), None));
        self
    }

    /// A secret the task's module was granted.
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets.insert(name.to_owned(), value.to_owned());
        self
    }

    /// A value already in the job cache.
    pub fn cache_value(mut self, key: &str, value: &[u8]) -> Self {
        self.cache.insert(key.to_owned(), value.to_vec());
        self
    }

    /// The attempt number the task sees (1 unless set).
    pub fn attempt(mut self, n: u32) -> Self {
        self.attempt = n;
        self
    }

    /// Executes `task` as the host would (its input through JSON) and
    /// answers what it did.
    pub fn execute<T: Task>(self, task: &T) -> Recorded {
        let input = serde_json::to_string(task).expect("a task serializes");
        let task_type = WitTaskType { name: T::NAME.to_owned(), version: T::VERSION.to_owned() };
        let (outcome, mut record) =
            calls::recording(self, || std::panic::catch_unwind(|| crate::__execute::<T>(&task_type, &input)));
        match outcome {
            Ok(Some(Ok(output))) => match output {
                Output::None => {}
                Output::Bytes(bytes) => record.output = serde_json::from_slice(&bytes).ok(),
                Output::OfSubtask(h) => record.output_of_subtask = Some(SubtaskHandle::from_raw(h)),
            },
            Ok(Some(Err(message))) => record.error = Some(message),
            Ok(None) => unreachable!("a task's own type always matches"),
            Err(panic) => record.error = Some(format!("panicked: {}", panic_message(&*panic))),
        }
        record
    }
}

/// Executes `task` with nothing held for it; see [`Run`].
pub fn run<T: Task>(task: &T) -> Recorded {
    Run::new().execute(task)
}

/// The output a [`Recorded`] execution left, read as `T`.
pub fn output_as<T: DeserializeOwned>(recorded: &Recorded) -> Option<T> {
    recorded.output.clone().and_then(|v| serde_json::from_value(v).ok())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}
