//! The JSON shapes the API answers with.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::model::{Job, JobStats, LogEntry, LogLevel, ModuleInfo, Task, TaskCounts, TaskKey};
pub use crate::protocol::TaskTypeView;
use crate::protocol::{BackoffBody, UsageBody};

/// RFC 3339 with milliseconds, UTC.
pub fn timestamp(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A job.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: String,
    pub name: String,
    /// `submitted|running|started|completed|failed|canceled`.
    pub state: String,
    pub cluster: String,
    /// Its (first) root task.
    pub root_task: String,
    /// All its root tasks, the first first.
    #[serde(default)]
    pub root_tasks: Vec<String>,
    pub submitted_at: String,
    pub task_counts: CountsView,
    /// Progress counters reported by its computed tasks, by label.
    #[serde(default)]
    pub progress: std::collections::BTreeMap<String, ProgressView>,
    /// The W3C `traceparent` of the job's span: its trace id and span id.
    pub traceparent: String,
    /// The job's output (its root task's), on `GET /v1/jobs/{id}` once the
    /// job completed, when it is JSON of at most 64 KiB (any output:
    /// `GET /v1/jobs/{id}/output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub output: Option<serde_json::Value>,
    /// The automation that submitted it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid)]
    pub automation: Option<String>,
    /// Its priority (-10 to 10): the ready tasks of jobs with a higher one start first.
    #[serde(default)]
    pub priority: i8,
    /// Its execution so far.
    #[serde(default)]
    pub stats: JobStatsView,
}

/// A job's execution: its first attempt's start, its last reported
/// attempt's end, the time between them, and its reported attempts' wall
/// and CPU time added up; parallelism is compute over elapsed time.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobStatsView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_start_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stop_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    pub compute_ms: u64,
    pub cpu_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<f64>,
}

impl From<&JobStats> for JobStatsView {
    fn from(s: &JobStats) -> Self {
        JobStatsView {
            first_start_at: s.first_start_ms.map(timestamp),
            last_stop_at: s.last_stop_ms.map(timestamp),
            elapsed_ms: s.elapsed_ms(),
            compute_ms: s.compute_ms,
            cpu_us: s.cpu_us,
            parallelism: s.parallelism().map(|p| (p * 100.0).round() / 100.0),
        }
    }
}

/// One progress counter.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgressView {
    pub total: u64,
    pub done: u64,
}

/// Tasks per state.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CountsView {
    pub queued: u64,
    pub running: u64,
    pub computed: u64,
    pub failed: u64,
    /// Failed for good inside an optional subtree (the job goes on).
    pub failed_optional: u64,
    /// Never ran: their optional subtree failed.
    pub skipped: u64,
    pub total: u64,
}

impl From<&TaskCounts> for CountsView {
    fn from(c: &TaskCounts) -> Self {
        CountsView {
            queued: c.queued,
            running: c.running,
            computed: c.computed,
            failed: c.failed,
            failed_optional: c.failed_optional,
            skipped: c.skipped,
            total: c.total(),
        }
    }
}

impl From<&Job> for JobView {
    fn from(j: &Job) -> Self {
        JobView {
            id: j.id.to_string(),
            name: j.name.clone(),
            state: j.state().as_str().to_owned(),
            cluster: j.cluster.clone(),
            root_task: j.root.to_string(),
            root_tasks: std::iter::once(&j.root).chain(&j.other_roots).map(ToString::to_string).collect(),
            submitted_at: timestamp(j.id.created_ms()),
            task_counts: (&j.counts).into(),
            progress: j
                .progress
                .iter()
                .map(|(l, (total, done))| (l.clone(), ProgressView { total: *total, done: *done }))
                .collect(),
            traceparent: j.trace().traceparent().to_string(),
            output: None,
            automation: j.automation.map(|a| a.to_string()),
            priority: j.priority,
            stats: (&j.stats).into(),
        }
    }
}

/// One failed attempt.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptErrorView {
    pub attempt: u32,
    pub message: String,
    /// What the attempt used, when its runner reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageBody>,
}

/// A task of a job.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskView {
    pub id: String,
    pub parent: Option<String>,
    pub depends_on: Vec<String>,
    pub task_type: TaskTypeView,
    /// The display name, else the task type's name.
    pub display: String,
    /// `queued|running|computed|failed|failed_optional|skipped`.
    #[schema(pattern = "^(queued|running|computed|failed|failed_optional|skipped)$")]
    pub state: String,
    /// Submitted as optional: its subtree's failure does not fail the job.
    pub optional: bool,
    /// The delay before each retry, if it has one.
    pub backoff: Option<BackoffBody>,
    /// While it waits out a backoff (or its job's `not_before`): when it
    /// may run.
    pub not_before: Option<String>,
    pub cluster: String,
    pub attempts: u32,
    /// The fencing token of its current or last start (what a runner's
    /// calls about that start name).
    pub lease: u64,
    pub max_retries: u32,
    /// The last failed attempt's error.
    pub error: Option<String>,
    pub errors: Vec<AttemptErrorView>,
    /// The implementation version of the last attempt.
    pub ran_version: Option<String>,
    pub input: serde_json::Value,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// What its last reported attempt used (CPU time, peak memory), as the
    /// sandbox measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageBody>,
    /// On `GET /v1/jobs/{id}/tasks/{task}` of a computed task that left an
    /// output: its size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// ... and the output itself when it is JSON of at most 64 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub output: Option<serde_json::Value>,
}

impl From<&Task> for TaskView {
    fn from(t: &Task) -> Self {
        TaskView {
            id: t.key.task.to_string(),
            parent: t.status.parent.map(|p| p.to_string()),
            depends_on: t.def.depends_on.iter().map(ToString::to_string).collect(),
            task_type: (&t.def.task_type).into(),
            display: t.display_name().to_owned(),
            state: t.status.state.as_str().to_owned(),
            optional: t.status.optional,
            backoff: t.status.backoff.map(Into::into),
            not_before: t.status.not_before_ms.map(timestamp),
            cluster: t.status.cluster.clone(),
            attempts: t.status.attempt,
            lease: t.status.lease,
            max_retries: t.status.max_retries,
            error: t.last_error().map(str::to_owned),
            errors: t
                .errors
                .iter()
                .map(|e| AttemptErrorView {
                    attempt: e.attempt,
                    message: e.message.clone(),
                    usage: e.usage.map(Into::into),
                })
                .collect(),
            ran_version: t.status.ran_version.map(|v| v.to_string()),
            input: serde_json::from_str(&t.def.input).unwrap_or(serde_json::Value::Null),
            created_at: timestamp(t.status.created_ms),
            started_at: t.status.started_ms.map(timestamp),
            finished_at: t.status.finished_ms.map(timestamp),
            usage: t.status.usage.map(Into::into),
            output_bytes: None,
            output: None,
        }
    }
}

/// An uploaded module.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModuleView {
    pub digest: String,
    pub size: u64,
    pub task_types: Vec<TaskTypeView>,
    pub uploaded_at: String,
    /// The limits its upload asked for; absent ones are the host's.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Hosts its tasks may send HTTP requests to, besides the host-wide list.
    #[serde(default)]
    pub allow_http: Vec<String>,
    /// Secrets its tasks may read.
    #[serde(default)]
    pub secrets: Vec<String>,
}

impl From<&ModuleInfo> for ModuleView {
    fn from(m: &ModuleInfo) -> Self {
        ModuleView {
            digest: m.digest.to_string(),
            size: m.size,
            task_types: m.task_types.iter().map(Into::into).collect(),
            uploaded_at: timestamp(m.uploaded_ms),
            timeout_ms: m.limits.timeout_ms,
            memory_mib: m.limits.memory_bytes.map(|b| b >> 20),
            allow_http: m.limits.allow_http.iter().map(ToString::to_string).collect(),
            secrets: m.limits.secrets.clone(),
        }
    }
}

/// A log line of a task.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogView {
    pub task: String,
    pub attempt: u32,
    pub time: String,
    #[schema(value_type = String, example = "info")]
    pub level: LogLevel,
    pub message: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl LogView {
    /// The view of `entry`, logged by task `key`.
    pub fn new(key: &TaskKey, entry: &LogEntry) -> Self {
        LogView {
            task: key.task.to_string(),
            attempt: entry.attempt,
            time: timestamp(entry.time_ms),
            level: entry.level,
            message: entry.message.clone(),
            fields: entry
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        }
    }
}
