//! The pure domain model: ids, task types and versions, task and job states,
//! and the derivation of a job's state. No I/O happens here.

mod automation;
mod backoff;
mod cache;
mod clock;
mod cluster;
mod concurrency;
mod egress;
mod ids;
mod module;
mod output;
mod record;
mod secret;
mod state;
mod task;
mod task_type;
mod telemetry;
mod trace;
mod usage;

pub use automation::{
    Automation, MAX_TRIGGER_BYTES, MAX_TRIGGERS, Schedule, TRIGGER_TIME_FIELD, Trigger,
    check_automation_input, rfc3339,
};
pub use backoff::{Backoff, MAX_BACKOFF_FACTOR, MAX_BACKOFF_MS};
pub use cache::{
    CACHE_CHUNK_BYTES, CacheKey, MAX_CACHE_VALUE_BYTES, MAX_KEY_BYTES, MAX_LIST_KEYS, check_attempt_writes,
    check_prefix, check_value_size,
};
pub use clock::Clock;
pub use cluster::{Cluster, DEFAULT_CLUSTER, MAX_CLUSTER_TEXT, slug_from};
pub use concurrency::{ConcurrencyLimit, MAX_CONCURRENCY, MAX_LIMITS, check_limits};
pub use egress::{HostPattern, is_special_address, parse_allow_list};
pub use ids::{AutomationId, JobId, ParseIdError, TaskId, TaskKey};
pub use module::{Digest, ModuleInfo, TaskLimits};
pub use output::{MAX_OUTPUT_LINKS, MAX_TASK_OUTPUT_BYTES, Output, OutputError, StoredOutput};
pub use record::{Admit, Bounds, OverBound, Record, SubtaskRequest, parse_amount, truncate_to};
pub use secret::{
    MAX_GRANTS, MAX_SECRET_BYTES, MAX_SECRETS, SecretInfo, check_secret_name, check_secret_value, redact,
    redact_bytes, redaction_forms,
};
pub use state::{JobState, TaskCounts, TaskState};
pub use task::{
    AttemptError, Job, MAX_DISPLAY_CHARS, MAX_JOB_PROGRESS_LABELS, MAX_KEPT_ERRORS, MAX_PRIORITY,
    MIN_PRIORITY, Progress, SubtaskSpec, Task, TaskDef, TaskStatus, check_cluster, truncate_display,
};
pub use task_type::{MAX_NAME_BYTES, TaskType, TaskTypeError, Version};
pub use telemetry::{LogEntry, LogLevel, SpanEntry};
pub use trace::{JobTrace, ParseTraceParentError, TraceParent, attempt_span_id, guest_span_id};
pub use usage::{JobStats, Usage};

/// Milliseconds since the Unix epoch, the time unit of every timestamp.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
