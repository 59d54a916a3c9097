//! Crash safety: the host is killed with SIGKILL at several points while jobs
//! are submitted and run; after each restart every acknowledged job is there,
//! nothing computed runs again, and the work completes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Host, until};

const WAIT: Duration = Duration::from_secs(120);

/// Keeps submitting small jobs; records those the host acknowledged.
fn submitter(base: String, acked: Arc<Mutex<Vec<String>>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let body = json!({"name": "small", "task": "Root", "input": {"num_subtasks": 2}});
        loop {
            let Ok(resp) = http.post(format!("{base}/v1/jobs")).json(&body).send().await else { return };
            if resp.status() == 201
                && let Ok(job) = resp.json::<Value>().await
            {
                acked.lock().unwrap().push(job["id"].as_str().unwrap().to_owned());
            }
        }
    })
}

/// Computed tasks of `job` and their attempt counts.
async fn computed(host: &Host, job: &str) -> anyhow::Result<HashMap<String, u64>> {
    Ok(host
        .tasks(job)
        .await?
        .iter()
        .filter(|t| t["state"] == "computed")
        .map(|t| (t["id"].as_str().unwrap().to_owned(), t["attempts"].as_u64().unwrap()))
        .collect())
}

async fn computed_count(host: &Host, job: &str) -> anyhow::Result<u64> {
    let (_, j) = host.get(&format!("/v1/jobs/{job}")).await?;
    Ok(j["task_counts"]["computed"].as_u64().unwrap_or(0))
}

#[tokio::test]
async fn acknowledged_work_survives_kill_9_at_several_points() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut host = Host::start_in(dir.path(), &["--runners", "2"]).await?;
    host.upload("fanout").await?;
    let big = host.submit("Root", json!({"num_subtasks": 700})).await?;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut seen_computed: HashMap<String, u64> = HashMap::new();

    // Kill points: right after submission (jobs still arriving), then at
    // growing progress of the big job while small jobs keep arriving.
    for threshold in [0, 200, 700, 1400] {
        let feeder = submitter(host.base.clone(), acked.clone());
        until("the big job progresses", WAIT, async || Ok(computed_count(&host, &big).await? >= threshold))
            .await?;
        let before = computed(&host, &big).await?;
        host.kill();
        feeder.abort();
        let _ = feeder.await;
        seen_computed.extend(before);

        host = Host::start_in(dir.path(), &["--runners", "2"]).await?;
        let acknowledged = acked.lock().unwrap().clone();
        for id in acknowledged {
            let (status, _) = host.get(&format!("/v1/jobs/{id}")).await?;
            assert_eq!(status, 200, "acknowledged job {id} was lost");
        }
        let now = computed(&host, &big).await?;
        for (task, attempts) in &seen_computed {
            assert_eq!(now.get(task), Some(attempts), "computed task {task} changed after a kill");
        }
    }

    let job = host.wait(&big, Duration::from_secs(120)).await?;
    assert_eq!(job["state"], "completed");
    assert_eq!(job["task_counts"]["computed"], 2101);
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= 4, "the feeders got jobs acknowledged: {}", acked.len());
    for id in &acked {
        assert_eq!(host.wait(id, Duration::from_secs(60)).await?["state"], "completed");
    }

    let tasks = host.tasks(&big).await?;
    for t in &tasks {
        if let Some(attempts) = seen_computed.get(t["id"].as_str().unwrap()) {
            assert_eq!(t["attempts"].as_u64(), Some(*attempts), "{t} ran again after it was computed");
        }
    }
    // Each leaf logs once per successful run: exactly once.
    let logs = host.logs(&big).await?;
    let mut runs: HashMap<&str, usize> = HashMap::new();
    for line in logs.as_array().unwrap().iter().filter(|l| l["message"] == "leaf computed") {
        *runs.entry(line["task"].as_str().unwrap()).or_default() += 1;
    }
    assert_eq!(runs.len(), 700);
    assert!(runs.values().all(|&n| n == 1));
    Ok(())
}
