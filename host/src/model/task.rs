//! Jobs and tasks as the scheduler sees them.

use super::{
    AutomationId, Backoff, JobId, JobState, JobStats, JobTrace, TaskCounts, TaskId, TaskKey, TaskState,
    TaskType, TraceParent, Usage, Version,
};

/// The lowest job priority.
pub const MIN_PRIORITY: i8 = -10;
/// The highest job priority.
pub const MAX_PRIORITY: i8 = 10;

/// Longest display name, in characters; longer ones are truncated.
pub const MAX_DISPLAY_CHARS: usize = 1024;

/// Keeps the first [`MAX_DISPLAY_CHARS`] characters of `display`.
pub fn truncate_display(display: &str) -> String {
    match display.char_indices().nth(MAX_DISPLAY_CHARS) {
        Some((end, _)) => display[..end].to_owned(),
        None => display.to_owned(),
    }
}

/// Longest cluster name.
pub const MAX_CLUSTER_CHARS: usize = 100;

/// Checks a cluster name: 1 to 100 characters of `[A-Za-z0-9-]`.
pub fn check_cluster(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_CLUSTER_CHARS {
        return Err(format!("cluster name must be 1 to {MAX_CLUSTER_CHARS} characters, got {}", name.len()));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("cluster name `{}` may only contain A-Z, a-z, 0-9 and -", name.escape_debug()));
    }
    Ok(())
}

/// Progress counters of a job, by label: (total, done).
pub type Progress = std::collections::BTreeMap<String, (u64, u64)>;

/// Progress labels one job keeps; additions to further labels are dropped.
pub const MAX_JOB_PROGRESS_LABELS: usize = 256;

/// One execution of a workflow, started from a root task.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Its id; also its submission time.
    pub id: JobId,
    /// The name given at submission.
    pub name: String,
    /// The root task (the first, when it has several).
    pub root: TaskId,
    /// Its other root tasks, if it has several.
    pub other_roots: Vec<TaskId>,
    /// The root task's cluster.
    pub cluster: String,
    /// Tasks per state.
    pub counts: TaskCounts,
    /// Whether the user canceled it (until it is retried).
    pub canceled: bool,
    /// The client's key making the submission idempotent, if any.
    pub idempotency_key: Option<String>,
    /// Progress counters its computed tasks reported.
    pub progress: Progress,
    /// The `traceparent` the client passed at submission, if any.
    pub traceparent: Option<TraceParent>,
    /// The automation that submitted it, if one did.
    pub automation: Option<AutomationId>,
    /// Its priority: the ready tasks of jobs with a higher one start first.
    pub priority: i8,
    /// Its execution so far.
    pub stats: JobStats,
}

impl Job {
    /// The derived job state.
    pub fn state(&self) -> JobState {
        self.counts.job_state(self.canceled)
    }

    /// Adds to the progress counter `label`; answers false (and adds
    /// nothing) for a new label past [`MAX_JOB_PROGRESS_LABELS`].
    pub fn add_progress(&mut self, label: String, total: u64, done: u64) -> bool {
        if !self.progress.contains_key(&label) && self.progress.len() >= MAX_JOB_PROGRESS_LABELS {
            return false;
        }
        let counter = self.progress.entry(label).or_default();
        counter.0 = counter.0.saturating_add(total);
        counter.1 = counter.1.saturating_add(done);
        true
    }

    /// Where the job sits in a trace (its span, its trace id).
    pub fn trace(&self) -> JobTrace {
        JobTrace::new(self.id, self.traceparent.as_ref())
    }

    /// Whether nothing more will happen to the job until someone acts:
    /// completed, or halted with no attempt still running.
    pub fn has_ended(&self) -> bool {
        let state = self.state();
        state == JobState::Completed || (state.is_halted() && self.counts.running == 0)
    }
}

/// Why one attempt of a task failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptError {
    /// The attempt number, from 1.
    pub attempt: u32,
    /// What went wrong.
    pub message: String,
    /// When it ran (start, end; Unix ms), if it started.
    pub ran: Option<(u64, u64)>,
    /// What it used, when its runner reported it.
    pub usage: Option<Usage>,
}

/// What a task is: fixed when it is created, never rewritten.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskDef {
    /// The task type as submitted.
    pub task_type: TaskType,
    /// The JSON input.
    pub input: String,
    /// Siblings that must be complete before it may run, in submission order.
    pub depends_on: Vec<TaskId>,
    /// The handles its parent submitted `depends_on` under, in the same
    /// order (what the task names them by; empty for tasks created before
    /// outputs existed).
    pub handles: Vec<u32>,
}

/// Where a task stands: the part of a task the scheduler changes. Small
/// and of bounded size whatever the job's shape (edge lists live in the
/// [`TaskDef`], errors apart).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskStatus {
    /// The task that submitted it; `None` for the root.
    pub parent: Option<TaskId>,
    /// The cluster whose runners may run it.
    pub cluster: String,
    /// Failed attempts retried before the task fails.
    pub max_retries: u32,
    /// Where it stands.
    pub state: TaskState,
    /// Attempts started so far; the current or last attempt's number (a
    /// start handed back unrun is undone).
    pub attempt: u32,
    /// The fencing token of the current or last start: never given to
    /// another start, even one after a crash (see `scheduler::lease`).
    pub lease: u64,
    /// Attempts that failed since the last job retry.
    pub failures: u32,
    /// Attempts lost with their runner (expired lease, host crash).
    pub lost: u32,
    /// 1 while the task is not computed, plus one for each of its subtasks
    /// whose subtree is not complete: 0 means its whole subtree is complete.
    pub open: u64,
    /// The display name set by the task, if any.
    pub display: Option<String>,
    /// Errors recorded so far (the store keeps the last
    /// [`MAX_KEPT_ERRORS`]); the next one's number.
    pub errors: u32,
    /// The implementation version of its last attempt.
    pub ran_version: Option<Version>,
    /// When it was created (Unix ms).
    pub created_ms: u64,
    /// When its last attempt started.
    pub started_ms: Option<u64>,
    /// When it was last computed or failed.
    pub finished_ms: Option<u64>,
    /// Whether it was submitted as optional: a failure for good in its
    /// subtree does not fail the job.
    pub optional: bool,
    /// Its innermost optional ancestor, itself included: the subtree a
    /// failure of this task confines itself to (`None`: the job fails).
    pub guard: Option<TaskId>,
    /// On an optional task: a task of its subtree failed for good, so what
    /// is queued in the subtree is skipped, and so is what is added later.
    pub poisoned: bool,
    /// The delay before each retry, if any.
    pub backoff: Option<Backoff>,
    /// While it waits out a backoff: when it may run again (Unix ms).
    pub not_before_ms: Option<u64>,
    /// What its last reported attempt used.
    pub usage: Option<Usage>,
}

/// Attempt errors kept per task; older ones are dropped.
pub const MAX_KEPT_ERRORS: u32 = 20;

impl TaskStatus {
    /// A queued task, not yet attached to any dependency.
    pub fn queued(parent: Option<TaskId>, cluster: String, max_retries: u32) -> Self {
        TaskStatus {
            parent,
            cluster,
            max_retries,
            state: TaskState::Queued,
            attempt: 0,
            lease: 0,
            failures: 0,
            lost: 0,
            open: 1,
            display: None,
            errors: 0,
            ran_version: None,
            created_ms: super::now_ms(),
            started_ms: None,
            finished_ms: None,
            optional: false,
            guard: None,
            poisoned: false,
            backoff: None,
            not_before_ms: None,
            usage: None,
        }
    }

    /// Sets how failures are handled: `optional` (with `id`, the task's
    /// own id, as its guard) or the `inherited` guard of its parent, and a
    /// backoff.
    pub fn with_policy(
        mut self,
        id: TaskId,
        optional: bool,
        inherited: Option<TaskId>,
        backoff: Option<Backoff>,
    ) -> Self {
        self.optional = optional;
        self.guard = if optional { Some(id) } else { inherited };
        self.backoff = backoff;
        self
    }
}

/// One node of a job's graph, as the API shows it: what it is, where it
/// stands, and its last errors.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Its job and id.
    pub key: TaskKey,
    /// What it is.
    pub def: TaskDef,
    /// Where it stands.
    pub status: TaskStatus,
    /// The last errors, one per failed attempt, oldest first.
    pub errors: Vec<AttemptError>,
}

impl Task {
    /// The name to show: the display name, else the task type's name.
    pub fn display_name(&self) -> &str {
        self.status.display.as_deref().unwrap_or(&self.def.task_type.name)
    }

    /// The last attempt's error, if it failed.
    pub fn last_error(&self) -> Option<&str> {
        self.errors.last().map(|e| e.message.as_str())
    }
}

/// A subtask as a running task submitted it, before it is committed.
#[derive(Clone, Debug, PartialEq)]
pub struct SubtaskSpec {
    /// The task type to run.
    pub task_type: TaskType,
    /// Its JSON input, already checked to be valid JSON.
    pub input: String,
    /// Indexes of earlier subtasks of the same execution it depends on.
    pub depends_on: Vec<u32>,
    /// Failed attempts to retry.
    pub max_retries: u32,
    /// Its cluster; the parent's when `None`.
    pub cluster: Option<String>,
    /// Whether its failure for good spares the job (see [`TaskStatus::guard`]).
    pub optional: bool,
    /// The delay before each retry, if any (already checked).
    pub backoff: Option<Backoff>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_are_slugs() {
        assert!(check_cluster("default").is_ok());
        assert!(check_cluster("gpu-2").is_ok());
        assert!(check_cluster("").is_err());
        assert!(check_cluster("a b").is_err());
        assert!(check_cluster(&"a".repeat(101)).is_err());
    }

    #[test]
    fn display_is_truncated_to_1024_chars() {
        let long = "é".repeat(2000);
        assert_eq!(truncate_display(&long).chars().count(), MAX_DISPLAY_CHARS);
        assert_eq!(truncate_display("a\nb"), "a\nb");
    }
}
