//! Task states, job states, and how a job's state follows from its tasks'.

use serde::{Deserialize, Serialize};

/// Where a task stands.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting to run (or to become eligible).
    Queued,
    /// An attempt is executing.
    Running,
    /// Finished successfully; its subtasks exist.
    Computed,
    /// Failed after exhausting its retries.
    Failed,
    /// Failed for good inside an optional task's subtree: the job goes on.
    FailedOptional,
    /// Never ran: a task of its optional subtree failed for good.
    Skipped,
}

impl TaskState {
    /// Every state, in the order the API lists them.
    pub const ALL: [TaskState; 6] = [
        TaskState::Queued,
        TaskState::Running,
        TaskState::Computed,
        TaskState::Failed,
        TaskState::FailedOptional,
        TaskState::Skipped,
    ];

    /// The lowercase name used by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Computed => "computed",
            TaskState::Failed => "failed",
            TaskState::FailedOptional => "failed_optional",
            TaskState::Skipped => "skipped",
        }
    }

    /// Whether the task is done for good in a way that lets its dependents
    /// run and its job complete: computed, failed-optional or skipped.
    pub fn is_settled(self) -> bool {
        matches!(self, TaskState::Computed | TaskState::FailedOptional | TaskState::Skipped)
    }
}

/// Where a job stands; always derived from its tasks, never set by hand.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Nothing has started yet.
    Submitted,
    /// At least one task is running.
    Running,
    /// Some tasks are computed, others queued, none running.
    Started,
    /// Every task is computed (or failed-optional, or skipped).
    Completed,
    /// A task failed for good; the job is halted.
    Failed,
    /// The user canceled the job; it is halted.
    Canceled,
}

impl JobState {
    /// Every state, in the order the API lists them.
    pub const ALL: [JobState; 6] = [
        JobState::Submitted,
        JobState::Running,
        JobState::Started,
        JobState::Completed,
        JobState::Failed,
        JobState::Canceled,
    ];

    /// The lowercase name used by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Submitted => "submitted",
            JobState::Running => "running",
            JobState::Started => "started",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }

    /// Whether no further task of the job may start.
    pub fn is_halted(self) -> bool {
        matches!(self, JobState::Failed | JobState::Canceled)
    }
}

/// How many tasks of a job are in each state.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct TaskCounts {
    /// Tasks waiting to run.
    pub queued: u64,
    /// Tasks executing.
    pub running: u64,
    /// Tasks finished successfully.
    pub computed: u64,
    /// Tasks failed for good.
    pub failed: u64,
    /// Tasks failed for good inside an optional subtree.
    pub failed_optional: u64,
    /// Tasks skipped because their optional subtree failed.
    pub skipped: u64,
}

impl TaskCounts {
    /// The number of tasks.
    pub fn total(&self) -> u64 {
        self.queued + self.running + self.computed + self.failed + self.failed_optional + self.skipped
    }

    /// Tasks settled: computed, failed-optional or skipped.
    pub fn settled(&self) -> u64 {
        self.computed + self.failed_optional + self.skipped
    }

    /// How many tasks are in `state`.
    pub fn of(&self, state: TaskState) -> u64 {
        *self.clone().of_mut(state)
    }

    /// The counter of `state`.
    pub fn of_mut(&mut self, state: TaskState) -> &mut u64 {
        match state {
            TaskState::Queued => &mut self.queued,
            TaskState::Running => &mut self.running,
            TaskState::Computed => &mut self.computed,
            TaskState::Failed => &mut self.failed,
            TaskState::FailedOptional => &mut self.failed_optional,
            TaskState::Skipped => &mut self.skipped,
        }
    }

    /// Records a task moving from `from` to `to`.
    pub fn transition(&mut self, from: TaskState, to: TaskState) {
        let count = self.of_mut(from);
        *count = count.saturating_sub(1);
        *self.of_mut(to) += 1;
    }

    /// The job's state, checked in the order of the semantics: canceled,
    /// failed, completed (every task settled), running, started, submitted.
    pub fn job_state(&self, canceled: bool) -> JobState {
        if canceled {
            JobState::Canceled
        } else if self.failed > 0 {
            JobState::Failed
        } else if self.total() > 0 && self.settled() == self.total() {
            JobState::Completed
        } else if self.running > 0 {
            JobState::Running
        } else if self.settled() > 0 {
            JobState::Started
        } else {
            JobState::Submitted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(queued: u64, running: u64, computed: u64, failed: u64) -> TaskCounts {
        TaskCounts { queued, running, computed, failed, ..TaskCounts::default() }
    }

    #[test]
    fn canceled_wins_over_everything() {
        assert_eq!(counts(1, 1, 1, 1).job_state(true), JobState::Canceled);
        assert_eq!(counts(0, 0, 3, 0).job_state(true), JobState::Canceled);
    }

    #[test]
    fn a_failed_task_fails_the_job_even_while_others_run() {
        assert_eq!(counts(2, 1, 1, 1).job_state(false), JobState::Failed);
    }

    #[test]
    fn completed_when_every_task_is_computed() {
        assert_eq!(counts(0, 0, 16, 0).job_state(false), JobState::Completed);
    }

    #[test]
    fn running_when_any_task_runs() {
        assert_eq!(counts(3, 1, 2, 0).job_state(false), JobState::Running);
        assert_eq!(counts(0, 1, 0, 0).job_state(false), JobState::Running);
    }

    #[test]
    fn started_when_some_computed_and_some_queued() {
        assert_eq!(counts(4, 0, 1, 0).job_state(false), JobState::Started);
    }

    #[test]
    fn submitted_when_nothing_started() {
        assert_eq!(counts(1, 0, 0, 0).job_state(false), JobState::Submitted);
        assert_eq!(counts(0, 0, 0, 0).job_state(false), JobState::Submitted);
    }

    #[test]
    fn failed_optional_and_skipped_tasks_complete_a_job() {
        let c = TaskCounts { computed: 3, failed_optional: 1, skipped: 2, ..TaskCounts::default() };
        assert_eq!(c.job_state(false), JobState::Completed);
        let started = TaskCounts { queued: 1, skipped: 2, ..TaskCounts::default() };
        assert_eq!(started.job_state(false), JobState::Started);
    }

    #[test]
    fn transitions_keep_the_total() {
        let mut c = counts(1, 0, 0, 0);
        c.transition(TaskState::Queued, TaskState::Running);
        c.transition(TaskState::Running, TaskState::Computed);
        assert_eq!(c, counts(0, 0, 1, 0));
    }
}
