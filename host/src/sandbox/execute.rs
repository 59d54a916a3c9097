//! Runs one attempt of a task in a fresh store, and turns whatever happened
//! (success, a guest error, a trap, a limit) into an outcome with a readable
//! message.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::sandflow::task::host::Execution as WitExecution;
use super::bindings::sandflow::task::types::TaskType as WitTaskType;
use super::egress::Egress;
use super::host::{Canceled, HostState, LimitExceeded, Recorded};
use super::interrupts::Cancel;
use super::{Limits, Prepared, Sandbox};
use crate::model::{
    JobId, LogEntry, LogLevel, SpanEntry, SubtaskSpec, TaskId, TaskKey, TaskLimits, TaskType, now_ms,
};

/// Decides whether a subtask of this task type (and cluster, if given) may be
/// submitted; `Err` is the message the guest receives.
pub type SubtaskCheck = Arc<dyn Fn(&TaskType, Option<&str>) -> Result<(), String> + Send + Sync>;

/// One attempt to run.
pub struct Execution {
    /// The task's job.
    pub job: JobId,
    /// The task.
    pub task: TaskId,
    /// The attempt number.
    pub attempt: u32,
    /// The implementation to call.
    pub task_type: TaskType,
    /// The JSON input.
    pub input: String,
    /// What the module's upload asked for, within the host's limits.
    pub limits: TaskLimits,
    /// Validates submitted subtasks against the registry.
    pub check: SubtaskCheck,
}

/// What an attempt did.
#[derive(Debug)]
pub struct ExecutionResult {
    /// The subtasks it submitted, or why it failed.
    pub outcome: Result<Vec<SubtaskSpec>, String>,
    /// The display name it set.
    pub display: Option<String>,
    /// Its log lines, captured stdout and stderr last.
    pub logs: Vec<LogEntry>,
    /// Its spans.
    pub spans: Vec<SpanEntry>,
    /// Whether it failed because its job was force-canceled.
    pub canceled: bool,
    /// Progress it added: (label, total, done).
    pub progress: Vec<(String, u64, u64)>,
}

/// An attempt's captured stdout and stderr.
pub(super) struct Captured {
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Captured {
    /// Pipes keeping at most `cap` bytes each.
    pub(super) fn new(cap: usize) -> Self {
        Captured { stdout: MemoryOutputPipe::new(cap), stderr: MemoryOutputPipe::new(cap) }
    }
}

/// How an attempt's call ended.
enum Ended {
    /// `execute` returned (`Ok` or the guest's `Err`), or trapped.
    Returned(wasmtime::Result<Result<(), String>>),
    /// Its deadline passed, whatever it was doing.
    TimedOut,
    /// Its job was force-canceled.
    Canceled,
}

impl Sandbox {
    /// Runs `exec` on `prepared`. The attempt ends by its deadline (wall
    /// clock) or at a forced cancel even while it waits in a host call (a
    /// sleep, a poll, an HTTP response): its call is dropped, which unwinds
    /// the guest.
    pub async fn execute(&self, prepared: &Prepared, exec: Execution) -> ExecutionResult {
        let captured = Captured::new(self.settings.limits.max_output_bytes);
        let attempt = exec.attempt;
        let key = TaskKey { job: exec.job, task: exec.task };
        let cancel = self.interrupts.register(key);
        let mut store = self.store(&exec, &captured, cancel.clone());
        let limits = store.data().limits.clone();
        let wit_type =
            WitTaskType { name: exec.task_type.name.clone(), version: exec.task_type.version.to_string() };
        let call = async {
            let instance = prepared.pre.instantiate_async(&mut store).await?;
            instance.sandflow_task_task().call_execute(&mut store, &wit_type, &exec.input).await
        };
        let ended = tokio::select! {
            ended = tokio::time::timeout(limits.timeout, call) => ended.map_or(Ended::TimedOut, Ended::Returned),
            () = cancel.raised() => Ended::Canceled,
        };
        let mut recorded = std::mem::take(&mut store.data_mut().recorded);
        drop(store);
        self.interrupts.remove(key);
        recorded.close_open_spans(now_ms());
        let outcome = match ended {
            Ended::Returned(Ok(Ok(()))) => Ok(std::mem::take(&mut recorded.subtasks)),
            Ended::Returned(Ok(Err(message))) => Err(message),
            Ended::Returned(Err(e)) => Err(describe_trap(&e, &captured, &limits)),
            Ended::TimedOut => Err(format!("timed out after {}", human(limits.timeout))),
            Ended::Canceled => Err("canceled".to_owned()),
        };
        append_output(&mut recorded.logs, attempt, &captured);
        let canceled = outcome.is_err() && cancel.is_raised();
        let outcome = if canceled { Err("canceled".to_owned()) } else { outcome };
        ExecutionResult {
            outcome,
            display: recorded.display,
            logs: recorded.logs,
            spans: recorded.spans,
            canceled,
            progress: recorded.progress.into_iter().map(|(l, (t, d))| (l, t, d)).collect(),
        }
    }

    /// A fresh store for one attempt: no filesystem, environment or network;
    /// clocks and randomness; stdout and stderr captured; limits applied.
    pub(super) fn store(
        &self,
        exec: &Execution,
        captured: &Captured,
        cancel: Arc<Cancel>,
    ) -> Store<HostState> {
        let limits = Arc::new(self.settings.limits.narrowed(&exec.limits));
        let wasi =
            WasiCtxBuilder::new().stdout(captured.stdout.clone()).stderr(captured.stderr.clone()).build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
            check: exec.check.clone(),
            execution: WitExecution {
                job_id: exec.job.to_string(),
                task_id: exec.task.to_string(),
                attempt: exec.attempt,
            },
            recorded: Recorded::default(),
            cancel,
            http: WasiHttpCtx::new(),
            egress: Egress::new(self.settings.allow_http.clone(), exec.limits.allow_http.clone()),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s);
        // At every tick the guest yields, and a forced cancel traps it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| super::host::on_tick(ctx.data_mut()));
        store
    }
}

/// A readable message for an attempt that trapped or was stopped.
fn describe_trap(e: &wasmtime::Error, captured: &Captured, limits: &Limits) -> String {
    let cap = limits.max_output_bytes;
    if let Some(limit) = e.downcast_ref::<LimitExceeded>() {
        return limit.0.clone();
    }
    if e.downcast_ref::<Canceled>().is_some() {
        return "canceled".to_owned();
    }
    if let Some(Trap::StackOverflow) = e.downcast_ref::<Trap>() {
        return "stack overflow: the task's call stack was exhausted".into();
    }
    for (name, pipe) in [("stdout", &captured.stdout), ("stderr", &captured.stderr)] {
        if pipe.contents().len() >= cap {
            return format!("{name} exceeded the capture limit of {cap} bytes");
        }
    }
    let stderr = captured.stderr.contents();
    let panic =
        String::from_utf8_lossy(&stderr).lines().rev().find(|l| l.starts_with("panicked")).map(str::to_owned);
    match (panic, e.downcast_ref::<Trap>()) {
        (Some(line), _) => line,
        (None, Some(trap)) => format!("trapped: {trap}"),
        (None, None) => format!("failed: {}", e.root_cause()),
    }
}

fn human(d: Duration) -> String {
    if d.as_secs() > 0 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Turns captured stdout (info) and stderr (warn) into log lines.
fn append_output(logs: &mut Vec<LogEntry>, attempt: u32, captured: &Captured) {
    let time_ms = now_ms();
    for (stream, pipe, level) in
        [("stdout", &captured.stdout, LogLevel::Info), ("stderr", &captured.stderr, LogLevel::Warn)]
    {
        let bytes = pipe.contents();
        for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.is_empty()) {
            logs.push(LogEntry {
                time_ms,
                attempt,
                level,
                message: line.to_owned(),
                fields: vec![("stream".to_owned(), stream.to_owned())],
            });
        }
    }
}
