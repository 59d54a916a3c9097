//! The on-disk record types, versioned. Each record is a postcard-encoded enum
//! whose variant is the record version; a new layout is a new variant, and old
//! variants stay decodable. Domain types convert to and from the newest one.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::Error;
use crate::model::{
    AttemptError, Cluster, Digest, HostPattern, Job, JobId, LogEntry, LogLevel, ModuleInfo, SpanEntry, Task,
    TaskCounts, TaskId, TaskKey, TaskLimits, TaskState, TaskType, TraceParent, Version,
};

pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    postcard::to_stdvec(record).expect("records always serialize")
}

pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, Error> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt { what, reason: e.to_string() })
}

#[derive(Serialize, Deserialize)]
pub enum JobRecord {
    V1(JobV1),
    /// V1 and the job's progress counters: (label, total, done).
    V2(JobV1, Vec<(String, u64, u64)>),
    /// V2 and the client's `traceparent`: (trace id, parent span id, flags).
    V3(JobV1, Vec<(String, u64, u64)>, Option<([u8; 16], [u8; 8], u8)>),
}

#[derive(Serialize, Deserialize)]
pub struct JobV1 {
    name: String,
    root: [u8; 16],
    cluster: String,
    counts: [u64; 4],
    canceled: bool,
    idempotency_key: Option<String>,
}

impl From<&Job> for JobRecord {
    fn from(j: &Job) -> Self {
        let c = &j.counts;
        let progress = j.progress.iter().map(|(l, (t, d))| (l.clone(), *t, *d)).collect();
        let traceparent = j.traceparent.map(|t| (t.trace_id, t.parent_id, t.flags));
        JobRecord::V3(
            JobV1 {
                name: j.name.clone(),
                root: *j.root.as_bytes(),
                cluster: j.cluster.clone(),
                counts: [c.queued, c.running, c.computed, c.failed],
                canceled: j.canceled,
                idempotency_key: j.idempotency_key.clone(),
            },
            progress,
            traceparent,
        )
    }
}

impl JobRecord {
    pub fn into_job(self, id: JobId) -> Job {
        let (r, progress, traceparent) = match self {
            JobRecord::V1(r) => (r, Vec::new(), None),
            JobRecord::V2(r, progress) => (r, progress, None),
            JobRecord::V3(r, progress, traceparent) => (r, progress, traceparent),
        };
        let [queued, running, computed, failed] = r.counts;
        Job {
            id,
            name: r.name,
            root: TaskId::from_bytes(r.root),
            cluster: r.cluster,
            counts: TaskCounts { queued, running, computed, failed },
            canceled: r.canceled,
            idempotency_key: r.idempotency_key,
            progress: progress.into_iter().map(|(l, t, d)| (l, (t, d))).collect(),
            traceparent: traceparent.map(|(trace_id, parent_id, flags)| TraceParent {
                trace_id,
                parent_id,
                flags,
            }),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub enum TaskRecord {
    V1(TaskV1),
    /// V1 and when each kept error's attempt ran (start, end), in the order
    /// of `errors`.
    V2(TaskV1, Vec<Option<(u64, u64)>>),
}

#[derive(Serialize, Deserialize)]
pub struct TaskV1 {
    parent: Option<[u8; 16]>,
    type_name: String,
    version: (u32, u32),
    input: String,
    cluster: String,
    state: u8,
    max_retries: u32,
    attempt: u32,
    failures: u32,
    lost: u32,
    depends_on: Vec<[u8; 16]>,
    dependents: Vec<[u8; 16]>,
    unmet_deps: u32,
    incomplete: u64,
    display: Option<String>,
    errors: Vec<(u32, String)>,
    ran_version: Option<(u32, u32)>,
    created_ms: u64,
    started_ms: Option<u64>,
    finished_ms: Option<u64>,
}

fn state_code(s: TaskState) -> u8 {
    match s {
        TaskState::Queued => 0,
        TaskState::Running => 1,
        TaskState::Computed => 2,
        TaskState::Failed => 3,
    }
}

fn state_from(code: u8) -> Result<TaskState, Error> {
    Ok(match code {
        0 => TaskState::Queued,
        1 => TaskState::Running,
        2 => TaskState::Computed,
        3 => TaskState::Failed,
        _ => return Err(Error::Corrupt { what: "task", reason: format!("unknown state {code}") }),
    })
}

fn ids(list: &[TaskId]) -> Vec<[u8; 16]> {
    list.iter().map(|t| *t.as_bytes()).collect()
}

fn version(v: (u32, u32)) -> Version {
    Version { major: v.0, minor: v.1 }
}

impl From<&Task> for TaskRecord {
    fn from(t: &Task) -> Self {
        let ran = t.errors.iter().map(|e| e.ran).collect();
        let v1 = TaskV1 {
            parent: t.parent.map(|p| *p.as_bytes()),
            type_name: t.task_type.name.clone(),
            version: (t.task_type.version.major, t.task_type.version.minor),
            input: t.input.clone(),
            cluster: t.cluster.clone(),
            state: state_code(t.state),
            max_retries: t.max_retries,
            attempt: t.attempt,
            failures: t.failures,
            lost: t.lost,
            depends_on: ids(&t.depends_on),
            dependents: ids(&t.dependents),
            unmet_deps: t.unmet_deps,
            incomplete: t.incomplete,
            display: t.display.clone(),
            errors: t.errors.iter().map(|e| (e.attempt, e.message.clone())).collect(),
            ran_version: t.ran_version.map(|v| (v.major, v.minor)),
            created_ms: t.created_ms,
            started_ms: t.started_ms,
            finished_ms: t.finished_ms,
        };
        TaskRecord::V2(v1, ran)
    }
}

impl TaskRecord {
    pub fn into_task(self, key: TaskKey) -> Result<Task, Error> {
        let (r, mut ran) = match self {
            TaskRecord::V1(r) => (r, Vec::new()),
            TaskRecord::V2(r, ran) => (r, ran),
        };
        ran.resize(r.errors.len(), None);
        Ok(Task {
            key,
            parent: r.parent.map(TaskId::from_bytes),
            task_type: TaskType { name: r.type_name, version: version(r.version) },
            input: r.input,
            cluster: r.cluster,
            state: state_from(r.state)?,
            max_retries: r.max_retries,
            attempt: r.attempt,
            failures: r.failures,
            lost: r.lost,
            depends_on: r.depends_on.into_iter().map(TaskId::from_bytes).collect(),
            dependents: r.dependents.into_iter().map(TaskId::from_bytes).collect(),
            unmet_deps: r.unmet_deps,
            incomplete: r.incomplete,
            display: r.display,
            errors: r
                .errors
                .into_iter()
                .zip(ran)
                .map(|((attempt, message), ran)| AttemptError { attempt, message, ran })
                .collect(),
            ran_version: r.ran_version.map(version),
            created_ms: r.created_ms,
            started_ms: r.started_ms,
            finished_ms: r.finished_ms,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub enum ModuleRecord {
    V1 {
        size: u64,
        task_types: Vec<(String, u32, u32)>,
        uploaded_ms: u64,
    },
    V2 {
        size: u64,
        task_types: Vec<(String, u32, u32)>,
        uploaded_ms: u64,
        timeout_ms: Option<u64>,
        memory_bytes: Option<u64>,
        allow_http: Vec<String>,
    },
}

impl From<&ModuleInfo> for ModuleRecord {
    fn from(m: &ModuleInfo) -> Self {
        let task_types =
            m.task_types.iter().map(|t| (t.name.clone(), t.version.major, t.version.minor)).collect();
        ModuleRecord::V2 {
            size: m.size,
            task_types,
            uploaded_ms: m.uploaded_ms,
            timeout_ms: m.limits.timeout_ms,
            memory_bytes: m.limits.memory_bytes,
            allow_http: m.limits.allow_http.iter().map(ToString::to_string).collect(),
        }
    }
}

impl ModuleRecord {
    pub fn into_info(self, digest: Digest) -> ModuleInfo {
        let (size, task_types, uploaded_ms, limits) = match self {
            ModuleRecord::V1 { size, task_types, uploaded_ms } => {
                (size, task_types, uploaded_ms, TaskLimits::default())
            }
            ModuleRecord::V2 { size, task_types, uploaded_ms, timeout_ms, memory_bytes, allow_http } => {
                // Validated at upload; an entry that no longer parses grants nothing.
                let allow_http = allow_http.iter().filter_map(|p| HostPattern::parse(p).ok()).collect();
                (size, task_types, uploaded_ms, TaskLimits { timeout_ms, memory_bytes, allow_http })
            }
        };
        let task_types = task_types
            .into_iter()
            .map(|(name, major, minor)| TaskType { name, version: Version { major, minor } })
            .collect();
        ModuleInfo { digest, size, task_types, uploaded_ms, limits }
    }
}

#[derive(Serialize, Deserialize)]
pub enum ClusterRecord {
    V1 { name: String, description: String, created_ms: u64 },
}

impl From<&Cluster> for ClusterRecord {
    fn from(c: &Cluster) -> Self {
        ClusterRecord::V1 {
            name: c.name.clone(),
            description: c.description.clone(),
            created_ms: c.created_ms,
        }
    }
}

impl ClusterRecord {
    pub fn into_cluster(self, slug: String) -> Cluster {
        let ClusterRecord::V1 { name, description, created_ms } = self;
        Cluster { slug, name, description, created_ms }
    }
}

#[derive(Serialize, Deserialize)]
pub enum LogRecord {
    /// Schema 1 (keyed by task); never read by schema 2.
    V1 { time_ms: u64, attempt: u32, level: u8, message: String, fields: Vec<(String, String)> },
    V2 {
        task: [u8; 16],
        time_ms: u64,
        attempt: u32,
        level: u8,
        message: String,
        fields: Vec<(String, String)>,
    },
}

const LEVELS: [LogLevel; 5] =
    [LogLevel::Trace, LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error];

impl LogRecord {
    /// The record of `e`, logged by `task`.
    pub fn new(task: TaskId, e: &LogEntry) -> Self {
        let level = LEVELS.iter().position(|l| *l == e.level).unwrap_or(2) as u8;
        LogRecord::V2 {
            task: *task.as_bytes(),
            time_ms: e.time_ms,
            attempt: e.attempt,
            level,
            message: e.message.clone(),
            fields: e.fields.clone(),
        }
    }
}

impl LogRecord {
    /// The task that logged it, and the line.
    pub fn into_entry(self) -> (TaskId, LogEntry) {
        let (task, time_ms, attempt, level, message, fields) = match self {
            LogRecord::V1 { time_ms, attempt, level, message, fields } => {
                ([0; 16], time_ms, attempt, level, message, fields)
            }
            LogRecord::V2 { task, time_ms, attempt, level, message, fields } => {
                (task, time_ms, attempt, level, message, fields)
            }
        };
        let level = LEVELS.get(usize::from(level)).copied().unwrap_or(LogLevel::Info);
        (TaskId::from_bytes(task), LogEntry { time_ms, attempt, level, message, fields })
    }
}

#[derive(Serialize, Deserialize)]
pub enum SpanRecord {
    V1 {
        id: u64,
        parent: Option<u64>,
        attempt: u32,
        name: String,
        attributes: Vec<(String, String)>,
        start_ms: u64,
        end_ms: u64,
    },
}

impl From<&SpanEntry> for SpanRecord {
    fn from(s: &SpanEntry) -> Self {
        SpanRecord::V1 {
            id: s.id,
            parent: s.parent,
            attempt: s.attempt,
            name: s.name.clone(),
            attributes: s.attributes.clone(),
            start_ms: s.start_ms,
            end_ms: s.end_ms,
        }
    }
}

impl SpanRecord {
    pub fn into_entry(self) -> SpanEntry {
        let SpanRecord::V1 { id, parent, attempt, name, attributes, start_ms, end_ms } = self;
        SpanEntry { id, parent, attempt, name, attributes, start_ms, end_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_records_round_trip() {
        let key = TaskKey { job: JobId::new(), task: TaskId::new() };
        let mut t = Task::new_queued(
            key,
            None,
            TaskType::parse("Leaf@v1.2").unwrap(),
            "{}".into(),
            "default".into(),
            3,
        );
        t.errors.push(AttemptError { attempt: 1, message: "boom".into(), ran: Some((5, 9)) });
        t.errors.push(AttemptError { attempt: 2, message: "never ran".into(), ran: None });
        t.depends_on.push(TaskId::new());
        let bytes = encode(&TaskRecord::from(&t));
        let back = decode::<TaskRecord>("task", &bytes).unwrap().into_task(key).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn span_records_round_trip() {
        let span = SpanEntry {
            id: 2,
            parent: Some(1),
            attempt: 3,
            name: "fetch".into(),
            attributes: vec![("k".into(), "v".into())],
            start_ms: 10,
            end_ms: 12,
        };
        let bytes = encode(&SpanRecord::from(&span));
        assert_eq!(decode::<SpanRecord>("span", &bytes).unwrap().into_entry(), span);
    }

    #[test]
    fn module_records_of_the_first_version_still_decode() {
        let digest = Digest([7; 32]);
        let v1 = ModuleRecord::V1 { size: 9, task_types: vec![("Leaf".into(), 1, 2)], uploaded_ms: 5 };
        let info = decode::<ModuleRecord>("module", &encode(&v1)).unwrap().into_info(digest);
        assert_eq!((info.size, info.limits), (9, TaskLimits::default()));
        let allow_http = vec![HostPattern::parse("*.example.com").unwrap()];
        let limits = TaskLimits { timeout_ms: Some(300), memory_bytes: None, allow_http };
        let limited = ModuleInfo { limits, ..info };
        let back = decode::<ModuleRecord>("module", &encode(&ModuleRecord::from(&limited))).unwrap();
        assert_eq!(back.into_info(digest), limited);
    }

    #[test]
    fn garbage_is_reported_as_corrupt() {
        assert!(matches!(decode::<TaskRecord>("task", &[9, 9, 9]), Err(Error::Corrupt { .. })));
    }
}
