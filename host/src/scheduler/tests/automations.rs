//! Automations on an injected clock: a firing submits one job when the
//! clock reaches it (the claim that follows the clock's move wakes the
//! writer, whose group fires and hands the root task out); pausing drops
//! the firings it covers; deleting cancels unfinished jobs only.

use serde_json::{Value, json};

use super::sim::{Sim, TYPE};
use crate::model::{Automation, AutomationId, Clock, JobState, Schedule, TaskType};
use crate::scheduler::{AutomationOp, Settings};

const HOUR: u64 = 3_600_000;
/// 2026-01-01T11:00:00Z.
const ELEVEN: u64 = 1_767_265_200_000;

async fn sim_at(ms: u64) -> (Sim, Clock) {
    let clock = Clock::starting_at(ms);
    (Sim::start(Settings { clock: clock.clone(), ..Settings::default() }).await, clock)
}

fn noon_daily() -> Automation {
    Automation {
        id: AutomationId::new(),
        name: "noon".into(),
        task_type: TaskType::parse(TYPE).unwrap(),
        input: r#"{"report":"daily"}"#.into(),
        cluster: "default".into(),
        max_retries: 0,
        triggers: vec!["0 12 * * *".into()],
        paused: false,
        created_ms: 0,
        fired_until_ms: 0,
        fired: 0,
        last_fired_ms: None,
    }
}

async fn apply(sim: &Sim, op: AutomationOp) -> Automation {
    sim.scheduler.automation(op).await.unwrap().automation
}

fn next(a: &Automation) -> Option<u64> {
    a.next_at(&Schedule::parse_stored(&a.triggers))
}

#[tokio::test]
async fn a_firing_submits_one_job_when_the_clock_reaches_it() {
    let (sim, clock) = sim_at(ELEVEN).await;
    let a = apply(&sim, AutomationOp::Create(noon_daily())).await;
    assert_eq!(next(&a), Some(ELEVEN + HOUR));
    assert!(sim.claim(8).await.is_empty(), "nothing fires before noon");
    clock.advance(HOUR);
    let batch = sim.claim(8).await;
    assert_eq!(batch.len(), 1, "one firing, one root task");
    let input: Value = serde_json::from_str(&batch[0].input).unwrap();
    assert_eq!(input, json!({"report": "daily", "trigger_time": "2026-01-01T12:00:00Z"}));
    let job = sim.job(batch[0].key.job);
    assert_eq!((job.automation, job.name.as_str()), (Some(a.id), "noon"));
    assert!(sim.claim(8).await.is_empty(), "it fired once");
    let stored = sim.store.automation(a.id).unwrap().unwrap();
    assert_eq!((stored.fired, stored.last_fired_ms), (1, Some(ELEVEN + HOUR)));
    assert_eq!(next(&stored), Some(ELEVEN + 25 * HOUR));
}

#[tokio::test]
async fn pausing_drops_the_firings_it_covers() {
    let (sim, clock) = sim_at(ELEVEN).await;
    let a = apply(&sim, AutomationOp::Create(noon_daily())).await;
    let paused = apply(&sim, AutomationOp::Pause(a.id, true)).await;
    assert_eq!(next(&paused), None);
    clock.advance(49 * HOUR);
    assert!(sim.claim(8).await.is_empty(), "a paused automation does not fire");
    let resumed = apply(&sim, AutomationOp::Pause(a.id, false)).await;
    assert!(sim.claim(8).await.is_empty(), "resuming does not fire what the pause covered");
    assert_eq!(next(&resumed), Some(ELEVEN + 73 * HOUR), "the first noon after the resume");
    assert_eq!(resumed.fired, 0);
}

#[tokio::test]
async fn deleting_with_its_jobs_cancels_only_those_not_ended() {
    let (sim, clock) = sim_at(ELEVEN).await;
    let a = apply(&sim, AutomationOp::Create(noon_daily())).await;
    clock.advance(HOUR);
    let first = sim.claim(8).await.remove(0);
    sim.succeed(&first, Vec::new()).await.unwrap();
    clock.advance(24 * HOUR);
    let second = sim.claim(8).await.remove(0);
    let changed = sim.scheduler.automation(AutomationOp::Delete(a.id, true)).await.unwrap();
    assert_eq!(changed.canceled_jobs, 1);
    assert_eq!(sim.job(first.key.job).state(), JobState::Completed);
    assert!(sim.job(second.key.job).canceled);
    assert!(sim.store.automation(a.id).unwrap().is_none());
    clock.advance(24 * HOUR);
    assert!(sim.claim(8).await.is_empty(), "a deleted automation does not fire");
    let again = sim.scheduler.automation(AutomationOp::Delete(a.id, false)).await;
    assert!(matches!(again, Err(crate::scheduler::Error::UnknownAutomation(id)) if id == a.id));
}

#[tokio::test]
async fn many_firings_due_at_once_are_spread_over_groups_and_each_fires_once() {
    use crate::scheduler::automations::MAX_FIRINGS_PER_GROUP;
    let (sim, clock) = sim_at(ELEVEN).await;
    let n = 2 * MAX_FIRINGS_PER_GROUP + 88;
    let creates = (0..n).map(|_| sim.scheduler.automation(AutomationOp::Create(noon_daily())));
    let created: Vec<Automation> =
        futures_util::future::join_all(creates).await.into_iter().map(|c| c.unwrap().automation).collect();
    clock.advance(HOUR);
    // The claim wakes the writer; its group fires no more than the bound.
    let mut roots = sim.claim(1000).await;
    assert!((1..=MAX_FIRINGS_PER_GROUP).contains(&roots.len()), "{} fired in the first group", roots.len());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while roots.len() < n {
        assert!(std::time::Instant::now() < deadline, "{} of {n} firings within a minute", roots.len());
        roots.extend(sim.claim(1000).await);
    }
    assert!(sim.claim(1000).await.is_empty(), "none fired twice");
    let jobs: std::collections::HashSet<_> = roots.iter().map(|r| r.key.job).collect();
    assert_eq!(jobs.len(), n);
    for a in created {
        assert_eq!(sim.store.automation(a.id).unwrap().unwrap().fired, 1, "{}", a.id);
    }
}

#[tokio::test]
async fn a_host_keeps_at_most_its_bound_of_automations() {
    use crate::scheduler::automations::{Automations, MAX_AUTOMATIONS, Op};
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(dir.path()).unwrap();
    let mut unit = store.unit();
    let mut all = Automations::default();
    for _ in 0..MAX_AUTOMATIONS {
        all.apply(&mut unit, Op::Create(noon_daily()), ELEVEN).unwrap();
    }
    let refused = all.apply(&mut unit, Op::Create(noon_daily()), ELEVEN).unwrap_err();
    assert!(matches!(refused, crate::scheduler::Error::TooManyAutomations(MAX_AUTOMATIONS)), "{refused}");
    assert!(refused.to_string().contains("keeps 10000 automations"), "{refused}");
}
