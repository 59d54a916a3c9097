//! Hands the attempts the writer accepted to an observer (trace export),
//! without slowing the writer: nothing is copied unless an observer is set,
//! and a full observer queue drops batches (counted and logged) rather than
//! waiting.

use tokio::sync::mpsc;

use super::Report;
use crate::model::{LogEntry, SpanEntry, TaskId, TaskKey, now_ms};
use crate::store::Unit;

/// An attempt whose report the writer accepted.
#[derive(Debug, Clone)]
pub struct FinishedAttempt {
    /// The task.
    pub key: TaskKey,
    /// The task's parent, if it is not the job's root.
    pub parent: Option<TaskId>,
    /// The attempt, from 1.
    pub attempt: u32,
    /// `Name@vX.Y` of the task type.
    pub task_type: String,
    /// When the attempt started and was reported (Unix ms).
    pub started_ms: u64,
    pub finished_ms: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// What it logged.
    pub logs: Vec<LogEntry>,
    /// The spans it opened.
    pub spans: Vec<SpanEntry>,
    /// What it used, as its sandbox measured it.
    pub usage: Option<crate::model::Usage>,
}

/// Where finished attempts go, in batches (one per applied group).
pub type FinishedSender = mpsc::Sender<Vec<FinishedAttempt>>;

/// The writer's side of the observer.
pub(super) struct Observer {
    tx: FinishedSender,
    pending: Vec<FinishedAttempt>,
    dropped: u64,
    warned_at: u64,
}

impl Observer {
    pub(super) fn new(tx: FinishedSender) -> Self {
        Observer { tx, pending: Vec::new(), dropped: 0, warned_at: 0 }
    }

    /// What the observer will need of `report`, read before it is applied.
    pub(super) fn capture(unit: &mut Unit, report: &Report) -> Option<FinishedAttempt> {
        let (parent, started_ms) = unit.status(report.key).ok()?.map(|t| (t.parent, t.started_ms))?;
        let task_type = unit.def(report.key).ok()??.task_type.to_string();
        Some(FinishedAttempt {
            key: report.key,
            parent,
            attempt: report.attempt,
            task_type,
            started_ms: started_ms.unwrap_or_default(),
            finished_ms: now_ms(),
            error: report.outcome.as_ref().err().cloned(),
            logs: report.logs.clone(),
            spans: report.spans.clone(),
            usage: report.usage,
        })
    }

    /// Keeps an accepted attempt for the next `publish`.
    pub(super) fn accepted(&mut self, attempt: FinishedAttempt) {
        self.pending.push(attempt);
    }

    /// Sends what the last applied group accepted.
    pub(super) fn publish(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        if let Err(e) = self.tx.try_send(batch) {
            let lost = match &e {
                mpsc::error::TrySendError::Full(b) | mpsc::error::TrySendError::Closed(b) => b.len() as u64,
            };
            self.dropped += lost;
            if self.warned_at == 0 || self.dropped >= 2 * self.warned_at {
                self.warned_at = self.dropped;
                tracing::warn!(
                    dropped = self.dropped,
                    "the trace exporter falls behind: finished attempts were not exported"
                );
            }
        }
    }
}
