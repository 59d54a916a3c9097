//! The runner protocol's wire types, shared by the host's API (which serves
//! them) and the remote runner (which sends them). Plain serde types and their
//! conversions to and from the scheduler's; no HTTP here.
//!
//! A runner claims a batch of tasks (long-poll), renews their leases, and
//! reports outcomes in batches, claiming its next batch in the same request.
//! Every call names the attempt's lease, its fencing token. Inputs travel as
//! the JSON text they are (`RawValue`), never re-parsed into numbers that
//! could lose what the task submitted (`[1e400]` stays `[1e400]`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::model::{
    Admit, Backoff, Bounds, Digest, JobId, LogEntry, LogLevel, Output, Record, SpanEntry, SubtaskRequest,
    SubtaskSpec, TaskId, TaskKey, TaskType, Usage,
};
use crate::scheduler::{Assignment, Report};

/// A task type on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TaskTypeView {
    pub name: String,
    pub version: String,
}

impl From<&TaskType> for TaskTypeView {
    fn from(t: &TaskType) -> Self {
        TaskTypeView { name: t.name.clone(), version: t.version.to_string() }
    }
}

/// Who is claiming: shown by `GET /v1/runners`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerHello {
    /// A stable id of the runner process.
    pub id: String,
    /// How many tasks it runs at once.
    pub capacity: u32,
    /// How many it is running now.
    #[serde(default)]
    pub in_flight: u32,
}

/// The body of `POST /v1/runners/claim`, and the claim part of a completion.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The cluster the runner serves.
    #[schema(pattern = "^[A-Za-z0-9-]{1,100}$")]
    pub cluster: String,
    /// Most tasks to take (1 to 64; default 1).
    #[serde(default)]
    pub max: Option<u32>,
    /// How long to wait for a task, in ms (default 30000, at most the host's
    /// `serve --poll-limit`; 0 answers at once).
    #[serde(default)]
    pub wait_ms: Option<u64>,
    /// The runner, for `GET /v1/runners`.
    #[serde(default)]
    pub runner: Option<RunnerHello>,
}

/// A claimed task.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssignmentView {
    pub job: String,
    pub task: String,
    pub task_type: TaskTypeView,
    /// The sha256 of the module to run (`GET /v1/modules/{digest}`).
    pub module: String,
    #[schema(value_type = Value)]
    pub input: Box<RawValue>,
    /// The attempt number, from 1 (what the task sees).
    pub attempt: u32,
    /// The start's fencing token: every later call about it names it.
    pub lease: u64,
    /// The lease lasts this many ms unless extended.
    pub lease_ms: u64,
    /// The module's timeout, if its upload narrowed the host's.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The module's memory limit in bytes, if its upload narrowed the host's.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Hosts the module's tasks may reach over HTTP, besides the runner's list.
    #[serde(default)]
    pub allow_http: Vec<String>,
    /// The secrets the module's tasks may read (`GET /v1/runners/secrets/{name}`).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The tasks it depends on, in its `depends_on` order: the outputs it may
    /// read (`GET /v1/runners/outputs/{job}/{task}`).
    #[serde(default)]
    pub dependencies: Vec<DependencyView>,
}

/// A secret's value, for a remote runner's attempt that was granted it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretValue {
    pub value: String,
}

/// A page of a job cache's keys (`GET /v1/jobs/{id}/cache` and the
/// runners' `GET /v1/runners/cache/{job}`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CacheListing {
    /// At most 1000 keys, in byte order.
    pub keys: Vec<CacheEntryView>,
    /// The key to pass as `after` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A key and its value's size.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CacheEntryView {
    pub key: String,
    /// Bytes.
    pub size: u64,
}

/// A task a claimed task depends on.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DependencyView {
    /// The handle its parent submitted it under.
    pub handle: u32,
    #[schema(format = Uuid)]
    pub task: String,
}

/// What a computed attempt returned, in a report: `{"bytes": BASE64}` or
/// `{"of_subtask": HANDLE}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputBody {
    /// Bytes, in base64 (standard alphabet, padded).
    Bytes(String),
    /// The output of the subtask the attempt submitted under this handle.
    OfSubtask(u32),
}

impl utoipa::PartialSchema for OutputBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        let case = |name: &str, value: ObjectBuilder| {
            ObjectBuilder::new()
                .property(name, value)
                .required(name)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        let bytes = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
            .description(Some("the bytes, in base64 (standard alphabet, padded)"));
        let handle = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(u32::MAX))
            .description(Some("the output is that of the subtask the attempt submitted under this handle"));
        OneOfBuilder::new()
            .item(case("bytes", bytes))
            .item(case("of_subtask", handle))
            .description(Some("What a computed attempt returned."))
            .into()
    }
}

impl utoipa::ToSchema for OutputBody {}

impl OutputBody {
    fn of(output: Output) -> Option<Self> {
        match output {
            Output::None | Output::TooLarge(_) => None,
            Output::Bytes(b) => Some(OutputBody::Bytes(BASE64.encode(b))),
            Output::OfSubtask(h) => Some(OutputBody::OfSubtask(h)),
        }
    }

    fn into_output(self) -> Result<Output, String> {
        match self {
            OutputBody::Bytes(text) => BASE64
                .decode(text)
                .map(Output::Bytes)
                .map_err(|e| format!("the reported output is not base64: {e}")),
            OutputBody::OfSubtask(h) => Ok(Output::OfSubtask(h)),
        }
    }
}

impl From<&Assignment> for AssignmentView {
    fn from(a: &Assignment) -> Self {
        AssignmentView {
            job: a.key.job.to_string(),
            task: a.key.task.to_string(),
            task_type: (&a.task_type).into(),
            module: a.module.to_string(),
            input: raw(&a.input),
            attempt: a.attempt,
            lease: a.lease,
            lease_ms: a.lease_ttl.as_millis() as u64,
            timeout_ms: a.limits.timeout_ms,
            memory_bytes: a.limits.memory_bytes,
            allow_http: a.limits.allow_http.iter().map(ToString::to_string).collect(),
            secrets: a.limits.secrets.clone(),
            dependencies: a
                .dependencies
                .iter()
                .map(|(handle, task)| DependencyView { handle: *handle, task: task.to_string() })
                .collect(),
        }
    }
}

impl AssignmentView {
    /// The assignment this view describes, as a runner sees it.
    pub fn into_assignment(self, cluster: &str) -> Result<Assignment, String> {
        let key = TaskKey {
            job: self.job.parse::<JobId>().map_err(|e| e.to_string())?,
            task: self.task.parse::<TaskId>().map_err(|e| e.to_string())?,
        };
        let allow_http = crate::model::parse_allow_list(&self.allow_http)?;
        Ok(Assignment {
            key,
            task_type: TaskType::new(&self.task_type.name, &self.task_type.version)
                .map_err(|e| e.to_string())?,
            module: Digest::parse(&self.module).ok_or("malformed module digest")?,
            limits: crate::model::TaskLimits {
                timeout_ms: self.timeout_ms,
                memory_bytes: self.memory_bytes,
                allow_http,
                secrets: self.secrets,
            },
            input: self.input.get().to_owned(),
            dependencies: self
                .dependencies
                .iter()
                .map(|d| d.task.parse::<TaskId>().map(|t| (d.handle, t)).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?,
            cluster: cluster.to_owned(),
            attempt: self.attempt,
            lease: self.lease,
            lease_ttl: Duration::from_millis(self.lease_ms),
        })
    }
}

/// The answer of a claim: the tasks taken (at least one).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Claimed {
    pub tasks: Vec<AssignmentView>,
    /// The version of the host's [`RunnerConfig`]: a runner whose copy is
    /// older fetches it again.
    #[serde(default)]
    pub config_version: u64,
}

/// What a runner needs to answer its guests as the host would
/// (`GET /v1/runners/config`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunnerConfig {
    /// Changes whenever the rest does.
    pub version: u64,
    /// The bounds on what an attempt records.
    #[schema(value_type = Object)]
    pub bounds: Bounds,
    /// Every registered task type.
    pub task_types: Vec<TaskTypeView>,
    /// Every cluster.
    pub clusters: Vec<String>,
}

/// The body of `POST /v1/runners/interrupts`: a long-poll for forced
/// cancels after `after` (0: all that are still in force).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InterruptsRequest {
    #[serde(default)]
    pub after: u64,
    /// How long to wait for one, in ms (default 30000, at most the host's
    /// `serve --poll-limit`).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// A forced cancel of a job (its running attempts are interrupted), or its
/// end (the job was retried).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InterruptView {
    /// Its place in the host's log of them.
    pub seq: u64,
    pub job: String,
    /// False when the job was retried: attempts of it run again.
    pub canceled: bool,
}

/// The answer of `POST /v1/runners/interrupts`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Interrupts {
    /// In order; empty when none came in time.
    pub interrupts: Vec<InterruptView>,
}

/// Names one start of a task, by its lease.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptRef {
    #[schema(format = Uuid)]
    pub job: String,
    #[schema(format = Uuid)]
    pub task: String,
    /// The lease token the claim answered.
    pub lease: u64,
}

impl AttemptRef {
    /// The start of `key` fenced by `lease`.
    pub fn new(key: TaskKey, lease: u64) -> Self {
        AttemptRef { job: key.job.to_string(), task: key.task.to_string(), lease }
    }
}

/// `text` (valid JSON, as stored) as a raw JSON value.
fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned())
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
}

/// The answer of `POST /v1/runners/extend`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Extended {
    /// The lease now lasts this many ms.
    pub lease_ms: u64,
    /// Extend again after this many ms.
    #[serde(default)]
    pub renew_after_ms: u64,
}

/// A subtask in a report.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubtaskBody {
    pub task_type: TaskTypeView,
    #[schema(value_type = Value)]
    pub input: Box<RawValue>,
    #[serde(default)]
    pub depends_on: Vec<u32>,
    #[serde(default)]
    pub max_retries: u32,
    #[serde(default)]
    pub cluster: Option<String>,
    /// Its failure for good spares the job.
    #[serde(default)]
    pub optional: bool,
    /// The delay before each retry.
    #[serde(default)]
    pub backoff: Option<BackoffBody>,
}

/// A retry backoff on the wire: the delay before the first retry, how much
/// longer each next one is, the longest, and whether delays are spread at
/// random over their upper half. Delays are at most one day, the factor
/// from 1 to 100.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffBody {
    /// Delay before the first retry, in ms.
    #[schema(maximum = 86_400_000)]
    pub initial_ms: u64,
    /// Each next delay is this many times the last (default 2).
    #[serde(default = "default_factor")]
    #[schema(minimum = 1, maximum = 100)]
    pub factor: f64,
    /// The longest delay, in ms (default: one day).
    #[serde(default = "default_max_ms")]
    #[schema(maximum = 86_400_000)]
    pub max_ms: u64,
    /// Whether each delay is drawn between half and all of it.
    #[serde(default)]
    pub jitter: bool,
}

fn default_factor() -> f64 {
    2.0
}

fn default_max_ms() -> u64 {
    crate::model::MAX_BACKOFF_MS
}

impl From<BackoffBody> for Backoff {
    fn from(b: BackoffBody) -> Self {
        Backoff { initial_ms: b.initial_ms, factor: b.factor, max_ms: b.max_ms, jitter: b.jitter }
    }
}

impl From<Backoff> for BackoffBody {
    fn from(b: Backoff) -> Self {
        BackoffBody { initial_ms: b.initial_ms, factor: b.factor, max_ms: b.max_ms, jitter: b.jitter }
    }
}

/// The schema of a log level: its lowercase name.
pub fn log_level_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(LogLevel::ALL.map(LogLevel::as_str)))
        .build()
}

/// A log line in a report.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogBody {
    #[schema(schema_with = log_level_schema)]
    pub level: LogLevel,
    pub message: String,
    #[serde(default)]
    pub fields: Vec<(String, String)>,
    /// When it was logged (Unix ms); the host's clock when absent.
    #[serde(default)]
    pub time_ms: Option<u64>,
}

/// A span in a report.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpanBody {
    pub id: u64,
    #[serde(default)]
    pub parent: Option<u64>,
    pub name: String,
    #[serde(default)]
    pub attributes: Vec<(String, String)>,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The body of `POST /v1/runners/report`: one attempt's outcome.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    #[schema(format = Uuid)]
    pub job: String,
    #[schema(format = Uuid)]
    pub task: String,
    pub attempt: u32,
    /// The lease token of the start reported on.
    pub lease: u64,
    /// Present when the attempt failed.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub subtasks: Vec<SubtaskBody>,
    #[serde(default)]
    pub display: Option<String>,
    #[serde(default)]
    pub logs: Vec<LogBody>,
    #[serde(default)]
    pub spans: Vec<SpanBody>,
    /// The attempt was interrupted because its job was force-canceled; it
    /// fails without using a retry.
    #[serde(default)]
    pub canceled: bool,
    /// The task marked its failure permanent: no retry.
    #[serde(default)]
    pub permanent: bool,
    /// Progress it added; counts when the attempt computed its task.
    #[serde(default)]
    pub progress: Vec<ProgressBody>,
    /// What it returned, when it computed its task; none when absent.
    #[serde(default)]
    pub output: Option<OutputBody>,
    /// What it used, as the runner's sandbox measured it.
    #[serde(default)]
    pub usage: Option<UsageBody>,
}

/// What an attempt used.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageBody {
    /// CPU time of the guest and its host calls, in µs.
    pub cpu_us: u64,
    /// The most linear memory its instance held at once, in bytes.
    pub peak_memory_bytes: u64,
}

impl From<Usage> for UsageBody {
    fn from(u: Usage) -> Self {
        UsageBody { cpu_us: u.cpu_us, peak_memory_bytes: u.peak_memory_bytes }
    }
}

impl From<UsageBody> for Usage {
    fn from(u: UsageBody) -> Self {
        Usage { cpu_us: u.cpu_us, peak_memory_bytes: u.peak_memory_bytes }
    }
}

/// Progress added to one counter.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressBody {
    pub label: String,
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub done: u64,
}

impl From<Report> for ReportBody {
    fn from(r: Report) -> Self {
        let (error, subtasks, output) = match r.outcome {
            Ok(subtasks) => {
                (None, subtasks.into_iter().map(SubtaskBody::from).collect(), OutputBody::of(r.output))
            }
            Err(e) => (Some(e), Vec::new(), None),
        };
        ReportBody {
            job: r.key.job.to_string(),
            task: r.key.task.to_string(),
            attempt: r.attempt,
            lease: r.lease,
            error,
            subtasks,
            display: r.display,
            logs: r.logs.into_iter().map(LogBody::from).collect(),
            spans: r.spans.into_iter().map(SpanBody::from).collect(),
            canceled: r.canceled,
            permanent: r.permanent,
            progress: r
                .progress
                .into_iter()
                .map(|(label, total, done)| ProgressBody { label, total, done })
                .collect(),
            output,
            usage: r.usage.map(UsageBody::from),
        }
    }
}

impl ReportBody {
    /// The report this body describes, checked as the sandbox checks what a
    /// guest records: replayed into a [`Record`] with the host's `bounds`
    /// and its `admit` check of subtask types and clusters, so a remote
    /// runner's attempt gets the answers an in-process one would. What the
    /// replay refuses (a bound, a subtask the host does not admit) fails the
    /// attempt with that message; only a malformed id is an error here.
    pub fn into_report(self, bounds: Arc<Bounds>, admit: Admit<'_>) -> Result<Report, String> {
        let key = TaskKey {
            job: self.job.parse::<JobId>().map_err(|e| e.to_string())?,
            task: self.task.parse::<TaskId>().map_err(|e| e.to_string())?,
        };
        let mut record = Record::new(bounds.clone(), self.attempt);
        let replayed =
            replay(&mut record, self.subtasks, self.display, self.logs, self.spans, self.progress, admit);
        let replayed = replayed.and_then(|()| {
            let output = self.output.map(OutputBody::into_output).transpose()?;
            record.set_output(output.unwrap_or_default())
        });
        let outcome = match (self.error, replayed) {
            (Some(e), _) => Err(bounds.error(&e)),
            (None, Err(why)) => Err(why),
            (None, Ok(())) => Ok(std::mem::take(&mut record.subtasks)),
        };
        let output = record.take_output(outcome.is_ok());
        let outcome_failed = outcome.is_err();
        Ok(Report {
            key,
            attempt: self.attempt,
            lease: self.lease,
            outcome,
            output,
            display: record.display,
            logs: record.logs,
            spans: record.spans,
            canceled: self.canceled,
            permanent: self.permanent && outcome_failed,
            progress: record.progress.into_iter().map(|(l, (t, d))| (l, t, d)).collect(),
            usage: self.usage.map(Usage::from),
        })
    }
}

/// Feeds what a report says into `record`, in the order a guest would.
fn replay(
    record: &mut Record,
    subtasks: Vec<SubtaskBody>,
    display: Option<String>,
    logs: Vec<LogBody>,
    spans: Vec<SpanBody>,
    progress: Vec<ProgressBody>,
    admit: Admit<'_>,
) -> Result<(), String> {
    for (i, s) in subtasks.into_iter().enumerate() {
        let request = SubtaskRequest {
            name: &s.task_type.name,
            version: &s.task_type.version,
            input: s.input.get(),
            depends_on: s.depends_on,
            max_retries: s.max_retries,
            cluster: s.cluster.as_deref(),
            optional: s.optional,
            backoff: s.backoff.map(Backoff::from),
        };
        if let Err(refused) = record.submit(request, admit).map_err(|e| e.0)? {
            return Err(format!("subtask {i} was refused by the host: {refused}"));
        }
    }
    if let Some(d) = display {
        record.set_display(&d).map_err(|e| e.0)?;
    }
    for l in logs {
        record
            .log_at(l.time_ms.unwrap_or_else(crate::model::now_ms), l.level, &l.message, l.fields)
            .map_err(|e| e.0)?;
    }
    for s in spans {
        let span = SpanEntry {
            id: s.id,
            parent: s.parent,
            attempt: 0,
            name: s.name,
            attributes: s.attributes,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
        };
        record.push_span(span).map_err(|e| e.0)?;
    }
    for p in progress {
        record.progress(&p.label, p.total, p.done).map_err(|e| e.0)?;
    }
    Ok(())
}

impl From<SubtaskSpec> for SubtaskBody {
    fn from(s: SubtaskSpec) -> Self {
        SubtaskBody {
            task_type: (&s.task_type).into(),
            input: raw(&s.input),
            depends_on: s.depends_on,
            max_retries: s.max_retries,
            cluster: s.cluster,
            optional: s.optional,
            backoff: s.backoff.map(BackoffBody::from),
        }
    }
}

impl From<LogEntry> for LogBody {
    fn from(e: LogEntry) -> Self {
        LogBody { level: e.level, message: e.message, fields: e.fields, time_ms: Some(e.time_ms) }
    }
}

impl From<SpanEntry> for SpanBody {
    fn from(s: SpanEntry) -> Self {
        SpanBody {
            id: s.id,
            parent: s.parent,
            name: s.name,
            attributes: s.attributes,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
        }
    }
}

/// The body of `POST /v1/runners/complete`: outcomes, and optionally the
/// next claim, in one round trip.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub reports: Vec<ReportBody>,
    #[serde(default)]
    pub claim: Option<ClaimRequest>,
}

/// What became of one report.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportResult {
    /// Recorded (on disk).
    pub ok: bool,
    /// Why not, when refused (a stale attempt: `conflict`).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The answer of `POST /v1/runners/complete`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Completed {
    /// One per report, in order.
    pub results: Vec<ReportResult>,
    /// The next claimed tasks; empty when none was asked for or none became
    /// ready in time.
    pub tasks: Vec<AssignmentView>,
}

/// The body of `POST /v1/runners/release`: claimed attempts never started.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub attempts: Vec<AttemptRef>,
}
