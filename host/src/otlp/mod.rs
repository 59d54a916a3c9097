//! `serve --otlp-endpoint`: exports every job's trace and its tasks' logs
//! over OTLP/HTTP (protobuf) as they happen. The writer hands over the
//! attempts it accepted (`scheduler::FinishedAttempt`); this module turns
//! them into spans (the attempt's, then the ones it opened) and log records,
//! and exports a job's own span when the job ends. Everything is batched (up
//! to `MAX_BATCH` items or `INTERVAL`), off the writer's path.
//!
//! Spans are recorded data with ids derived from job and task ids
//! (`model::trace`), so they are sent as OTLP messages from
//! `opentelemetry-proto` rather than through an SDK tracer, which would mint
//! its own ids and clocks.

mod convert;
mod send;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use send::Collector;

use crate::model::{JobId, JobTrace, TaskKey, attempt_span_id, now_ms};
use crate::scheduler::FinishedAttempt;
use crate::store::Store;

/// Groups of finished attempts that may wait for the exporter before the
/// writer drops new ones.
pub const QUEUE: usize = 4096;
/// Most spans or log records in one request.
const MAX_BATCH: usize = 2048;
/// Longest a span or log record waits before it is sent.
const INTERVAL: Duration = Duration::from_secs(1);
/// Longest a stopping host waits for the last export.
const STOP_WAIT: Duration = Duration::from_secs(15);
/// Entries the id caches hold before they are cleared.
const MAX_CACHED: usize = 100_000;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--otlp-endpoint` is not a usable URL.
    #[error("bad OTLP endpoint `{endpoint}`: {reason}")]
    Endpoint {
        /// What was given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The collector refused the export.
    #[error("the OTLP collector at {url} answered {status}")]
    Refused {
        /// Where it was sent.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The collector could not be reached, after retries.
    #[error("the OTLP collector at {url} is unreachable: {reason}")]
    Unreachable {
        /// Where it was sent.
        url: String,
        /// The last failure.
        reason: String,
    },
}

/// A running exporter.
pub struct Exporter {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Exporter {
    /// Starts exporting the attempts `finished` receives (the scheduler's
    /// `Settings::finished`) and the end of every job `events` announces.
    pub fn start(
        collector: Collector,
        store: Store,
        events: broadcast::Receiver<JobId>,
        finished: mpsc::Receiver<Vec<FinishedAttempt>>,
    ) -> Self {
        let (stop, stopped) = oneshot::channel();
        let pipeline = Pipeline::new(collector, store);
        let done = tokio::spawn(pipeline.run(finished, events, stopped));
        Exporter { stop, done }
    }

    /// Sends what is pending and stops (waiting at most 15 s).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if tokio::time::timeout(STOP_WAIT, self.done).await.is_err() {
            tracing::warn!("the last OTLP export did not finish in time");
        }
    }
}

/// What waits to be sent, and the ids needed to place new items.
struct Pipeline {
    collector: Collector,
    store: Store,
    resource: Resource,
    spans: Vec<Span>,
    logs: Vec<LogRecord>,
    traces: HashMap<JobId, JobTrace>,
    parents: HashMap<TaskKey, [u8; 8]>,
    /// Jobs with exported attempts whose own span is not exported yet.
    open: HashSet<JobId>,
    /// Jobs whose end was exported (until one runs again).
    ended: HashSet<JobId>,
}

impl Pipeline {
    fn new(collector: Collector, store: Store) -> Self {
        let resource = Resource {
            attributes: vec![
                convert::attr("service.name", "sandflow"),
                convert::attr("service.version", env!("CARGO_PKG_VERSION")),
            ],
            ..Default::default()
        };
        Pipeline {
            collector,
            store,
            resource,
            spans: Vec::new(),
            logs: Vec::new(),
            traces: HashMap::new(),
            parents: HashMap::new(),
            open: HashSet::new(),
            ended: HashSet::new(),
        }
    }

    async fn run(
        mut self,
        mut finished: mpsc::Receiver<Vec<FinishedAttempt>>,
        mut events: broadcast::Receiver<JobId>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listening = true;
        loop {
            tokio::select! {
                biased;
                batch = finished.recv() => match batch {
                    Some(batch) => batch.iter().for_each(|a| self.attempt(a)),
                    None => break,
                },
                change = events.recv(), if listening => match change {
                    Ok(job) => self.job_changed(job),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.recheck_open(),
                    Err(broadcast::error::RecvError::Closed) => listening = false,
                },
                _ = tick.tick() => self.flush().await,
                _ = &mut stop => break,
            }
            if self.spans.len() >= MAX_BATCH || self.logs.len() >= MAX_BATCH {
                self.flush().await;
            }
        }
        while let Ok(batch) = finished.try_recv() {
            batch.iter().for_each(|a| self.attempt(a));
        }
        self.recheck_open();
        self.flush().await;
    }

    /// Queues an attempt's span, the spans it opened and its logs.
    fn attempt(&mut self, a: &FinishedAttempt) {
        let Some(trace) = self.trace(a.key.job) else { return };
        self.ended.remove(&a.key.job);
        self.open.insert(a.key.job);
        self.logs.extend(a.logs.iter().map(|l| convert::log_record(&trace, a, l)));
        if !trace.sampled() {
            return;
        }
        let parent = a.parent.and_then(|p| self.parent_span(TaskKey { job: a.key.job, task: p }));
        self.spans.push(convert::attempt_span(&trace, a, parent));
        self.spans.extend(a.spans.iter().map(|g| convert::guest_span(&trace, a, g)));
    }

    /// Queues the job's span once the job has ended.
    fn job_changed(&mut self, id: JobId) {
        if self.ended.contains(&id) {
            return;
        }
        let Ok(Some(job)) = self.store.job(id) else { return };
        if !job.has_ended() {
            return;
        }
        if job.trace().sampled() {
            self.spans.push(convert::job_span(&job, now_ms()));
        }
        self.open.remove(&id);
        self.traces.remove(&id);
        if self.ended.len() >= MAX_CACHED {
            self.ended.clear();
        }
        self.ended.insert(id);
    }

    /// After missed announcements: exports the end of every open job that ended.
    fn recheck_open(&mut self) {
        let open: Vec<JobId> = self.open.iter().copied().collect();
        for id in open {
            self.job_changed(id);
        }
    }

    fn trace(&mut self, job: JobId) -> Option<JobTrace> {
        if let Some(t) = self.traces.get(&job) {
            return Some(*t);
        }
        let trace = self.store.job(job).ok()??.trace();
        if self.traces.len() >= MAX_CACHED {
            self.traces.clear();
        }
        self.traces.insert(job, trace);
        Some(trace)
    }

    /// The span of the attempt that computed `parent` (the one whose
    /// subtasks these are).
    fn parent_span(&mut self, parent: TaskKey) -> Option<[u8; 8]> {
        if let Some(id) = self.parents.get(&parent) {
            return Some(*id);
        }
        let id = attempt_span_id(parent.task, self.store.task(parent).ok()??.status.attempt);
        if self.parents.len() >= MAX_CACHED {
            self.parents.clear();
        }
        self.parents.insert(parent, id);
        Some(id)
    }

    /// Sends what is pending; a failed export is dropped with a warning.
    async fn flush(&mut self) {
        if !self.spans.is_empty() {
            let spans = std::mem::take(&mut self.spans);
            let count = spans.len();
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(self.resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(convert::scope()),
                        spans,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            };
            if let Err(e) = self.collector.traces(&request).await {
                tracing::warn!(error = %e, spans = count, "dropped spans the collector did not take");
            }
        }
        if !self.logs.is_empty() {
            let log_records = std::mem::take(&mut self.logs);
            let count = log_records.len();
            let request = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(self.resource.clone()),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(convert::scope()),
                        log_records,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            };
            if let Err(e) = self.collector.logs(&request).await {
                tracing::warn!(error = %e, logs = count, "dropped log records the collector did not take");
            }
        }
    }
}
