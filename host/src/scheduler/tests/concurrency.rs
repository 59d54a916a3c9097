//! Concurrency limits: however many tasks of a limited type are ready, no
//! more than the limit run at once, each ending attempt lets the next one
//! in, and keyed limits hold per value of the key.

use serde_json::json;

use super::sim::{Sim, TYPE, report, spec};
use crate::model::{Cluster, ConcurrencyLimit};
use crate::scheduler::{Assignment, Settings};

async fn limited(limits: Vec<ConcurrencyLimit>) -> Sim {
    let sim = Sim::start(Settings::default()).await;
    let mut cluster = Cluster::default_cluster();
    cluster.limits = limits;
    sim.scheduler.add_cluster(&cluster);
    sim
}

fn limit(key: Option<&str>, max: u32) -> ConcurrencyLimit {
    ConcurrencyLimit { task: TYPE.into(), key: key.map(Into::into), max }
}

/// Submits a root that submits `inputs.len()` subtasks; answers once the
/// root computed.
async fn fan_out(sim: &Sim, inputs: Vec<serde_json::Value>) {
    sim.submit(json!("root"), 0).await;
    let root = sim.claim(1).await.remove(0);
    sim.succeed(&root, inputs.into_iter().map(|i| spec(i, vec![])).collect()).await.unwrap();
}

#[tokio::test]
async fn a_limit_is_never_exceeded_and_each_end_lets_one_more_in() {
    let sim = limited(vec![limit(None, 3)]).await;
    fan_out(&sim, (0..20).map(|i| json!({ "i": i })).collect()).await;
    let mut running: Vec<Assignment> = sim.claim(64).await;
    assert_eq!(running.len(), 3, "20 ready, 3 may run");
    let mut ran = 0;
    while let Some(done) = running.pop() {
        sim.scheduler.report(report(&done, Ok(Vec::new()))).await.unwrap();
        ran += 1;
        running.extend(sim.claim(64).await);
        assert!(running.len() <= 3, "{} running at once", running.len());
    }
    assert_eq!(ran, 20, "every task ran");
}

#[tokio::test]
async fn a_keyed_limit_holds_per_value_and_a_handed_back_attempt_frees_its_place() {
    let sim = limited(vec![limit(Some("/host"), 1)]).await;
    let hosts = ["a", "b", "a", "b", "a"];
    fan_out(&sim, hosts.iter().map(|h| json!({ "host": h })).collect()).await;
    let first = sim.claim(64).await;
    assert_eq!(first.len(), 2, "one per host");
    let host = |a: &Assignment| serde_json::from_str::<serde_json::Value>(&a.input).unwrap()["host"].clone();
    assert_ne!(host(&first[0]), host(&first[1]));
    // A hand-back frees the place like a report does.
    sim.scheduler.release(vec![(first[0].key, first[0].lease)]).await.unwrap();
    let next = sim.claim(64).await;
    assert_eq!(next.len(), 1);
    assert_eq!(host(&next[0]), host(&first[0]));
}

#[tokio::test]
async fn raising_a_limit_lets_waiting_tasks_in_as_attempts_end() {
    let sim = limited(vec![limit(None, 1)]).await;
    fan_out(&sim, (0..6).map(|i| json!({ "i": i })).collect()).await;
    let one = sim.claim(64).await;
    assert_eq!(one.len(), 1);
    let mut cluster = Cluster::default_cluster();
    cluster.limits = vec![limit(None, 4)];
    sim.scheduler.add_cluster(&cluster);
    sim.scheduler.report(report(&one[0], Ok(Vec::new()))).await.unwrap();
    assert_eq!(sim.claim(64).await.len(), 4, "the next end lets in as many as the new limit allows");
}
