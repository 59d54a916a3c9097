//! Who runs when, end to end: a cluster's concurrency limits (with 8
//! runners and 12 ready `Sleep` tasks, a limit of 2 is never exceeded, read
//! back from the tasks' start and finish times, and removing it lets more
//! run) and job priorities (a high-priority job overtakes a queued one).

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Host, of_type, time};

const WAIT: Duration = Duration::from_secs(60);

/// Runs 12 `Sleep`s of 100 ms; answers the most that ran at once.
async fn most_at_once(host: &Host) -> anyhow::Result<usize> {
    let id = host.submit("SlowFanout", json!({"n": 12, "ms": 100, "children": 0})).await?;
    let job = host.wait(&id, WAIT).await?;
    anyhow::ensure!(job["state"] == "completed", "{job}");
    let tasks = host.tasks(&id).await?;
    // Ends sort before starts at the same time: a task that starts as
    // another's report is applied does not overlap it.
    let mut events: Vec<(std::time::SystemTime, i32)> = Vec::new();
    for t in of_type(&tasks, "Sleep") {
        events.push((time(&t["started_at"]), 1));
        events.push((time(&t["finished_at"]), -1));
    }
    events.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, change) in events {
        now += change;
        most = most.max(now);
    }
    Ok(most as usize)
}

#[tokio::test]
async fn a_concurrency_limit_is_never_exceeded_while_many_tasks_of_its_type_are_ready() -> anyhow::Result<()>
{
    let host = Host::start(&["--runners", "8"]).await?;
    host.upload("probe").await?;
    let said = host.cli(&["cluster", "update", "default", "--concurrency", "Sleep=2"])?;
    assert!(said.contains("limits Sleep<=2"), "{said}");
    assert_eq!(most_at_once(&host).await?, 2, "the limit is used and never exceeded");

    let said = host.cli(&["cluster", "update", "default", "--no-concurrency"])?;
    assert!(!said.contains("limits"), "{said}");
    assert!(most_at_once(&host).await? > 2, "without the limit more run at once");
    Ok(())
}

#[tokio::test]
async fn bad_concurrency_limits_are_refused_and_good_ones_kept_across_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut host = Host::start_in(dir.path(), &[]).await?;
    let patch = |limits: Value| {
        let req = reqwest::Client::new().patch(format!("{}/v1/clusters/default", host.base));
        host.send(req.json(&json!({ "concurrency": limits })))
    };
    let cases = [
        (json!([{"task": "Download", "max": 0}]), "max must be 1 to 1000000, got 0"),
        (json!([{"task": "Download", "key": "host", "max": 1}]), "is not a JSON pointer"),
        (json!([{"task": "", "max": 1}]), "the task name must be 1 to 256 characters"),
        (json!(vec![json!({"task": "D", "max": 1}); 33]), "at most 32 concurrency limits"),
    ];
    for (limits, message) in cases {
        let (status, body) = patch(limits.clone()).await?;
        assert_eq!(
            (status.as_u16(), body["error"]["code"].as_str()),
            (422, Some("invalid_concurrency")),
            "{body}"
        );
        assert!(body["error"]["message"].as_str().unwrap().contains(message), "{limits}: {body}");
    }
    let body = json!({"name": "downloads", "slug": "dl", "concurrency": [{"task": "Download", "key": "/host", "max": 2}]});
    let (status, created) = host.post("/v1/clusters", &body).await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["concurrency"], json!([{"task": "Download", "key": "/host", "max": 2}]));
    host.stop()?;
    let host = Host::start_in(dir.path(), &[]).await?;
    let (_, shown) = host.get("/v1/clusters/dl").await?;
    assert_eq!(shown["concurrency"], created["concurrency"]);
    Ok(())
}

#[tokio::test]
async fn a_higher_priority_job_overtakes_the_queued_tasks_of_a_lower_one() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    host.upload("probe").await?;
    let body = json!({"name": "bulk", "task": "SlowFanout", "input": {"n": 20, "ms": 50, "children": 0}, "priority": -1});
    let (status, bulk) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, 201, "{bulk}");
    let bulk = bulk["id"].as_str().unwrap().to_owned();
    crate::harness::until("the bulk job runs its subtasks", WAIT, async || {
        Ok(host.get(&format!("/v1/jobs/{bulk}")).await?.1["task_counts"]["computed"].as_u64() >= Some(2))
    })
    .await?;
    let urgent = host.cli(&[
        "job",
        "submit",
        "urgent",
        "--task",
        "SlowFanout",
        "--input",
        r#"{"n": 3, "ms": 10, "children": 0}"#,
        "--priority",
        "5",
    ])?;
    let urgent = urgent.trim().to_owned();
    let done = host.wait(&urgent, WAIT).await?;
    assert_eq!((done["state"].as_str(), done["priority"].as_i64()), (Some("completed"), Some(5)), "{done}");
    let behind = host.wait(&bulk, WAIT).await?;
    assert_eq!((behind["state"].as_str(), behind["priority"].as_i64()), (Some("completed"), Some(-1)));
    // One runner: once the urgent root computed, its three subtasks are the
    // next to start; no bulk task starts in between (fair turns alone
    // would interleave them).
    let urgent_tasks = host.tasks(&urgent).await?;
    let root_done = time(&urgent_tasks[0]["finished_at"]);
    let last_urgent = of_type(&urgent_tasks, "Sleep").iter().map(|t| time(&t["started_at"])).max().unwrap();
    let bulk_tasks = host.tasks(&bulk).await?;
    let cut_in: Vec<_> = of_type(&bulk_tasks, "Sleep")
        .into_iter()
        .filter(|t| {
            (root_done..last_urgent).contains(&time(&t["started_at"])) && time(&t["started_at"]) > root_done
        })
        .collect();
    assert!(cut_in.is_empty(), "bulk tasks started between the urgent ones: {cut_in:?}");
    assert!(host.cli(&["job", "show", &urgent])?.contains("priority 5"));

    let (status, body) =
        host.post("/v1/jobs", &json!({"name": "n", "task": "Noop", "input": {}, "priority": 11})).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (422, Some("invalid_priority")), "{body}");
    Ok(())
}
