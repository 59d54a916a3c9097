//! The on-disk record types, versioned. Each record is a postcard-encoded enum
//! whose variant is the record version; a new layout is a new variant, and old
//! variants stay decodable. Domain types convert to and from the newest one.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{Error, edges};
use crate::model::{
    AttemptError, Automation, AutomationId, Backoff, Cluster, ConcurrencyLimit, Digest, HostPattern, Job,
    JobId, JobStats, LogEntry, LogLevel, ModuleInfo, SpanEntry, StoredOutput, TaskCounts, TaskDef, TaskId,
    TaskLimits, TaskState, TaskStatus, TaskType, TraceParent, Usage, Version,
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
    /// V3 and the counts of failed-optional and skipped tasks.
    V4(JobV1, Vec<(String, u64, u64)>, Option<([u8; 16], [u8; 8], u8)>, [u64; 2]),
    /// V4 and what schema 5 added.
    V5(JobV1, Vec<(String, u64, u64)>, Option<([u8; 16], [u8; 8], u8)>, [u64; 2], JobV5),
}

/// The automation that submitted a job, its priority, and its execution
/// stats: first start, last stop, compute ms, CPU µs.
#[derive(Serialize, Deserialize, Default)]
pub struct JobV5 {
    automation: Option<[u8; 16]>,
    priority: i8,
    stats: (Option<u64>, Option<u64>, u64, u64),
    #[serde(with = "serde_bytes")]
    other_roots: Vec<u8>,
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
        JobRecord::V5(
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
            [c.failed_optional, c.skipped],
            JobV5 {
                automation: j.automation.map(|a| *a.as_bytes()),
                priority: j.priority,
                stats: (j.stats.first_start_ms, j.stats.last_stop_ms, j.stats.compute_ms, j.stats.cpu_us),
                other_roots: id_bytes(&j.other_roots),
            },
        )
    }
}

impl JobRecord {
    pub fn into_job(self, id: JobId) -> Job {
        let (r, progress, traceparent, [failed_optional, skipped], v5) = match self {
            JobRecord::V1(r) => (r, Vec::new(), None, [0, 0], JobV5::default()),
            JobRecord::V2(r, progress) => (r, progress, None, [0, 0], JobV5::default()),
            JobRecord::V3(r, progress, traceparent) => (r, progress, traceparent, [0, 0], JobV5::default()),
            JobRecord::V4(r, progress, traceparent, more) => {
                (r, progress, traceparent, more, JobV5::default())
            }
            JobRecord::V5(r, progress, traceparent, more, v5) => (r, progress, traceparent, more, v5),
        };
        let [queued, running, computed, failed] = r.counts;
        Job {
            id,
            name: r.name,
            root: TaskId::from_bytes(r.root),
            other_roots: ids_of(&v5.other_roots).collect(),
            cluster: r.cluster,
            counts: TaskCounts { queued, running, computed, failed, failed_optional, skipped },
            canceled: r.canceled,
            idempotency_key: r.idempotency_key,
            progress: progress.into_iter().map(|(l, t, d)| (l, (t, d))).collect(),
            traceparent: traceparent.map(|(trace_id, parent_id, flags)| TraceParent {
                trace_id,
                parent_id,
                flags,
            }),
            automation: v5.automation.map(AutomationId::from_bytes),
            priority: v5.priority,
            stats: JobStats {
                first_start_ms: v5.stats.0,
                last_stop_ms: v5.stats.1,
                compute_ms: v5.stats.2,
                cpu_us: v5.stats.3,
            },
        }
    }
}

/// A task's status (schema 3, `V3`); before schema 3 the whole task (`V1`,
/// `V2`), which only the migration reads.
#[derive(Serialize, Deserialize)]
pub enum TaskRecord {
    V1(TaskV1),
    /// V1 and when each kept error's attempt ran (start, end), in the order
    /// of `errors`.
    V2(TaskV1, Vec<Option<(u64, u64)>>),
    /// The status alone: the definition and errors have keys of their own.
    V3(StatusV3),
    /// V3 and how failures are handled, when that is not the default (not
    /// optional, no guard, no backoff).
    V4(StatusV3, Option<PolicyV4>),
    /// V4 and what the last reported attempt used: (CPU µs, peak memory bytes).
    V5(StatusV3, Option<PolicyV4>, Option<(u64, u64)>),
}

/// Optional tasks and backoff (schema 4 of a status).
#[derive(Serialize, Deserialize)]
pub struct PolicyV4 {
    optional: bool,
    guard: Option<[u8; 16]>,
    poisoned: bool,
    /// (initial ms, factor, max ms, jitter).
    backoff: Option<(u64, f64, u64, bool)>,
    not_before_ms: Option<u64>,
}

impl PolicyV4 {
    /// The policy of `t`; `None` when every part is the default.
    fn of(t: &TaskStatus) -> Option<Self> {
        let default = !t.optional && t.guard.is_none() && t.backoff.is_none() && t.not_before_ms.is_none();
        (!default).then(|| PolicyV4 {
            optional: t.optional,
            guard: t.guard.map(|g| *g.as_bytes()),
            poisoned: t.poisoned,
            backoff: t.backoff.map(|b| (b.initial_ms, b.factor, b.max_ms, b.jitter)),
            not_before_ms: t.not_before_ms,
        })
    }

    /// Sets the policy on `t`.
    fn apply(self, t: &mut TaskStatus) {
        t.optional = self.optional;
        t.guard = self.guard.map(TaskId::from_bytes);
        t.poisoned = self.poisoned;
        t.backoff = self.backoff.map(|(initial_ms, factor, max_ms, jitter)| Backoff {
            initial_ms,
            factor,
            max_ms,
            jitter,
        });
        t.not_before_ms = self.not_before_ms;
    }
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

#[derive(Serialize, Deserialize)]
pub struct StatusV3 {
    parent: Option<[u8; 16]>,
    cluster: String,
    max_retries: u32,
    state: u8,
    attempt: u32,
    lease: u64,
    failures: u32,
    lost: u32,
    open: u64,
    display: Option<String>,
    errors: u32,
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
        TaskState::FailedOptional => 4,
        TaskState::Skipped => 5,
    }
}

fn state_from(code: u8) -> Result<TaskState, Error> {
    Ok(match code {
        0 => TaskState::Queued,
        1 => TaskState::Running,
        2 => TaskState::Computed,
        3 => TaskState::Failed,
        4 => TaskState::FailedOptional,
        5 => TaskState::Skipped,
        _ => return Err(Error::Corrupt { what: "task", reason: format!("unknown state {code}") }),
    })
}

fn version(v: (u32, u32)) -> Version {
    Version { major: v.0, minor: v.1 }
}

impl From<&TaskStatus> for TaskRecord {
    fn from(t: &TaskStatus) -> Self {
        let status = StatusV3 {
            parent: t.parent.map(|p| *p.as_bytes()),
            cluster: t.cluster.clone(),
            max_retries: t.max_retries,
            state: state_code(t.state),
            attempt: t.attempt,
            lease: t.lease,
            failures: t.failures,
            lost: t.lost,
            open: t.open,
            display: t.display.clone(),
            errors: t.errors,
            ran_version: t.ran_version.map(|v| (v.major, v.minor)),
            created_ms: t.created_ms,
            started_ms: t.started_ms,
            finished_ms: t.finished_ms,
        };
        TaskRecord::V5(status, PolicyV4::of(t), t.usage.map(|u| (u.cpu_us, u.peak_memory_bytes)))
    }
}

impl TaskRecord {
    /// The status; a record of an earlier schema is corrupt here (start-up
    /// migrates every one before anything reads them).
    pub fn into_status(self) -> Result<TaskStatus, Error> {
        let (r, policy, usage) = match self {
            TaskRecord::V3(r) => (r, None, None),
            TaskRecord::V4(r, policy) => (r, policy, None),
            TaskRecord::V5(r, policy, usage) => (r, policy, usage),
            TaskRecord::V1(_) | TaskRecord::V2(..) => {
                return Err(Error::Corrupt { what: "task", reason: "a task record of schema 2".into() });
            }
        };
        let mut status = TaskStatus {
            parent: r.parent.map(TaskId::from_bytes),
            cluster: r.cluster,
            max_retries: r.max_retries,
            state: state_from(r.state)?,
            attempt: r.attempt,
            lease: r.lease,
            failures: r.failures,
            lost: r.lost,
            open: r.open,
            display: r.display,
            errors: r.errors,
            ran_version: r.ran_version.map(version),
            created_ms: r.created_ms,
            started_ms: r.started_ms,
            finished_ms: r.finished_ms,
            optional: false,
            guard: None,
            poisoned: false,
            backoff: None,
            not_before_ms: None,
            usage: usage.map(|(cpu_us, peak_memory_bytes)| Usage { cpu_us, peak_memory_bytes }),
        };
        if let Some(policy) = policy {
            policy.apply(&mut status);
        }
        Ok(status)
    }

    /// The cluster of a task record of any schema (to find its live key).
    pub fn cluster(&self) -> &str {
        match self {
            TaskRecord::V1(r) | TaskRecord::V2(r, _) => &r.cluster,
            TaskRecord::V3(r) | TaskRecord::V4(r, _) | TaskRecord::V5(r, ..) => &r.cluster,
        }
    }
}

/// A task as schema 2 stored it, in the terms of schema 3 (for the
/// migration): `incomplete` counted every task of the subtree not computed.
pub struct LegacyTask {
    pub def: TaskDef,
    pub status: TaskStatus,
    pub errors: Vec<AttemptError>,
    pub incomplete: u64,
    pub unmet_deps: u32,
}

/// A task record as found: of this schema, or of schema 2.
pub enum Stored {
    Current(Box<TaskStatus>),
    Legacy(Box<LegacyTask>),
}

impl TaskRecord {
    /// The status of a schema-3 record, or the parts of a schema-2 one.
    pub fn into_stored(self) -> Result<Stored, Error> {
        let (r, mut ran) = match self {
            TaskRecord::V1(r) => (r, Vec::new()),
            TaskRecord::V2(r, ran) => (r, ran),
            current @ (TaskRecord::V3(_) | TaskRecord::V4(..) | TaskRecord::V5(..)) => {
                return Ok(Stored::Current(Box::new(current.into_status()?)));
            }
        };
        ran.resize(r.errors.len(), None);
        let errors: Vec<AttemptError> = r
            .errors
            .into_iter()
            .zip(ran)
            .map(|((attempt, message), ran)| AttemptError { attempt, message, ran, usage: None })
            .collect();
        let status = TaskStatus {
            parent: r.parent.map(TaskId::from_bytes),
            cluster: r.cluster,
            max_retries: r.max_retries,
            state: state_from(r.state)?,
            attempt: r.attempt,
            // Schema 2 fenced with the attempt number; the next start takes
            // a token of this boot, above every one of them.
            lease: u64::from(r.attempt),
            failures: r.failures,
            lost: r.lost,
            open: 0,
            display: r.display,
            errors: errors.len() as u32,
            ran_version: r.ran_version.map(version),
            created_ms: r.created_ms,
            started_ms: r.started_ms,
            finished_ms: r.finished_ms,
            optional: false,
            guard: None,
            poisoned: false,
            backoff: None,
            not_before_ms: None,
            usage: None,
        };
        let def = TaskDef {
            task_type: TaskType { name: r.type_name, version: version(r.version) },
            input: r.input,
            depends_on: r.depends_on.into_iter().map(TaskId::from_bytes).collect(),
            handles: Vec::new(),
        };
        let (incomplete, unmet_deps) = (r.incomplete, r.unmet_deps);
        Ok(Stored::Legacy(Box::new(LegacyTask { def, status, errors, incomplete, unmet_deps })))
    }
}

/// Task ids as one byte string (16 bytes each): encoded and decoded as a
/// copy, not id by id.
fn id_bytes(list: &[TaskId]) -> Vec<u8> {
    list.iter().flat_map(|t| *t.as_bytes()).collect()
}

fn ids_of(bytes: &[u8]) -> impl Iterator<Item = TaskId> + '_ {
    bytes.chunks_exact(16).map(|c| TaskId::from_bytes(c.try_into().expect("16 bytes")))
}

/// What a task is (written once, when it is created).
#[derive(Serialize, Deserialize)]
pub enum DefRecord {
    V1 {
        type_name: String,
        version: (u32, u32),
        input: String,
        #[serde(with = "serde_bytes")]
        depends_on: Vec<u8>,
    },
    /// V1 and the parent's handles of `depends_on`.
    V2 {
        type_name: String,
        version: (u32, u32),
        input: String,
        #[serde(with = "serde_bytes")]
        depends_on: Vec<u8>,
        handles: Vec<u32>,
    },
    /// V2 with the dependencies packed as offsets from their block's first
    /// id (`edges.rs`); `None` when there are none.
    V3 { type_name: String, version: (u32, u32), input: String, deps: Option<edges::Packed> },
}

impl From<&TaskDef> for DefRecord {
    fn from(d: &TaskDef) -> Self {
        let (type_name, version) =
            (d.task_type.name.clone(), (d.task_type.version.major, d.task_type.version.minor));
        let input = d.input.clone();
        if d.depends_on.is_empty() {
            return DefRecord::V3 { type_name, version, input, deps: None };
        }
        match edges::pack(&d.depends_on, &d.handles) {
            Some(packed) => DefRecord::V3 { type_name, version, input, deps: Some(packed) },
            None => DefRecord::V2 {
                type_name,
                version,
                input,
                depends_on: id_bytes(&d.depends_on),
                handles: d.handles.clone(),
            },
        }
    }
}

impl DefRecord {
    pub fn into_def(self) -> Result<TaskDef, Error> {
        let (type_name, v, input, depends_on, handles) = match self {
            DefRecord::V1 { type_name, version, input, depends_on } => {
                (type_name, version, input, ids_of(&depends_on).collect(), Vec::new())
            }
            DefRecord::V2 { type_name, version, input, depends_on, handles } => {
                (type_name, version, input, ids_of(&depends_on).collect(), handles)
            }
            DefRecord::V3 { type_name, version, input, deps } => {
                let (depends_on, handles) = deps.as_ref().map(edges::unpack).transpose()?.unwrap_or_default();
                (type_name, version, input, depends_on, handles)
            }
        };
        Ok(TaskDef {
            task_type: TaskType { name: type_name, version: version(v) },
            input,
            depends_on,
            handles,
        })
    }
}

/// A computed task's output.
#[derive(Serialize, Deserialize)]
pub enum OutputRecord {
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    Of([u8; 16]),
}

impl From<&StoredOutput> for OutputRecord {
    fn from(o: &StoredOutput) -> Self {
        match o {
            StoredOutput::Bytes(b) => OutputRecord::Bytes(b.clone()),
            StoredOutput::Of(t) => OutputRecord::Of(*t.as_bytes()),
        }
    }
}

impl OutputRecord {
    pub fn into_output(self) -> StoredOutput {
        match self {
            OutputRecord::Bytes(b) => StoredOutput::Bytes(b),
            OutputRecord::Of(t) => StoredOutput::Of(TaskId::from_bytes(t)),
        }
    }
}

/// One failed attempt's error.
#[derive(Serialize, Deserialize)]
pub enum ErrorRecord {
    V1 {
        attempt: u32,
        message: String,
        ran: Option<(u64, u64)>,
    },
    /// V1 and what the attempt used: (CPU µs, peak memory bytes).
    V2 {
        attempt: u32,
        message: String,
        ran: Option<(u64, u64)>,
        usage: Option<(u64, u64)>,
    },
}

impl From<&AttemptError> for ErrorRecord {
    fn from(e: &AttemptError) -> Self {
        let usage = e.usage.map(|u| (u.cpu_us, u.peak_memory_bytes));
        ErrorRecord::V2 { attempt: e.attempt, message: e.message.clone(), ran: e.ran, usage }
    }
}

impl ErrorRecord {
    pub fn into_error(self) -> AttemptError {
        let (attempt, message, ran, usage) = match self {
            ErrorRecord::V1 { attempt, message, ran } => (attempt, message, ran, None),
            ErrorRecord::V2 { attempt, message, ran, usage } => (attempt, message, ran, usage),
        };
        let usage = usage.map(|(cpu_us, peak_memory_bytes)| Usage { cpu_us, peak_memory_bytes });
        AttemptError { attempt, message, ran, usage }
    }
}

/// A list of task ids: a task's subtasks (and, in data written by earlier
/// builds, the siblings that depend on a task, no longer read).
#[derive(Serialize, Deserialize)]
pub enum IdsRecord {
    V1(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl IdsRecord {
    pub fn new(list: &[TaskId]) -> Self {
        IdsRecord::V1(id_bytes(list))
    }

    pub fn into_ids(self) -> Vec<TaskId> {
        let IdsRecord::V1(list) = self;
        ids_of(&list).collect()
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
    /// V2 and the secrets its tasks may read.
    V3 {
        size: u64,
        task_types: Vec<(String, u32, u32)>,
        uploaded_ms: u64,
        timeout_ms: Option<u64>,
        memory_bytes: Option<u64>,
        allow_http: Vec<String>,
        secrets: Vec<String>,
    },
}

impl From<&ModuleInfo> for ModuleRecord {
    fn from(m: &ModuleInfo) -> Self {
        let task_types =
            m.task_types.iter().map(|t| (t.name.clone(), t.version.major, t.version.minor)).collect();
        ModuleRecord::V3 {
            size: m.size,
            task_types,
            uploaded_ms: m.uploaded_ms,
            timeout_ms: m.limits.timeout_ms,
            memory_bytes: m.limits.memory_bytes,
            allow_http: m.limits.allow_http.iter().map(ToString::to_string).collect(),
            secrets: m.limits.secrets.clone(),
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
                let limits = TaskLimits {
                    timeout_ms,
                    memory_bytes,
                    allow_http: patterns(&allow_http),
                    secrets: Vec::new(),
                };
                (size, task_types, uploaded_ms, limits)
            }
            ModuleRecord::V3 {
                size,
                task_types,
                uploaded_ms,
                timeout_ms,
                memory_bytes,
                allow_http,
                secrets,
            } => {
                let limits =
                    TaskLimits { timeout_ms, memory_bytes, allow_http: patterns(&allow_http), secrets };
                (size, task_types, uploaded_ms, limits)
            }
        };
        let task_types = task_types
            .into_iter()
            .map(|(name, major, minor)| TaskType { name, version: Version { major, minor } })
            .collect();
        ModuleInfo { digest, size, task_types, uploaded_ms, limits }
    }
}

/// An allow-list as stored: validated at upload, so an entry that no
/// longer parses grants nothing.
fn patterns(stored: &[String]) -> Vec<HostPattern> {
    stored.iter().filter_map(|p| HostPattern::parse(p).ok()).collect()
}

/// A secret: its value sealed (XChaCha20-Poly1305 under the host's key,
/// with the name as associated data, see `secrets/`).
#[derive(Serialize, Deserialize)]
pub enum SecretRecord {
    V1 { nonce: [u8; 24], sealed: Vec<u8>, created_ms: u64, updated_ms: u64 },
}

#[derive(Serialize, Deserialize)]
pub enum ClusterRecord {
    V1 {
        name: String,
        description: String,
        created_ms: u64,
    },
    /// V1 and its concurrency limits: (task, key, max).
    V2 {
        name: String,
        description: String,
        created_ms: u64,
        limits: Vec<(String, Option<String>, u32)>,
    },
}

impl From<&Cluster> for ClusterRecord {
    fn from(c: &Cluster) -> Self {
        ClusterRecord::V2 {
            name: c.name.clone(),
            description: c.description.clone(),
            created_ms: c.created_ms,
            limits: c.limits.iter().map(|l| (l.task.clone(), l.key.clone(), l.max)).collect(),
        }
    }
}

impl ClusterRecord {
    pub fn into_cluster(self, slug: String) -> Cluster {
        let (name, description, created_ms, limits) = match self {
            ClusterRecord::V1 { name, description, created_ms } => {
                (name, description, created_ms, Vec::new())
            }
            ClusterRecord::V2 { name, description, created_ms, limits } => {
                (name, description, created_ms, limits)
            }
        };
        let limits = limits.into_iter().map(|(task, key, max)| ConcurrencyLimit { task, key, max }).collect();
        Cluster { slug, name, description, created_ms, limits }
    }
}

/// An automation (its id is its key).
#[derive(Serialize, Deserialize)]
pub enum AutomationRecord {
    V1(AutomationV1),
}

#[derive(Serialize, Deserialize)]
pub struct AutomationV1 {
    name: String,
    task_type: String,
    input: String,
    cluster: String,
    max_retries: u32,
    triggers: Vec<String>,
    paused: bool,
    created_ms: u64,
    fired_until_ms: u64,
    fired: u64,
    last_fired_ms: Option<u64>,
}

impl From<&Automation> for AutomationRecord {
    fn from(a: &Automation) -> Self {
        AutomationRecord::V1(AutomationV1 {
            name: a.name.clone(),
            task_type: a.task_type.to_string(),
            input: a.input.clone(),
            cluster: a.cluster.clone(),
            max_retries: a.max_retries,
            triggers: a.triggers.clone(),
            paused: a.paused,
            created_ms: a.created_ms,
            fired_until_ms: a.fired_until_ms,
            fired: a.fired,
            last_fired_ms: a.last_fired_ms,
        })
    }
}

impl AutomationRecord {
    pub fn into_automation(self, id: AutomationId) -> Result<Automation, Error> {
        let AutomationRecord::V1(r) = self;
        let task_type = TaskType::parse(&r.task_type)
            .map_err(|e| Error::Corrupt { what: "automation", reason: e.to_string() })?;
        Ok(Automation {
            id,
            name: r.name,
            task_type,
            input: r.input,
            cluster: r.cluster,
            max_retries: r.max_retries,
            triggers: r.triggers,
            paused: r.paused,
            created_ms: r.created_ms,
            fired_until_ms: r.fired_until_ms,
            fired: r.fired,
            last_fired_ms: r.last_fired_ms,
        })
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
        let mut status = TaskStatus::queued(Some(TaskId::new()), "default".into(), 3);
        status.display = Some("shown".into());
        status.errors = 2;
        let back = decode::<TaskRecord>("task", &encode(&TaskRecord::from(&status))).unwrap();
        assert_eq!(back.into_status().unwrap(), status);
        let backoff = Backoff { initial_ms: 100, factor: 1.5, max_ms: 900, jitter: true };
        let mut guarded = status.clone().with_policy(TaskId::new(), true, None, Some(backoff));
        (guarded.state, guarded.poisoned, guarded.not_before_ms) = (TaskState::FailedOptional, true, Some(7));
        let back = decode::<TaskRecord>("task", &encode(&TaskRecord::from(&guarded))).unwrap();
        assert_eq!(back.into_status().unwrap(), guarded);
        guarded.usage = Some(Usage { cpu_us: 1_500, peak_memory_bytes: 3 << 20 });
        let back = decode::<TaskRecord>("task", &encode(&TaskRecord::from(&guarded))).unwrap();
        assert_eq!(back.into_status().unwrap(), guarded);
        let def = TaskDef {
            task_type: TaskType::parse("Leaf@v1.2").unwrap(),
            input: "{}".into(),
            depends_on: vec![TaskId::new(), TaskId::new()],
            handles: vec![0, 3],
        };
        let round_trip = |def: &TaskDef| decode::<DefRecord>("def", &encode(&DefRecord::from(def))).unwrap();
        assert!(matches!(round_trip(&def), DefRecord::V2 { .. }), "ids of no block stay explicit");
        assert_eq!(round_trip(&def).into_def().unwrap(), def);
        let block = TaskId::block(5);
        let packed = TaskDef { depends_on: vec![block[0], block[3]], ..def.clone() };
        assert!(matches!(round_trip(&packed), DefRecord::V3 { deps: Some(_), .. }));
        assert_eq!(round_trip(&packed).into_def().unwrap(), packed);
        let leaf = TaskDef { depends_on: vec![], handles: vec![], ..def };
        assert_eq!(round_trip(&leaf).into_def().unwrap(), leaf);
        let usage = Some(Usage { cpu_us: 7, peak_memory_bytes: 1 << 20 });
        let error = AttemptError { attempt: 1, message: "boom".into(), ran: Some((5, 9)), usage };
        let back = decode::<ErrorRecord>("error", &encode(&ErrorRecord::from(&error))).unwrap();
        assert_eq!(back.into_error(), error);
    }

    #[test]
    fn schema_3_statuses_read_with_the_default_failure_handling() {
        let status = TaskStatus::queued(None, "default".into(), 1);
        let TaskRecord::V5(v3, None, None) = TaskRecord::from(&status) else {
            panic!("a plain status has no policy and no usage")
        };
        let back = decode::<TaskRecord>("task", &encode(&TaskRecord::V3(v3))).unwrap();
        assert_eq!(back.into_status().unwrap(), status);
    }

    #[test]
    fn schema_2_task_records_read_as_legacy_parts() {
        let r = TaskV1 {
            parent: None,
            type_name: "Leaf".into(),
            version: (1, 2),
            input: "{}".into(),
            cluster: "west".into(),
            state: 2,
            max_retries: 1,
            attempt: 2,
            failures: 1,
            lost: 0,
            depends_on: vec![[1; 16]],
            dependents: vec![[2; 16], [3; 16]],
            unmet_deps: 0,
            incomplete: 4,
            display: None,
            errors: vec![(1, "boom".into())],
            ran_version: Some((1, 2)),
            created_ms: 1,
            started_ms: Some(2),
            finished_ms: Some(3),
        };
        let record = decode::<TaskRecord>("task", &encode(&TaskRecord::V2(r, vec![Some((2, 3))]))).unwrap();
        assert_eq!(record.cluster(), "west");
        let Stored::Legacy(legacy) = record.into_stored().unwrap() else { panic!("not read as schema 2") };
        assert_eq!((legacy.incomplete, legacy.status.errors), (4, 1));
        assert_eq!(legacy.errors[0].ran, Some((2, 3)));
        assert_eq!(legacy.def.depends_on, vec![TaskId::from_bytes([1; 16])]);
        let status = TaskStatus::queued(None, "default".into(), 0);
        assert!(
            matches!(TaskRecord::from(&status).into_stored().unwrap(), Stored::Current(s) if *s == status)
        );
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
        let v2 = ModuleRecord::V2 {
            size: 9,
            task_types: vec![("Leaf".into(), 1, 2)],
            uploaded_ms: 5,
            timeout_ms: Some(300),
            memory_bytes: None,
            allow_http: vec!["*.example.com".into()],
        };
        let limits =
            TaskLimits { timeout_ms: Some(300), memory_bytes: None, allow_http, secrets: Vec::new() };
        let limited = ModuleInfo { limits, ..info };
        assert_eq!(decode::<ModuleRecord>("module", &encode(&v2)).unwrap().into_info(digest), limited);
        let granted = ModuleInfo {
            limits: TaskLimits { secrets: vec!["API_KEY".into()], ..limited.limits.clone() },
            ..limited
        };
        let back = decode::<ModuleRecord>("module", &encode(&ModuleRecord::from(&granted))).unwrap();
        assert_eq!(back.into_info(digest), granted);
    }

    #[test]
    fn garbage_is_reported_as_corrupt() {
        assert!(matches!(decode::<TaskRecord>("task", &[9, 9, 9]), Err(Error::Corrupt { .. })));
    }
}
