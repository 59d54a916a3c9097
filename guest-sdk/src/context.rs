//! The execution context a task receives: subtasks, display name, logs, spans.

use std::fmt::Display;
use std::time::Duration;

use crate::bindings::sandflow::task::{host, types};
use crate::calls;
use crate::{Error, Task};

/// Severity of a log record.
pub use host::Level;

/// What a running task can ask of the host. One is passed to
/// [`Task::execute`].
#[derive(Debug)]
pub struct Context {
    _private: (),
}

/// Names a subtask submitted during this execution, for use in
/// [`SubtaskBuilder::depends_on`]; passed in a dependent's input, it names
/// that dependency for [`Context::output_of`]. Serialized as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SubtaskHandle(u32);

impl SubtaskHandle {
    /// The handle's number: subtasks of one execution are numbered from 0.
    pub fn raw(self) -> u32 {
        self.0
    }

    /// The handle numbered `n`. Only numbers of subtasks already submitted in
    /// this execution are accepted by the host.
    pub fn from_raw(n: u32) -> Self {
        SubtaskHandle(n)
    }
}

impl Context {
    pub(crate) fn new() -> Self {
        Context { _private: () }
    }

    /// Submits `task` as a subtask with default settings: no dependencies, no
    /// retries, the current task's cluster. It runs after this task succeeds.
    pub fn submit_subtask<T: Task>(&self, task: &T) -> Result<SubtaskHandle, Error> {
        self.subtask(task).submit()
    }

    /// Starts building a subtask submission with dependencies, retries or a
    /// cluster; finish it with [`SubtaskBuilder::submit`].
    pub fn subtask<T: Task>(&self, task: &T) -> SubtaskBuilder {
        SubtaskBuilder {
            task_type: types::TaskType { name: T::NAME.to_owned(), version: T::VERSION.to_owned() },
            input: serde_json::to_string(task).map_err(Error::from),
            depends_on: Vec::new(),
            max_retries: 0,
            cluster: None,
            optional: false,
            backoff: None,
        }
    }

    /// Sets the display name shown in task lists and diagrams (at most 1024
    /// characters are kept; `\n` starts a new line).
    pub fn set_display(&self, name: impl AsRef<str>) {
        calls::set_display(name.as_ref());
    }

    /// A progress counter of the job, named `label` (e.g. `"pages"`): add
    /// to its total with [`Progress::add`] and to its done count with
    /// [`Progress::done`]. Additions count once this attempt computes the
    /// task; `GET /v1/jobs/{id}` shows the sums.
    pub fn progress(&self, label: impl Into<String>) -> Progress {
        Progress { label: label.into() }
    }

    /// Starts a log record at `level`; it is sent when dropped, after any
    /// [`LogRecord::field`] calls chained to it.
    pub fn log(&self, level: Level, message: impl Into<String>) -> LogRecord {
        LogRecord { level, message: message.into(), fields: Vec::new() }
    }

    /// A debug-level log record; see [`Context::log`].
    pub fn debug(&self, message: impl Into<String>) -> LogRecord {
        self.log(Level::Debug, message)
    }

    /// An info-level log record; see [`Context::log`].
    pub fn info(&self, message: impl Into<String>) -> LogRecord {
        self.log(Level::Info, message)
    }

    /// A warn-level log record; see [`Context::log`].
    pub fn warn(&self, message: impl Into<String>) -> LogRecord {
        self.log(Level::Warn, message)
    }

    /// An error-level log record; see [`Context::log`].
    pub fn error(&self, message: impl Into<String>) -> LogRecord {
        self.log(Level::Error, message)
    }

    /// Starts building a trace span; [`SpanBuilder::enter`] opens it.
    pub fn span(&self, name: impl Into<String>) -> SpanBuilder {
        SpanBuilder { name: name.into(), attributes: Vec::new() }
    }

    /// The id of the job this task belongs to.
    pub fn job_id(&self) -> String {
        calls::current().job_id
    }

    /// The id of this task.
    pub fn task_id(&self) -> String {
        calls::current().task_id
    }

    /// The attempt number of this execution, starting at 1.
    pub fn attempt(&self) -> u32 {
        calls::current().attempt
    }

    /// The value of the host's secret `name`, if this task's module was
    /// granted it at upload (`sandflow module upload --secrets NAME`). The
    /// host redacts the value from everything the attempt records (logs,
    /// spans, display, errors, subtask inputs, output).
    pub fn secret(&self, name: &str) -> Result<String, Error> {
        Ok(calls::secret(name)?)
    }
}

/// A subtask submission being built; see [`Context::subtask`].
#[derive(Debug)]
#[must_use = "a subtask is only submitted by `submit`"]
pub struct SubtaskBuilder {
    task_type: types::TaskType,
    input: Result<String, Error>,
    depends_on: Vec<u32>,
    max_retries: u32,
    cluster: Option<String>,
    optional: bool,
    backoff: Option<Backoff>,
}

/// The wait before each retry of a failed attempt: `initial` before the
/// first, each next one `factor` times the last (2 unless set), none over
/// `max` (one day unless set); with `jitter`, each is drawn between half
/// and all of it. The host refuses delays over a day and factors outside
/// 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    factor: f64,
    max: Duration,
    jitter: bool,
}

impl Backoff {
    /// Waits `initial` before the first retry, twice as long before each next.
    pub fn exponential(initial: Duration) -> Self {
        Backoff { initial, factor: 2.0, max: Duration::from_secs(86_400), jitter: false }
    }

    /// Waits `delay` before every retry.
    pub fn constant(delay: Duration) -> Self {
        Backoff { initial: delay, factor: 1.0, max: delay, jitter: false }
    }

    /// Each next wait is `factor` times the last.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// No wait is longer than `max`.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Spreads each wait at random over its upper half.
    pub fn jitter(mut self) -> Self {
        self.jitter = true;
        self
    }

    fn wit(self) -> types::Backoff {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        types::Backoff {
            initial_ms: ms(self.initial),
            factor: self.factor,
            max_ms: ms(self.max),
            jitter: self.jitter,
        }
    }
}

impl SubtaskBuilder {
    /// Runs the subtask only once these subtasks (and their own subtasks) are
    /// computed.
    pub fn depends_on(mut self, handles: &[SubtaskHandle]) -> Self {
        self.depends_on.extend(handles.iter().map(|h| h.0));
        self
    }

    /// Retries a failed attempt up to `n` times before the subtask fails.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Makes the subtask optional: if it (or any task of its subtree) fails
    /// for good, the job does not fail; the failed task is
    /// `failed_optional`, what is still queued in the subtree is
    /// `skipped`, and the tasks that depend on this one still run.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Waits out `backoff` before each retry (see [`SubtaskBuilder::max_retries`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Runs the subtask on runners of `cluster` instead of the current one.
    pub fn cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    /// Submits the subtask. Fails when the host refuses it (unknown task
    /// type, bad dependency, a limit exceeded).
    pub fn submit(self) -> Result<SubtaskHandle, Error> {
        let spec = host::Subtask {
            task_type: self.task_type,
            input: self.input?,
            depends_on: self.depends_on,
            max_retries: self.max_retries,
            cluster: self.cluster,
            optional: self.optional,
            backoff: self.backoff.map(Backoff::wit),
        };
        calls::submit_subtask(&spec).map(SubtaskHandle).map_err(Error::from)
    }
}

/// A log record, sent to the host when dropped.
#[derive(Debug)]
pub struct LogRecord {
    level: Level,
    message: String,
    fields: Vec<types::Field>,
}

impl LogRecord {
    /// Attaches a key/value field.
    pub fn field(mut self, key: impl Into<String>, value: impl Display) -> Self {
        self.fields.push(types::Field { key: key.into(), value: value.to_string() });
        self
    }
}

impl Drop for LogRecord {
    fn drop(&mut self) {
        calls::log(self.level, &self.message, &self.fields);
    }
}

/// A trace span being built; see [`Context::span`].
#[derive(Debug)]
#[must_use = "a span is only opened by `enter`"]
pub struct SpanBuilder {
    name: String,
    attributes: Vec<types::Field>,
}

impl SpanBuilder {
    /// Attaches an attribute.
    pub fn attr(mut self, key: impl Into<String>, value: impl Display) -> Self {
        self.attributes.push(types::Field { key: key.into(), value: value.to_string() });
        self
    }

    /// Opens the span; it closes when the guard is dropped.
    pub fn enter(self) -> SpanGuard {
        SpanGuard { id: calls::span_enter(&self.name, &self.attributes) }
    }
}

/// An open trace span; closed on drop.
#[derive(Debug)]
#[must_use = "the span closes as soon as the guard is dropped"]
pub struct SpanGuard {
    id: u64,
}

impl SpanGuard {
    /// Gives the open span an attribute learned after it opened (a result's
    /// size, a cache hit); a key it has gets the new value.
    pub fn set(&self, key: impl Into<String>, value: impl Display) -> &Self {
        calls::span_set(self.id, &[types::Field { key: key.into(), value: value.to_string() }]);
        self
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        calls::span_exit(self.id);
    }
}

/// A progress counter of the job; see [`Context::progress`].
#[derive(Debug, Clone)]
pub struct Progress {
    label: String,
}

impl Progress {
    /// Adds `n` items to the counter's total.
    pub fn add(&self, n: u64) -> &Self {
        calls::progress(&self.label, n, 0);
        self
    }

    /// Adds `n` items to the counter's done count.
    pub fn done(&self, n: u64) -> &Self {
        calls::progress(&self.label, 0, n);
        self
    }
}
