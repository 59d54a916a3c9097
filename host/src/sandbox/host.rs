//! The host side of a sandbox: per-store state, the Sandflow host functions a
//! guest imports, and the memory limiter. Everything a guest records is
//! buffered here and handed to the caller after the attempt ends.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::egress::Egress;

use super::bindings::TaskComponent;
use super::bindings::sandflow::task::host::{self, Execution, Level, Subtask};
use super::bindings::sandflow::task::types::{self, Field};
use super::execute::SubtaskCheck;
use super::interrupts::Cancel;
use super::limits::{Limits, truncate_bytes};
use crate::model::{LogEntry, LogLevel, SpanEntry, SubtaskSpec, TaskType, now_ms, truncate_display};

/// Most fields kept per log line or span; further ones are dropped.
const MAX_FIELDS: usize = 64;

/// Most progress labels per attempt, and bytes per label.
const MAX_PROGRESS_LABELS: usize = 64;
const MAX_LABEL_BYTES: usize = 128;

/// The attempt was interrupted by a forced cancel of its job.
#[derive(Debug, thiserror::Error)]
#[error("canceled")]
pub struct Canceled;

/// A limit the guest exceeded; the attempt traps with this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LimitExceeded(pub String);

/// What one attempt has recorded so far.
#[derive(Default)]
pub struct Recorded {
    pub subtasks: Vec<SubtaskSpec>,
    /// Dependencies the subtasks name, in all.
    pub edges: usize,
    /// Progress added, by label: (total, done).
    pub progress: std::collections::BTreeMap<String, (u64, u64)>,
    pub display: Option<String>,
    pub logs: Vec<LogEntry>,
    pub spans: Vec<SpanEntry>,
    open_spans: Vec<usize>,
}

/// The data of one store: one attempt of one task.
pub struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: Arc<Limits>,
    pub check: SubtaskCheck,
    pub execution: Execution,
    pub recorded: Recorded,
    /// Raised to interrupt the attempt (forced cancel).
    pub cancel: Arc<Cancel>,
    pub http: WasiHttpCtx,
    /// Where the attempt may send HTTP requests.
    pub egress: Egress,
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The linker every task component is instantiated with: WASI (without
/// filesystem, environment or socket grants), outgoing `wasi:http` (checked
/// against the attempt's allow-list, see `egress.rs`) and the Sandflow host
/// functions.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    TaskComponent::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            return Err(wasmtime::Error::new(LimitExceeded(format!(
                "memory limit of {} MiB exceeded (the task asked for {} MiB)",
                self.limits.memory_bytes >> 20,
                desired.div_ceil(1 << 20)
            ))));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

fn fields(limits: &Limits, list: Vec<Field>) -> Vec<(String, String)> {
    list.into_iter()
        .take(MAX_FIELDS)
        .map(|f| (truncate_bytes(f.key, 256), truncate_bytes(f.value, limits.max_log_bytes)))
        .collect()
}

fn level(l: Level) -> LogLevel {
    match l {
        Level::Trace => LogLevel::Trace,
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    }
}

impl HostState {
    /// Checks a subtask; `Err` is the message the guest receives.
    fn check_subtask(&self, spec: Subtask) -> Result<SubtaskSpec, String> {
        let task_type =
            TaskType::new(&spec.task_type.name, &spec.task_type.version).map_err(|e| e.to_string())?;
        let limit = self.limits.max_input_bytes;
        if spec.input.len() > limit {
            return Err(format!("input of {} bytes exceeds the limit of {limit} bytes", spec.input.len()));
        }
        serde_json::from_str::<serde::de::IgnoredAny>(&spec.input)
            .map_err(|e| format!("input is not valid JSON: {e}"))?;
        let issued = self.recorded.subtasks.len();
        self.limits.check_dependencies(&spec.depends_on, issued, self.recorded.edges)?;
        (self.check)(&task_type, spec.cluster.as_deref())?;
        Ok(SubtaskSpec {
            task_type,
            input: spec.input,
            depends_on: spec.depends_on,
            max_retries: spec.max_retries,
            cluster: spec.cluster,
        })
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn submit_subtask(&mut self, spec: Subtask) -> wasmtime::Result<Result<u32, String>> {
        let max = self.limits.max_subtasks;
        if self.recorded.subtasks.len() >= max {
            return Err(wasmtime::Error::new(LimitExceeded(format!(
                "subtask limit of {max} per attempt exceeded"
            ))));
        }
        Ok(self.check_subtask(spec).map(|checked| {
            self.recorded.edges += checked.depends_on.len();
            self.recorded.subtasks.push(checked);
            (self.recorded.subtasks.len() - 1) as u32
        }))
    }

    fn set_display(&mut self, name: String) -> wasmtime::Result<()> {
        self.recorded.display = Some(truncate_display(&name));
        Ok(())
    }

    fn log(&mut self, lvl: Level, message: String, list: Vec<Field>) -> wasmtime::Result<()> {
        let max = self.limits.max_log_lines;
        if self.recorded.logs.len() >= max {
            return Err(wasmtime::Error::new(LimitExceeded(format!(
                "log limit of {max} lines per attempt exceeded"
            ))));
        }
        self.recorded.logs.push(LogEntry {
            time_ms: now_ms(),
            attempt: self.execution.attempt,
            level: level(lvl),
            message: truncate_bytes(message, self.limits.max_log_bytes),
            fields: fields(&self.limits, list),
        });
        Ok(())
    }

    fn span_enter(&mut self, name: String, attributes: Vec<Field>) -> wasmtime::Result<u64> {
        let max = self.limits.max_spans;
        if self.recorded.spans.len() >= max {
            return Err(wasmtime::Error::new(LimitExceeded(format!(
                "span limit of {max} per attempt exceeded"
            ))));
        }
        let id = self.recorded.spans.len() as u64 + 1;
        let parent = self.recorded.open_spans.last().map(|&i| self.recorded.spans[i].id);
        let now = now_ms();
        self.recorded.spans.push(SpanEntry {
            id,
            parent,
            attempt: self.execution.attempt,
            name: truncate_bytes(name, 256),
            attributes: fields(&self.limits, attributes),
            start_ms: now,
            end_ms: now,
        });
        self.recorded.open_spans.push(self.recorded.spans.len() - 1);
        Ok(id)
    }

    fn span_exit(&mut self, id: u64) -> wasmtime::Result<()> {
        let open = &mut self.recorded.open_spans;
        if let Some(pos) = open.iter().rposition(|&i| self.recorded.spans[i].id == id) {
            let index = open.remove(pos);
            self.recorded.spans[index].end_ms = now_ms();
        }
        Ok(())
    }

    fn progress(&mut self, label: String, add_total: u64, add_done: u64) -> wasmtime::Result<()> {
        let label = truncate_bytes(label, MAX_LABEL_BYTES);
        let known = self.recorded.progress.contains_key(&label);
        if !known && self.recorded.progress.len() >= MAX_PROGRESS_LABELS {
            return Err(wasmtime::Error::new(LimitExceeded(format!(
                "progress limit of {MAX_PROGRESS_LABELS} labels per attempt exceeded"
            ))));
        }
        let counter = self.recorded.progress.entry(label).or_default();
        counter.0 = counter.0.saturating_add(add_total);
        counter.1 = counter.1.saturating_add(add_done);
        Ok(())
    }

    fn current(&mut self) -> wasmtime::Result<Execution> {
        Ok(self.execution.clone())
    }
}

/// Runs at every epoch tick while an attempt runs wasm code: traps when its
/// job was force-canceled, else yields to the runner's executor, where the
/// attempt's deadline and cancel signal are watched (`execute.rs`).
pub fn on_tick(state: &mut HostState) -> wasmtime::Result<wasmtime::UpdateDeadline> {
    if state.cancel.is_raised() {
        return Err(wasmtime::Error::new(Canceled));
    }
    Ok(wasmtime::UpdateDeadline::Yield(1))
}

impl Recorded {
    /// Closes spans the guest left open at `end_ms`.
    pub fn close_open_spans(&mut self, end_ms: u64) {
        for i in self.open_spans.drain(..) {
            self.spans[i].end_ms = end_ms;
        }
    }
}
