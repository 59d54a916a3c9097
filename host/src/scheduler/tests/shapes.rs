//! The scheduler's transitions on the shapes users run: fan-in, dense
//! dependencies, deep nesting, large commits; cancel, retry and lost
//! attempts in the middle of each.

use std::time::Duration;

use serde_json::json;

use super::sim::{Sim, dense, fan_in, report, spec};
use crate::model::{JobState, TaskState};
use crate::scheduler::{Error, Settings};

fn settings() -> Settings {
    Settings {
        lease_ttl: Duration::from_secs(30),
        max_lost_attempts: 2,
        finished: None,
        ..Settings::default()
    }
}

/// Submits a root and has it submit `subtasks`.
async fn job_with(sim: &Sim, subtasks: Vec<crate::model::SubtaskSpec>) -> crate::model::JobId {
    let id = sim.submit(json!("root"), 0).await;
    let root = sim.claim(1).await;
    sim.succeed(&root[0], subtasks).await.unwrap();
    id
}

#[tokio::test]
async fn a_reducer_starts_only_after_every_leaf_even_across_cancel_and_retry() {
    let sim = Sim::start(settings()).await;
    let id = job_with(&sim, fan_in(1000)).await;
    let leaves = sim.claim(64).await;
    assert!(leaves.iter().all(|a| a.input != "\"reducer\""));
    for a in &leaves {
        sim.succeed(a, vec![]).await.unwrap();
    }
    sim.scheduler.cancel(id).await.unwrap();
    assert!(sim.claim(64).await.is_empty(), "a canceled job starts nothing");
    assert_eq!(sim.job(id).state(), JobState::Canceled);
    sim.scheduler.retry(id).await.unwrap();
    // All leaves but one.
    let mut rest = Vec::new();
    while rest.len() < 1000 - 64 {
        rest.extend(sim.claim(64).await);
    }
    let last = rest.pop().unwrap();
    for a in &rest {
        assert_ne!(a.input, "\"reducer\"");
        sim.succeed(a, vec![]).await.unwrap();
    }
    assert!(sim.claim(64).await.is_empty(), "the reducer waits for the last leaf");
    sim.succeed(&last, vec![]).await.unwrap();
    let reducer = sim.claim(64).await;
    assert_eq!(reducer.iter().map(|a| a.input.as_str()).collect::<Vec<_>>(), ["\"reducer\""]);
    sim.succeed(&reducer[0], vec![]).await.unwrap();
    assert_eq!(sim.job(id).state(), JobState::Completed);
    assert_eq!(sim.count(id, TaskState::Computed), 1002);
}

#[tokio::test]
async fn dense_dependencies_run_in_order_through_a_failure_and_a_retry() {
    let sim = Sim::start(settings()).await;
    let id = job_with(&sim, dense(300, 50)).await;
    for i in 0..300 {
        let ready = sim.claim(64).await;
        assert_eq!(ready.len(), 1, "step {i}: exactly the next task is ready");
        assert_eq!(ready[0].input, json!({"dense": i}).to_string());
        if i == 200 {
            sim.fail(&ready[0], "boom").await.unwrap();
            assert_eq!(sim.job(id).state(), JobState::Failed);
            assert!(sim.claim(64).await.is_empty(), "a failed job starts nothing");
            assert_eq!(sim.scheduler.retry(id).await.unwrap().requeued, 1);
            let again = sim.claim(64).await;
            assert_eq!((again.len(), again[0].attempt), (1, 2), "the failed task runs again");
            sim.succeed(&again[0], vec![]).await.unwrap();
        } else {
            sim.succeed(&ready[0], vec![]).await.unwrap();
        }
    }
    assert_eq!(sim.job(id).state(), JobState::Completed);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_fan_in_rebuilds_what_the_reducer_waits_for() {
    let mut sim = Sim::start(settings()).await;
    let id = job_with(&sim, fan_in(500)).await;
    let mut done = 0;
    while done < 300 {
        for a in sim.claim(64).await {
            sim.succeed(&a, vec![]).await.unwrap();
            done += 1;
        }
    }
    let lost = sim.claim(10).await;
    sim.restart(settings()).await;
    let late = sim.succeed(&lost[0], vec![]).await;
    assert!(matches!(late, Err(Error::StaleAttempt { .. })), "a lost attempt's report: {late:?}");
    let mut leaves = 0;
    loop {
        let batch = sim.claim(64).await;
        let Some(reducer) = batch.iter().position(|a| a.input == "\"reducer\"") else {
            assert!(!batch.is_empty(), "nothing ready after {leaves} more leaves");
            for a in &batch {
                sim.succeed(a, vec![]).await.unwrap();
            }
            leaves += batch.len();
            continue;
        };
        assert_eq!((batch.len(), leaves), (1, 500 - done), "the reducer comes alone, after every leaf");
        sim.succeed(&batch[reducer], vec![]).await.unwrap();
        break;
    }
    assert_eq!(sim.job(id).state(), JobState::Completed);
    assert_eq!(sim.count(id, TaskState::Computed), 502);
}

#[tokio::test]
async fn dense_dependencies_keep_their_order_across_restarts() {
    let mut sim = Sim::start(settings()).await;
    let id = job_with(&sim, dense(200, 30)).await;
    for i in 0..200 {
        if i % 50 == 25 {
            // Once with the next task started (and lost), once without.
            if i == 75 {
                assert_eq!(sim.claim(64).await.len(), 1);
            }
            sim.restart(settings()).await;
        }
        let ready = sim.claim(64).await;
        assert_eq!(ready.len(), 1, "step {i}: exactly the next task is ready");
        assert_eq!(ready[0].input, json!({"dense": i}).to_string());
        sim.succeed(&ready[0], vec![]).await.unwrap();
    }
    assert_eq!(sim.job(id).state(), JobState::Completed);
}

#[tokio::test]
async fn deep_nesting_completes_the_whole_chain_of_ancestors() {
    let sim = Sim::start(settings()).await;
    let id = sim.submit(json!(0), 0).await;
    // Each task submits one child, 500 deep; a task that depends on the
    // first child's whole subtree waits for all of it.
    let root = sim.claim(1).await;
    sim.succeed(&root[0], vec![spec(json!(1), vec![]), spec(json!("after"), vec![0])]).await.unwrap();
    for depth in 1..500 {
        let ready = sim.claim(64).await;
        assert_eq!(ready.len(), 1, "depth {depth}: {:?}", ready.iter().map(|a| &a.input).collect::<Vec<_>>());
        sim.succeed(&ready[0], vec![spec(json!(depth + 1), vec![])]).await.unwrap();
    }
    let deepest = sim.claim(64).await;
    assert_eq!(deepest[0].input, "500");
    sim.succeed(&deepest[0], vec![]).await.unwrap();
    let after = sim.claim(64).await;
    assert_eq!(after.iter().map(|a| a.input.as_str()).collect::<Vec<_>>(), ["\"after\""]);
    sim.succeed(&after[0], vec![]).await.unwrap();
    assert_eq!(sim.job(id).state(), JobState::Completed);
}

#[tokio::test]
async fn a_large_subtask_set_commits_in_steps_and_its_report_is_answered_once() {
    let sim = Sim::start(settings()).await;
    let before = sim.scheduler.stats().groups;
    let id = sim.submit(json!("root"), 0).await;
    let root = sim.claim(1).await;
    let specs = fan_in(20_000);
    // The same report twice, at once: one is applied, the other refused.
    let (a, b) = tokio::join!(
        sim.scheduler.report(report(&root[0], Ok(specs.clone()))),
        sim.scheduler.report(report(&root[0], Ok(specs)))
    );
    assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
    assert!(matches!(a.err().or(b.err()), Some(Error::StaleAttempt { .. })));
    let groups = sim.scheduler.stats().groups - before;
    assert!(groups > 5, "written in steps: {groups} groups");
    assert_eq!(sim.tasks(id).len(), 20_002);
    assert_eq!(sim.run_leaves().await, 20_001);
    assert_eq!(sim.job(id).state(), JobState::Completed);
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_requeues_the_attempt_and_refuses_its_late_report() {
    let sim = Sim::start(settings()).await;
    let id = sim.submit(json!("root"), 0).await;
    let first = sim.claim(1).await;
    tokio::time::advance(Duration::from_secs(31)).await;
    let second = sim.claim(1).await;
    assert_eq!(second[0].attempt, first[0].attempt + 1, "re-queued after the lease expired");
    assert!(matches!(sim.succeed(&first[0], vec![]).await, Err(Error::StaleAttempt { .. })));
    assert_eq!(sim.job(id).state(), JobState::Running, "a lost attempt does not fail the job");
    // Past the budget of lost attempts (2), the task fails.
    tokio::time::advance(Duration::from_secs(31)).await;
    let third = sim.claim(1).await;
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(sim.claim(1).await.is_empty());
    assert!(matches!(sim.succeed(&third[0], vec![]).await, Err(Error::StaleAttempt { .. })));
    assert_eq!(sim.job(id).state(), JobState::Failed);
    let task = &sim.tasks(id)[0];
    assert!(task.last_error().unwrap().contains("3 attempts were lost"), "{:?}", task.errors);
}

#[tokio::test]
async fn handed_back_attempts_run_again_without_using_a_retry() {
    let sim = Sim::start(settings()).await;
    let id = job_with(&sim, dense(3, 1)).await;
    let a = sim.claim(1).await.remove(0);
    sim.scheduler.release(vec![(a.key, a.lease)]).await.unwrap();
    let again = sim.claim(1).await.remove(0);
    assert_eq!((again.key, again.attempt), (a.key, a.attempt), "the attempt was undone");
    assert_ne!(again.lease, a.lease, "a lease token names one start");
    assert!(matches!(sim.succeed(&a, vec![]).await, Err(Error::StaleAttempt { .. })));
    sim.succeed(&again, vec![]).await.unwrap();
    let task = sim.tasks(id).into_iter().find(|t| t.key == a.key).unwrap();
    assert_eq!((task.status.failures, task.status.lost), (0, 0));
    assert_eq!(sim.run_leaves().await, 2);
    assert_eq!(sim.job(id).state(), JobState::Completed);
}

#[tokio::test]
async fn a_runner_waiting_when_a_written_ahead_set_completes_gets_its_first_task() {
    // 300 tasks each on every earlier one: written ahead (over a chunk's
    // estimate) yet done in one chunk, in the group that completes the root.
    let sim = Sim::start(settings()).await;
    let id = sim.submit(json!("root"), 0).await;
    let root = sim.claim(1).await.remove(0);
    let scheduler = sim.scheduler.clone();
    let waiting = tokio::spawn(async move { scheduler.claim_batch("default", 1).await });
    tokio::task::yield_now().await;
    sim.succeed(&root, dense(300, 300)).await.unwrap();
    let first =
        tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("the waiting runner got nothing");
    let first = first.unwrap().unwrap();
    assert_eq!(first[0].input, json!({"dense": 0}).to_string());
    sim.succeed(&first[0], vec![]).await.unwrap();
    assert_eq!(sim.run_leaves().await, 299);
    assert_eq!(sim.job(id).state(), JobState::Completed);
}

#[tokio::test]
async fn a_job_submitted_behind_a_large_fan_out_starts_with_the_next_claim() {
    let sim = Sim::start(settings()).await;
    let big = job_with(&sim, (0..5000).map(|i| spec(json!({"leaf": i}), vec![])).collect()).await;
    let first = sim.claim(64).await;
    assert!(first.iter().all(|a| a.key.job == big));
    let small = sim.submit(json!("small"), 0).await;
    let next = sim.claim(64).await;
    assert!(next.iter().any(|a| a.key.job == small), "the small job's root is in the next claim");
    let small_root = next.iter().find(|a| a.key.job == small).unwrap();
    sim.succeed(small_root, vec![]).await.unwrap();
    assert_eq!(sim.job(small).state(), JobState::Completed);
}

#[tokio::test]
async fn the_tasks_of_a_higher_priority_job_start_before_those_already_waiting() {
    let sim = Sim::start(settings()).await;
    let low = job_with(&sim, (0..500).map(|i| spec(json!({"leaf": i}), vec![])).collect()).await;
    let urgent = sim.submit_with_priority(json!("urgent"), 0, 5).await;
    let first = sim.claim(1).await.remove(0);
    assert_eq!(first.key.job, urgent, "the urgent root goes before 500 waiting leaves");
    sim.succeed(&first, (0..100).map(|i| spec(json!({"urgent": i}), vec![])).collect()).await.unwrap();
    let next = sim.claim(64).await;
    assert!(
        next.iter().all(|a| a.key.job == urgent),
        "every urgent subtask first: they inherit the job's priority"
    );
    for a in &next {
        sim.succeed(a, vec![]).await.unwrap();
    }
    assert_eq!(sim.run_leaves().await, 100 - next.len() + 500);
    assert_eq!((sim.job(urgent).state(), sim.job(low).state()), (JobState::Completed, JobState::Completed));
}
