//! Several hosts on one PostgreSQL database: one leads (it holds the
//! store's lock and runs the scheduler and runners), the others are
//! standbys that pass every request on to it. Killing the leader during a
//! fan-out while clients submit to the standbys: one takes over within 5 s,
//! every acknowledged job completes, and no computed task runs again. A
//! database restart stops acknowledgements until a host leads again, and
//! loses nothing acknowledged; the leader it cut off steps down and
//! reconnects without a restart, and can lead again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Host, until};

const WAIT: Duration = Duration::from_secs(120);

/// Jobs acknowledged, each with when its submission was sent and answered.
type Acked = Arc<Mutex<Vec<(String, Instant, Instant)>>>;

/// Submits `Noop` jobs to `base` in a loop, into `acked`.
fn feeder(base: String, acked: Acked) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let body = json!({"name": "small", "task": "Noop", "input": {}});
        loop {
            let sent = Instant::now();
            let Ok(resp) = http.post(format!("{base}/v1/jobs")).json(&body).send().await else { continue };
            if resp.status() == 201
                && let Ok(job) = resp.json::<Value>().await
            {
                acked.lock().unwrap().push((job["id"].as_str().unwrap().to_owned(), sent, Instant::now()));
            }
        }
    })
}

/// The first submission sent after `at` that was acknowledged: when its
/// answer came.
fn first_acked_after(acked: &Acked, at: Instant) -> Option<Instant> {
    acked.lock().unwrap().iter().filter(|(_, sent, _)| *sent > at).map(|(_, _, answered)| *answered).min()
}

/// Computed tasks of `job` and their attempt counts.
async fn computed(host: &Host, job: &str) -> anyhow::Result<HashMap<String, u64>> {
    let tasks = host.tasks(job).await?;
    let computed = tasks.iter().filter(|t| t["state"] == "computed");
    Ok(computed.map(|t| (t["id"].as_str().unwrap().to_owned(), t["attempts"].as_u64().unwrap())).collect())
}

async fn computed_count(host: &Host, job: &str) -> anyhow::Result<u64> {
    let (_, j) = host.get(&format!("/v1/jobs/{job}")).await?;
    Ok(j["task_counts"]["computed"].as_u64().unwrap_or(0))
}

/// Every job in `acked` completes, asked of `host`.
async fn all_complete(host: &Host, acked: &Acked) -> anyhow::Result<usize> {
    let acked = acked.lock().unwrap().clone();
    for (id, _, _) in &acked {
        assert_eq!(host.wait(id, WAIT).await?["state"], "completed", "acknowledged job {id}");
    }
    Ok(acked.len())
}

#[tokio::test]
async fn a_standby_takes_over_from_a_killed_leader_and_every_acknowledged_job_completes() -> anyhow::Result<()>
{
    let url = sandflow_test_postgres::shared().database().map_err(anyhow::Error::msg)?;
    let args = ["--store", url.as_str(), "--runners", "2"];
    let mut leader = Host::start(&args).await?;
    let standbys = [Host::start(&args).await?, Host::start(&args).await?];
    standbys[0].upload("probe").await?;
    let (_, types) = standbys[1].get("/v1/task-types").await?;
    assert!(types.to_string().contains("\"Fanout\""), "a standby answers as the leader: {types}");
    let big = standbys[1].submit("Fanout", json!({"n": 9999})).await?;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let feeders = standbys.each_ref().map(|s| feeder(s.base.clone(), acked.clone()));
    until("the fan-out progresses", WAIT, async || Ok(computed_count(&leader, &big).await? >= 2000)).await?;
    let before = computed(&leader, &big).await?;
    leader.kill();
    let killed = Instant::now();

    let acked_at_kill = acked.lock().unwrap().len();
    until("a standby acknowledges a job sent after the kill", WAIT, async || {
        Ok(first_acked_after(&acked, killed).is_some())
    })
    .await?;
    let takeover = first_acked_after(&acked, killed).unwrap() - killed;
    assert!(takeover <= Duration::from_secs(5), "the takeover took {takeover:?}");
    eprintln!("takeover: {takeover:?}");
    for f in feeders {
        f.abort();
    }

    let job = standbys[0].wait(&big, WAIT).await?;
    assert_eq!(
        (job["state"].as_str(), job["task_counts"]["computed"].as_u64()),
        (Some("completed"), Some(10_000))
    );
    let count = all_complete(&standbys[1], &acked).await?;
    assert!(count > acked_at_kill, "jobs were acknowledged after the takeover: {count}");
    let after = computed(&standbys[0], &big).await?;
    for (task, attempts) in &before {
        assert_eq!(after.get(task), Some(attempts), "computed task {task} ran again after the takeover");
    }
    Ok(())
}

#[tokio::test]
async fn a_database_restart_stops_acknowledgements_and_loses_nothing() -> anyhow::Result<()> {
    // A server of its own: the shared one serves the other tests meanwhile.
    let server = sandflow_test_postgres::Server::start(false).map_err(anyhow::Error::msg)?;
    let url = server.database().map_err(anyhow::Error::msg)?;
    let args = ["--store", url.as_str(), "--runners", "2", "--shutdown-grace", "1s"];
    let mut first = Host::start(&args).await?;
    let mut second = Host::start(&args).await?;
    second.upload("probe").await?;
    let big = second.submit("Fanout", json!({"n": 3000})).await?;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let feeder = feeder(second.base.clone(), acked.clone());
    until("the fan-out progresses", WAIT, async || Ok(computed_count(&first, &big).await? >= 300)).await?;

    server.stop().map_err(anyhow::Error::msg)?;
    until("the leader reports itself unhealthy", WAIT, async || Ok(first.get("/healthz").await?.0 == 503))
        .await?;
    let (status, refused) =
        second.post("/v1/jobs", &json!({"name": "x", "task": "Noop", "input": {}})).await?;
    assert_eq!(status, 503, "nothing is acknowledged without the database: {refused}");
    let acked_while_down = acked.lock().unwrap().len();
    let restarted = Instant::now();
    server.start_again().map_err(anyhow::Error::msg)?;

    until("jobs are acknowledged again", WAIT, async || Ok(first_acked_after(&acked, restarted).is_some()))
        .await?;
    assert!(acked.lock().unwrap().len() > acked_while_down);
    assert!(first.running()?, "the host the database cut off reconnects in its own process");
    until("the first host is healthy again", WAIT, async || Ok(first.get("/healthz").await?.0 == 200))
        .await?;
    // Whichever host leads now, the first can lead again: without the
    // second it finishes everything.
    feeder.abort();
    second.kill();
    let job = first.wait(&big, WAIT).await?;
    assert_eq!(job["task_counts"]["computed"], 3001);
    all_complete(&first, &acked).await?;
    Ok(())
}
