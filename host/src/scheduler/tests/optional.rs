//! Optional tasks, backoff and permanent failures, through the scheduler:
//! what fails for good inside an optional subtree spares the job and skips
//! what is queued there; a backoff holds the task off its runners; a
//! permanent failure is not retried.

use std::time::{Duration, Instant};

use serde_json::json;

use super::sim::{Sim, optional, report, spec};
use crate::model::{Backoff, JobId, JobState, SubtaskSpec, TaskState};
use crate::scheduler::{Assignment, Settings};

fn settings() -> Settings {
    Settings {
        lease_ttl: Duration::from_secs(30),
        max_lost_attempts: 2,
        finished: None,
        ..Settings::default()
    }
}

/// Submits a root and has it submit `subtasks`.
async fn job_with(sim: &Sim, subtasks: Vec<SubtaskSpec>) -> JobId {
    let id = sim.submit(json!("root"), 0).await;
    let root = sim.claim(1).await;
    sim.succeed(&root[0], subtasks).await.unwrap();
    id
}

/// `text` as a JSON string, as task inputs are kept.
fn quoted(text: &str) -> String {
    json!(text).to_string()
}

/// Claims everything ready, and finds the task whose input is `input`.
async fn claim_input(sim: &Sim, input: &str) -> (Assignment, Vec<Assignment>) {
    let mut batch = sim.claim(64).await;
    let want = quoted(input);
    let at = batch.iter().position(|a| a.input == want).unwrap_or_else(|| {
        panic!("{input} is not ready: {:?}", batch.iter().map(|a| &a.input).collect::<Vec<_>>())
    });
    let found = batch.remove(at);
    (found, batch)
}

/// The state of the task of job `id` whose input is `input`.
fn state_of(sim: &Sim, id: JobId, input: &str) -> TaskState {
    let tasks = sim.tasks(id);
    let want = quoted(input);
    let task = tasks.iter().find(|t| t.def.input == want).expect("such a task");
    task.status.state
}

#[tokio::test]
async fn an_optional_task_that_fails_spares_the_job_and_its_dependents_run() {
    let sim = Sim::start(settings()).await;
    let id = job_with(&sim, vec![optional(json!("o"), vec![]), spec(json!("after"), vec![0])]).await;
    let (o, _) = claim_input(&sim, "o").await;
    sim.fail(&o, "boom").await.unwrap();
    assert_eq!(state_of(&sim, id, "o"), TaskState::FailedOptional);
    assert_ne!(sim.job(id).state(), JobState::Failed);
    let (after, _) = claim_input(&sim, "after").await;
    sim.succeed(&after, vec![]).await.unwrap();
    let job = sim.job(id);
    assert_eq!(job.state(), JobState::Completed);
    assert_eq!((job.counts.computed, job.counts.failed_optional, job.counts.failed), (2, 1, 0));
}

#[tokio::test]
async fn a_failure_deep_in_an_optional_subtree_skips_what_is_queued_there_and_what_comes_later() {
    let sim = Sim::start(settings()).await;
    let id = job_with(&sim, vec![optional(json!("o"), vec![]), spec(json!("sibling"), vec![0])]).await;
    let (o, _) = claim_input(&sim, "o").await;
    let inner = vec![spec(json!("a"), vec![]), spec(json!("b"), vec![]), spec(json!("c"), vec![0, 1])];
    sim.succeed(&o, inner).await.unwrap();
    let (a, rest) = claim_input(&sim, "a").await;
    let b = rest.into_iter().next().expect("b runs beside a");
    sim.fail(&a, "deep").await.unwrap();
    assert_eq!(state_of(&sim, id, "a"), TaskState::FailedOptional);
    assert_eq!(state_of(&sim, id, "c"), TaskState::Skipped, "c was queued in the failed subtree");
    assert!(sim.claim(64).await.is_empty(), "b still runs: the subtree is not complete, the sibling waits");
    // b was running: it finishes, and the subtasks it adds are skipped.
    sim.succeed(&b, vec![spec(json!("late"), vec![])]).await.unwrap();
    assert_eq!(state_of(&sim, id, "late"), TaskState::Skipped);
    assert_eq!(state_of(&sim, id, "o"), TaskState::Computed, "the optional task itself computed");
    let (sibling, _) = claim_input(&sim, "sibling").await;
    sim.succeed(&sibling, vec![]).await.unwrap();
    let job = sim.job(id);
    assert_eq!(job.state(), JobState::Completed);
    let c = job.counts;
    assert_eq!((c.computed, c.failed_optional, c.skipped, c.total()), (4, 1, 2, 7));
}

#[tokio::test]
async fn nesting_confines_the_skipping_to_the_innermost_optional_subtree() {
    let sim = Sim::start(settings()).await;
    let id = job_with(&sim, vec![optional(json!("outer"), vec![])]).await;
    let (outer, _) = claim_input(&sim, "outer").await;
    sim.succeed(&outer, vec![optional(json!("inner"), vec![]), spec(json!("p"), vec![0])]).await.unwrap();
    let (inner, _) = claim_input(&sim, "inner").await;
    sim.succeed(&inner, vec![spec(json!("q"), vec![]), spec(json!("r"), vec![0])]).await.unwrap();
    let (q, _) = claim_input(&sim, "q").await;
    sim.fail(&q, "inner failure").await.unwrap();
    assert_eq!(state_of(&sim, id, "r"), TaskState::Skipped);
    // p depends on inner, whose subtree is now complete: p runs, in the
    // outer subtree, which the inner failure did not touch.
    let (p, _) = claim_input(&sim, "p").await;
    sim.succeed(&p, vec![]).await.unwrap();
    assert_eq!(state_of(&sim, id, "p"), TaskState::Computed);
    assert_eq!(sim.job(id).state(), JobState::Completed);
}

#[tokio::test]
async fn an_optional_task_uses_its_retries_before_it_fails_for_good() {
    let sim = Sim::start(settings()).await;
    let id = job_with(&sim, vec![SubtaskSpec { max_retries: 1, ..optional(json!("o"), vec![]) }]).await;
    let (first, _) = claim_input(&sim, "o").await;
    sim.fail(&first, "once").await.unwrap();
    assert_eq!(state_of(&sim, id, "o"), TaskState::Queued);
    let (second, _) = claim_input(&sim, "o").await;
    assert_eq!(second.attempt, 2);
    sim.fail(&second, "twice").await.unwrap();
    assert_eq!(state_of(&sim, id, "o"), TaskState::FailedOptional);
    assert_eq!(sim.job(id).state(), JobState::Completed);
}

#[tokio::test]
async fn a_job_retry_runs_failed_tasks_again_but_leaves_failed_optional_ones() {
    let sim = Sim::start(settings()).await;
    let id = job_with(&sim, vec![optional(json!("o"), vec![]), spec(json!("f"), vec![])]).await;
    let (o, rest) = claim_input(&sim, "o").await;
    sim.fail(&o, "optional failure").await.unwrap();
    sim.fail(&rest[0], "real failure").await.unwrap();
    assert_eq!(sim.job(id).state(), JobState::Failed);
    assert_eq!(sim.scheduler.retry(id).await.unwrap().requeued, 1, "only the failed task");
    let (f, others) = claim_input(&sim, "f").await;
    assert!(others.is_empty(), "the failed-optional task does not run again");
    sim.succeed(&f, vec![]).await.unwrap();
    assert_eq!(sim.job(id).state(), JobState::Completed);
    assert_eq!(state_of(&sim, id, "o"), TaskState::FailedOptional);
}

#[tokio::test]
async fn a_forced_cancel_inside_an_optional_subtree_fails_the_task_for_the_retry() {
    let sim = Sim::start(settings()).await;
    let id = job_with(&sim, vec![optional(json!("o"), vec![]), spec(json!("after"), vec![0])]).await;
    let (o, _) = claim_input(&sim, "o").await;
    sim.scheduler.cancel(id).await.unwrap();
    sim.scheduler
        .report(crate::scheduler::Report { canceled: true, ..report(&o, Err("canceled".into())) })
        .await
        .unwrap();
    assert_eq!(state_of(&sim, id, "o"), TaskState::Failed, "interrupted, not failed for good");
    assert_eq!(sim.scheduler.retry(id).await.unwrap().requeued, 1);
    let (again, _) = claim_input(&sim, "o").await;
    sim.succeed(&again, vec![]).await.unwrap();
    let (after, _) = claim_input(&sim, "after").await;
    sim.succeed(&after, vec![]).await.unwrap();
    assert_eq!(sim.job(id).state(), JobState::Completed);
}

fn backoff(initial_ms: u64) -> Backoff {
    Backoff { initial_ms, factor: 2.0, max_ms: 10_000, jitter: false }
}

/// Waits (at most 5 s) for the next task to be claimable.
async fn claim_within(sim: &Sim, limit: Duration) -> Option<Assignment> {
    let claim = sim.scheduler.claim_batch("default", 1);
    tokio::time::timeout(limit, claim).await.ok().map(|b| b.unwrap().remove(0))
}

#[tokio::test]
async fn a_retry_waits_out_its_backoff_and_holds_no_runner_meanwhile() {
    let sim = Sim::start(settings()).await;
    let spec = SubtaskSpec { max_retries: 2, backoff: Some(backoff(300)), ..spec(json!("flaky"), vec![]) };
    let id = job_with(&sim, vec![spec, super::sim::spec(json!("other"), vec![])]).await;
    let (flaky, _other) = claim_input(&sim, "flaky").await;
    let failed_at = Instant::now();
    sim.fail(&flaky, "try again").await.unwrap();
    let task = sim.tasks(id).into_iter().find(|t| t.def.input == "\"flaky\"").unwrap();
    assert!(task.status.not_before_ms.is_some(), "the retry is delayed");
    assert!(sim.claim(64).await.is_empty(), "nothing is ready during the backoff");
    let again = claim_within(&sim, Duration::from_secs(5)).await.expect("the retry starts after its backoff");
    assert!(failed_at.elapsed() >= Duration::from_millis(300), "started after {:?}", failed_at.elapsed());
    assert_eq!((again.input.as_str(), again.attempt), ("\"flaky\"", 2));
    let second_at = Instant::now();
    sim.fail(&again, "again").await.unwrap();
    let third = claim_within(&sim, Duration::from_secs(5)).await.expect("the third attempt");
    assert!(
        second_at.elapsed() >= Duration::from_millis(600),
        "the delay doubled: {:?}",
        second_at.elapsed()
    );
    sim.succeed(&third, vec![]).await.unwrap();
}

#[tokio::test]
async fn a_job_canceled_during_a_backoff_starts_nothing_when_it_ends() {
    let sim = Sim::start(settings()).await;
    let id = job_with(
        &sim,
        vec![SubtaskSpec { max_retries: 1, backoff: Some(backoff(200)), ..spec(json!("x"), vec![]) }],
    )
    .await;
    let (x, _) = claim_input(&sim, "x").await;
    sim.fail(&x, "later").await.unwrap();
    sim.scheduler.cancel(id).await.unwrap();
    assert!(claim_within(&sim, Duration::from_millis(800)).await.is_none(), "a canceled job starts nothing");
    let job = sim.job(id);
    assert!((job.state(), job.has_ended()) == (JobState::Canceled, true));
    sim.scheduler.retry(id).await.unwrap();
    let resumed = claim_within(&sim, Duration::from_secs(5)).await.expect("the retry resumes the task");
    sim.succeed(&resumed, vec![]).await.unwrap();
    assert_eq!(sim.job(id).state(), JobState::Completed);
}

#[tokio::test]
async fn a_permanent_failure_is_not_retried() {
    let sim = Sim::start(settings()).await;
    let id = job_with(&sim, vec![SubtaskSpec { max_retries: 5, ..spec(json!("bad input"), vec![]) }]).await;
    let (a, _) = claim_input(&sim, "bad input").await;
    let failure = crate::scheduler::Report { permanent: true, ..report(&a, Err("invalid input".into())) };
    sim.scheduler.report(failure).await.unwrap();
    assert_eq!(state_of(&sim, id, "bad input"), TaskState::Failed);
    assert_eq!(sim.job(id).state(), JobState::Failed);
}
