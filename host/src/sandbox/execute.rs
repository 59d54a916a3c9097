//! Runs one attempt of a task in a fresh store, under its wall-clock
//! deadline and its cancel signal, and turns whatever happened (success, a
//! guest error, a trap, a bound) into an outcome with a readable message
//! (`failure.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::Store;
use wasmtime_wasi::WasiCtxBuilder;

use super::bindings::sandflow::task::host::Execution as WitExecution;
use super::cache::{AttemptCache, CacheAccess};
use super::dependencies::Dependencies;
use super::egress::Egress;
use super::failure::{self, Captured};
use super::host::HostState;
use super::interrupts::Cancel;
use super::secrets::{AttemptSecrets, SecretReader};
use super::usage::Metered;
use super::{Prepared, Sandbox};
use crate::model::{
    JobId, LogEntry, LogLevel, Output, Record, SpanEntry, SubtaskSpec, TaskId, TaskKey, TaskLimits, TaskType,
    Usage, now_ms, redact,
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
    /// The tasks it depends on, whose outputs it may read.
    pub dependencies: Arc<Dependencies>,
    /// Where its job's cache is (`None`: the runner has none).
    pub cache: Option<Arc<dyn CacheAccess>>,
    /// The attempt's lease (a remote runner names the attempt by it).
    pub lease: u64,
    /// Where it reads the secrets its module was granted (`None`: none).
    pub secrets: Option<Arc<dyn SecretReader>>,
}

/// What an attempt did.
#[derive(Debug)]
pub struct ExecutionResult {
    /// The subtasks it submitted, or why it failed.
    pub outcome: Result<Vec<SubtaskSpec>, String>,
    /// What it returned, when it computed its task (checked against the
    /// bounds; never [`Output::TooLarge`]).
    pub output: Output,
    /// The display name it set.
    pub display: Option<String>,
    /// Its log lines, captured stdout and stderr last.
    pub logs: Vec<LogEntry>,
    /// Its spans.
    pub spans: Vec<SpanEntry>,
    /// Whether it failed because its job was force-canceled.
    pub canceled: bool,
    /// Whether it failed after the task marked its failure permanent.
    pub permanent: bool,
    /// Progress it added: (label, total, done).
    pub progress: Vec<(String, u64, u64)>,
    /// The sandbox had no room for it (the instance pool was full): it did
    /// not run, and is no failure of the task's.
    pub no_room: bool,
    /// What it used.
    pub usage: Usage,
}

/// How an attempt's call ended.
pub(super) enum Ended {
    /// `execute` returned (`Ok` or the guest's `Err`), or trapped.
    Returned(wasmtime::Result<Result<Output, String>>),
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
        let captured = Captured::new(self.settings.limits.output_bytes);
        let key = TaskKey { job: exec.job, task: exec.task };
        let cancel = self.interrupts.register(key);
        let mut store = self.store(prepared, &exec, &captured, cancel.clone());
        let limits = store.data().limits.clone();
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let call =
            Metered::new(prepared.pre.execute(&mut store, &exec.task_type, &exec.input), cpu_ns.clone());
        let ended = tokio::select! {
            ended = tokio::time::timeout(limits.timeout, call) => ended.map_or(Ended::TimedOut, Ended::Returned),
            () = cancel.raised() => Ended::Canceled,
        };
        let no_room = matches!(&ended, Ended::Returned(Err(e)) if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some());
        let empty = Record::new(limits.bounds.clone(), exec.attempt);
        let mut record = std::mem::replace(&mut store.data_mut().record, empty);
        let secrets = std::mem::take(&mut store.data_mut().secrets.read);
        let usage = Usage {
            cpu_us: cpu_ns.load(Ordering::Relaxed) / 1000,
            peak_memory_bytes: store.data().peak_memory_bytes as u64,
        };
        drop(store);
        self.interrupts.remove(key);
        record.close_open_spans(now_ms());
        let outcome = failure::outcome(ended, &mut record, &captured, &limits);
        append_output(&mut record, &captured);
        // What the attempt recorded leaves the sandbox without the secrets
        // it read.
        record.redact(&secrets);
        let outcome = redacted(outcome, &secrets);
        let canceled = outcome.is_err() && cancel.is_raised();
        let outcome = if canceled { Err("canceled".to_owned()) } else { outcome };
        let output = record.take_output(outcome.is_ok());
        let permanent = outcome.is_err() && record.permanent && !canceled;
        ExecutionResult {
            outcome,
            output,
            display: record.display,
            logs: record.logs,
            spans: record.spans,
            canceled,
            permanent,
            progress: record.progress.into_iter().map(|(l, (t, d))| (l, t, d)).collect(),
            no_room,
            usage,
        }
    }

    /// A fresh store for one attempt: no filesystem, environment, sockets or
    /// name lookups; clocks and randomness; stdout and stderr captured;
    /// limits applied; on the engine `prepared` was loaded into.
    pub(super) fn store(
        &self,
        prepared: &Prepared,
        exec: &Execution,
        captured: &Captured,
        cancel: Arc<Cancel>,
    ) -> Store<HostState> {
        let limits = Arc::new(self.settings.limits.narrowed(&exec.limits));
        let wasi = WasiCtxBuilder::new()
            .stdout(captured.stdout.clone())
            .stderr(captured.stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let execution = WitExecution {
            job_id: exec.job.to_string(),
            task_id: exec.task.to_string(),
            attempt: exec.attempt,
        };
        let egress = Egress::new(self.settings.allow_http.clone(), exec.limits.allow_http.clone());
        let mut state = HostState::new(wasi, limits, exec.check.clone(), execution, cancel, egress);
        state.dependencies = exec.dependencies.clone();
        state.cache = AttemptCache::new(exec.job, exec.cache.clone(), state.limits.bounds.clone());
        let key = TaskKey { job: exec.job, task: exec.task };
        state.secrets =
            AttemptSecrets::new(key, exec.lease, exec.limits.secrets.clone(), exec.secrets.clone());
        let mut store = Store::new(prepared.pre.instance_pre().engine(), state);
        store.limiter(|s| s);
        // At every tick the guest yields, and a forced cancel traps it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| super::host::on_tick(ctx.data_mut()));
        store
    }
}

/// `outcome` without the values of `secrets`: its subtasks' inputs, its
/// error.
fn redacted(
    outcome: Result<Vec<SubtaskSpec>, String>,
    secrets: &[(String, String)],
) -> Result<Vec<SubtaskSpec>, String> {
    if secrets.is_empty() {
        return outcome;
    }
    match outcome {
        Ok(mut subtasks) => {
            for s in &mut subtasks {
                if let std::borrow::Cow::Owned(input) = redact(&s.input, secrets) {
                    s.input = input;
                }
            }
            Ok(subtasks)
        }
        Err(e) => Err(redact(&e, secrets).into_owned()),
    }
}

/// Turns captured stdout (info) and stderr (warn) into log lines, as far as
/// the record's bounds let them.
fn append_output(record: &mut Record, captured: &Captured) {
    for (stream, pipe, level) in
        [("stdout", &captured.stdout, LogLevel::Info), ("stderr", &captured.stderr, LogLevel::Warn)]
    {
        let bytes = pipe.contents();
        for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.is_empty()) {
            if record.log(level, line, [("stream".to_owned(), stream.to_owned())]).is_err() {
                return;
            }
        }
    }
}
