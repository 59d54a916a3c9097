//! Automations in the writer: their schedules in memory, ordered by next
//! firing, so the writer wakes for the earliest one. A firing submits the
//! job and moves the automation's `fired_until_ms` in the same group, so a
//! firing happens once whatever crashes: either both are committed or
//! neither is, and a restart fires it then.
//!
//! Firings missed while the host was down fire once at start, as the
//! latest of them ([`Missed::Once`], the default), or not at all
//! ([`Missed::Skip`]). A paused automation does not fire; resuming it
//! drops the firings the pause covered.
//!
//! Bounds: a host keeps at most [`MAX_AUTOMATIONS`], and one group fires at
//! most [`MAX_FIRINGS_PER_GROUP`]; the others due then fire in the groups
//! that follow at once (each with its own due time), so many schedules on
//! one minute never hold the writer for long.

use std::collections::BTreeSet;
use std::time::Duration;

use rustc_hash::FxHashMap as HashMap;
use tokio::time::Instant;

use super::graph::{self, Ready};
use super::{Command, Error, JobSpec, Scheduler};
use crate::model::{Automation, AutomationId, Clock, Schedule};
use crate::store::{Store, Unit};

/// The most automations a host keeps; one more is refused.
pub const MAX_AUTOMATIONS: usize = 10_000;
/// The most firings one group commits.
pub const MAX_FIRINGS_PER_GROUP: usize = 256;

/// What happens to firings missed while the host was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Missed {
    /// Each automation fires once at start for all it missed, with the
    /// latest missed time.
    #[default]
    Once,
    /// Missed firings are dropped.
    Skip,
}

/// A change to the automations.
#[derive(Debug)]
pub enum Op {
    /// Adds an automation (its times are set from the scheduler's clock).
    Create(Automation),
    /// Pauses (true) or resumes (false) an automation.
    Pause(AutomationId, bool),
    /// Deletes an automation, canceling its unfinished jobs if asked.
    Delete(AutomationId, bool),
}

/// What a change did.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The automation as it is now (as it was, when deleted).
    pub automation: Automation,
    /// Jobs canceled with it.
    pub canceled_jobs: u64,
}

/// The automations and their next firings.
#[derive(Default)]
pub struct Automations {
    by_id: HashMap<AutomationId, (Automation, Schedule)>,
    next: BTreeSet<(u64, AutomationId)>,
}

impl Automations {
    /// Loads the stored automations; with [`Missed::Skip`], moves those
    /// that missed firings past `now_ms` (in `unit`).
    pub fn load(store: &Store, unit: &mut Unit, now_ms: u64, missed: Missed) -> Result<Self, Error> {
        let mut all = Automations::default();
        for mut a in store.automations()? {
            let schedule = Schedule::parse_stored(&a.triggers);
            if missed == Missed::Skip && a.due(&schedule, now_ms).is_some() {
                a.fired_until_ms = now_ms;
                unit.put_automation(&a);
            }
            all.insert(a, schedule);
        }
        if !all.by_id.is_empty() {
            tracing::info!(automations = all.by_id.len(), "loaded automations");
        }
        Ok(all)
    }

    fn insert(&mut self, a: Automation, schedule: Schedule) {
        if let Some(at) = a.next_at(&schedule) {
            self.next.insert((at, a.id));
        }
        self.by_id.insert(a.id, (a, schedule));
    }

    fn remove(&mut self, id: AutomationId) -> Option<(Automation, Schedule)> {
        let (a, schedule) = self.by_id.remove(&id)?;
        if let Some(at) = a.next_at(&schedule) {
            self.next.remove(&(at, id));
        }
        Some((a, schedule))
    }

    /// When the next firing is due, as an instant of this process.
    pub fn next_due(&self, clock: &Clock) -> Option<Instant> {
        let &(at, _) = self.next.first()?;
        Some(Instant::now() + Duration::from_millis(at.saturating_sub(clock.now_ms())))
    }

    /// Fires the automations due at `now_ms`, the earliest first and at
    /// most [`MAX_FIRINGS_PER_GROUP`]: submits each one's job and records
    /// the firing, both in `unit`. Answers the root tasks to queue.
    pub fn fire_due(&mut self, unit: &mut Unit, now_ms: u64) -> Vec<Ready> {
        let mut ready = Vec::new();
        let mut fired = 0;
        while let Some(&(at, id)) = self.next.first()
            && at <= now_ms
            && fired < MAX_FIRINGS_PER_GROUP
        {
            fired += 1;
            let Some((mut a, schedule)) = self.remove(id) else {
                self.next.remove(&(at, id));
                continue;
            };
            let at = a.due(&schedule, now_ms).unwrap_or(at);
            let (job, roots, _) = graph::submit_job(unit, job_spec(&a, at));
            tracing::info!(automation = %a.id, job = %job.id, at, "automation fired");
            unit.add_fired(a.id, job.id);
            a.fire(at);
            unit.put_automation(&a);
            ready.extend(roots);
            self.insert(a, schedule);
        }
        ready
    }

    /// Applies `op` at `now_ms`.
    pub fn apply(&mut self, unit: &mut Unit, op: Op, now_ms: u64) -> Result<Changed, Error> {
        let (automation, canceled_jobs) = match op {
            Op::Create(mut a) => {
                if self.by_id.len() >= MAX_AUTOMATIONS {
                    return Err(Error::TooManyAutomations(MAX_AUTOMATIONS));
                }
                (a.created_ms, a.fired_until_ms, a.fired, a.last_fired_ms) = (now_ms, now_ms, 0, None);
                self.store(unit, a.clone());
                (a, 0)
            }
            Op::Pause(id, paused) => {
                let (mut a, _) = self.by_id.get(&id).cloned().ok_or(Error::UnknownAutomation(id))?;
                if a.paused && !paused {
                    a.fired_until_ms = a.fired_until_ms.max(now_ms);
                }
                a.paused = paused;
                self.store(unit, a.clone());
                (a, 0)
            }
            Op::Delete(id, cancel) => {
                let (a, _) = self.remove(id).ok_or(Error::UnknownAutomation(id))?;
                unit.delete_automation(id);
                let canceled = if cancel { cancel_jobs(unit, id)? } else { 0 };
                (a, canceled)
            }
        };
        Ok(Changed { automation, canceled_jobs })
    }

    fn store(&mut self, unit: &mut Unit, a: Automation) {
        unit.put_automation(&a);
        self.remove(a.id);
        let schedule = Schedule::parse_stored(&a.triggers);
        self.insert(a, schedule);
    }
}

/// The job a firing at `at_ms` submits.
fn job_spec(a: &Automation, at_ms: u64) -> JobSpec {
    JobSpec {
        name: a.name.clone(),
        task_type: a.task_type.clone(),
        input: a.input_at(at_ms),
        cluster: a.cluster.clone(),
        max_retries: a.max_retries,
        idempotency_key: None,
        traceparent: None,
        backoff: None,
        not_before_ms: None,
        automation: Some(a.id),
        priority: 0,
        more_roots: Vec::new(),
    }
}

/// Cancels the jobs `automation` fired that have not ended; answers how many.
fn cancel_jobs(unit: &mut Unit, automation: AutomationId) -> Result<u64, Error> {
    let mut canceled = 0;
    for job in unit.fired_by(automation)? {
        let Some(state) = unit.job(job)?.map(|j| j.state()) else { continue };
        if !state.is_halted() && state != crate::model::JobState::Completed {
            graph::cancel(unit, job)?;
            canceled += 1;
        }
    }
    Ok(canceled)
}

impl Scheduler {
    /// The scheduler's clock (what schedules and delays are measured by).
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Applies a change to the automations; answers once it is on disk.
    pub async fn automation(&self, op: Op) -> Result<Changed, Error> {
        self.call(|tx| Command::Automation(op, tx)).await
    }
}
