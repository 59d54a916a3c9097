//! Reading what a job did: log pages and filters, and `job logs --follow`.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn logs_page_with_a_cursor_and_filter_by_task_and_level() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("fanout").await?;
    let id = host.submit("Root", json!({"num_subtasks": 4})).await?;
    host.wait(&id, WAIT).await?;
    let all = host.logs(&id).await?;
    let all = all.as_array().unwrap();
    assert!(all.len() >= 8, "{all:?}");

    let mut paged: Vec<Value> = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = host.get(&format!("/v1/jobs/{id}/logs?limit=3&cursor={cursor}")).await?;
        assert_eq!(status, 200, "{page}");
        let lines = page["logs"].as_array().unwrap();
        assert!(lines.len() <= 3);
        paged.extend(lines.iter().cloned());
        if page["more"] != true {
            break;
        }
        cursor = page["cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(&paged, all, "pages of 3 add up to the whole log, in order");

    let task = all[0]["task"].as_str().unwrap();
    let (_, one) = host.get(&format!("/v1/jobs/{id}/logs?task={task}")).await?;
    assert!(one["logs"].as_array().unwrap().iter().all(|l| l["task"] == task));
    let (_, warn) = host.get(&format!("/v1/jobs/{id}/logs?level=warn")).await?;
    let expected = all.iter().filter(|l| l["level"] == "warn" || l["level"] == "error").count();
    assert_eq!(warn["logs"].as_array().unwrap().len(), expected);
    for bad in ["cursor=zz", "limit=0", "limit=10001", "level=loud", "task=nope"] {
        let (status, body) = host.get(&format!("/v1/jobs/{id}/logs?{bad}")).await?;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    Ok(())
}

#[tokio::test]
async fn job_logs_follow_prints_every_line_and_ends_with_the_job() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    host.upload("fanout").await?;
    host.upload("probe").await?;
    // A slow first task keeps the job running while the follower starts.
    let id = host.submit("Root", json!({"num_subtasks": 6})).await?;
    let follower = tokio::task::spawn_blocking({
        let (base, id) = (host.base.clone(), id.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
                .args(["--server", &base, "job", "logs", &id, "--follow"])
                .output()
        }
    });
    host.wait(&id, WAIT).await?;
    let out = tokio::time::timeout(Duration::from_secs(20), follower).await???;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).lines().count();
    let all = host.logs(&id).await?;
    assert_eq!(printed, all.as_array().unwrap().len(), "every line once");
    Ok(())
}

#[tokio::test]
async fn events_stream_each_change_and_end_with_the_job() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("probe").await?;
    let id = host.submit("SlowFanout", json!({"n": 6, "ms": 100, "children": 0})).await?;
    let mut resp = reqwest::get(format!("{}/v1/jobs/{id}/events", host.base)).await?;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = resp.chunk().await? {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(WAIT, read).await??;
    let jobs: Vec<Value> = text
        .split("\n\n")
        .filter(|e| e.contains("event: job"))
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(jobs.len() >= 3, "{jobs:?}");
    assert_eq!(jobs.last().unwrap()["state"], "completed", "the stream ends with the job");
    let computed: Vec<u64> = jobs.iter().map(|j| j["task_counts"]["computed"].as_u64().unwrap()).collect();
    assert!(computed.windows(2).all(|w| w[0] <= w[1]), "{computed:?}");
    assert_eq!(*computed.last().unwrap(), 7);

    // `job watch` follows the same stream; its exit code tells how the job ended.
    let watch = |id: String| {
        let base = host.base.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
                .args(["--server", &base, "job", "watch", &id])
                .output()
        })
    };
    let out = watch(id.clone()).await??;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("completed"));
    host.upload("hostile").await?;
    let failing = host.submit("Panic", json!({"message": "no"})).await?;
    let out = watch(failing).await??;
    assert_eq!(out.status.code(), Some(1));
    Ok(())
}

#[tokio::test]
async fn spans_nest_guest_spans_under_attempts_under_the_job() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("movies-v1.1").await?;
    let id = host.submit("MoviesStats@v1.0", json!({"titles": ["The Matrix", "Shrek 2"]})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    let (status, trace) = host.get(&format!("/v1/jobs/{id}/spans")).await?;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["job"]["name"], "job MoviesStats@v1.0");
    let spans = trace["spans"].as_array().unwrap();
    let attempts: Vec<&Value> = spans.iter().filter(|s| s["id"] == 0).collect();
    assert_eq!(attempts.len(), 3, "one per task attempt: {spans:?}");
    assert!(attempts.iter().all(|a| a["name"] == "attempt 1" && a["parent"].is_null()));
    let fetches: Vec<&Value> = spans.iter().filter(|s| s["name"] == "fetch-movie-stats").collect();
    assert_eq!(fetches.len(), 2);
    for f in &fetches {
        assert_eq!(f["parent"], 0, "guest spans nest under their attempt");
        let attempt = attempts.iter().find(|a| a["task"] == f["task"]).unwrap();
        assert!(
            attempt["start"].as_str() <= f["start"].as_str() && f["end"].as_str() <= attempt["end"].as_str()
        );
    }
    let titles: Vec<&str> =
        fetches.iter().map(|f| f["attributes"]["movie.title"].as_str().unwrap()).collect();
    assert!(titles.contains(&"The Matrix") && titles.contains(&"Shrek 2"));
    let task = fetches[0]["task"].as_str().unwrap();
    let (_, one) = host.get(&format!("/v1/jobs/{id}/spans?task={task}")).await?;
    assert!(one["spans"].as_array().unwrap().iter().all(|s| s["task"] == task));
    assert_eq!(one["spans"].as_array().unwrap().len(), 2);
    Ok(())
}

#[tokio::test]
async fn every_attempt_has_a_span_and_failed_ones_say_why() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    host.upload("probe").await?;
    let body = json!({"name": "flaky", "task": "Flaky", "input": {"fail_first": 2}, "max_retries": 2});
    let (status, job) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap();
    assert_eq!(host.wait(id, WAIT).await?["state"], "completed");
    let (_, trace) = host.get(&format!("/v1/jobs/{id}/spans")).await?;
    let attempts: Vec<&Value> = trace["spans"].as_array().unwrap().iter().filter(|s| s["id"] == 0).collect();
    let names: Vec<&str> = attempts.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["attempt 1", "attempt 2", "attempt 3"], "{trace}");
    for (n, a) in attempts[..2].iter().enumerate() {
        assert_eq!(a["attributes"]["state"], "failed");
        assert_eq!(a["attributes"]["error"], format!("flaky failure on attempt {}", n + 1));
    }
    assert_eq!(attempts[2]["attributes"]["state"], "computed");
    assert!(attempts[2]["attributes"].get("error").is_none());
    for pair in attempts.windows(2) {
        assert!(
            pair[0]["end"].as_str() <= pair[1]["start"].as_str(),
            "attempts run one after another: {pair:?}"
        );
    }
    let ids: std::collections::HashSet<&str> =
        attempts.iter().map(|a| a["span_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "each attempt has its own exported span id");
    Ok(())
}

#[tokio::test]
async fn a_job_that_has_ended_is_deleted_with_its_tasks_and_logs() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    host.upload("fanout").await?;
    host.upload("probe").await?;
    let done = host.submit("Root", json!({"num_subtasks": 3})).await?;
    host.wait(&done, WAIT).await?;
    let client = reqwest::Client::new();
    let delete = |id: &str| host.send(client.delete(format!("{}/v1/jobs/{id}", host.base)));

    let slow = host.submit("SlowFanout", json!({"n": 20, "ms": 200, "children": 0})).await?;
    let (status, body) = delete(&slow).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (409, Some("conflict")), "{body}");
    // Canceled, with queued tasks left and (after a moment) nothing running: deletable.
    host.post(&format!("/v1/jobs/{slow}/cancel"), &json!({})).await?;
    host.wait(&slow, WAIT).await?;
    let deadline = std::time::Instant::now() + WAIT;
    while host.get(&format!("/v1/jobs/{slow}")).await?.1["task_counts"]["running"] != 0 {
        anyhow::ensure!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in [&done, &slow] {
        assert_eq!(delete(id).await?.0, 204);
        for path in ["", "/tasks", "/logs", "/spans", "/diagram.svg"] {
            assert_eq!(host.get(&format!("/v1/jobs/{id}{path}")).await?.0, 404, "{path}");
        }
    }
    assert_eq!(delete(&done).await?.0, 404);
    let (_, page) = host.get("/v1/jobs").await?;
    assert!(page["jobs"].as_array().unwrap().is_empty(), "{page}");
    // The deleted job's queued tasks are skipped; new work runs.
    let next = host.submit("Noop", json!({})).await?;
    assert_eq!(host.wait(&next, WAIT).await?["state"], "completed");
    Ok(())
}

#[tokio::test]
async fn the_tracing_macros_of_a_guest_become_its_logs_and_spans() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    host.upload("probe").await?;
    let id = host.submit("Traced", json!({"title": "Dune"})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    let logs = host.logs(&id).await?;
    let logs = logs.as_array().unwrap();
    let fetched = logs.iter().find(|l| l["message"] == "fetched").expect("the info! event");
    assert_eq!(
        (fetched["level"].as_str(), fetched["fields"]["title"].as_str()),
        (Some("info"), Some("Dune"))
    );
    assert_eq!(fetched["fields"]["pages"], "3");
    assert!(logs.iter().any(|l| l["message"] == "running low" && l["level"] == "warn"));
    let (_, trace) = host.get(&format!("/v1/jobs/{id}/spans")).await?;
    let span =
        trace["spans"].as_array().unwrap().iter().find(|s| s["name"] == "fetch").cloned().expect("the span");
    assert_eq!((span["attributes"]["title"].as_str(), span["parent"].as_u64()), (Some("Dune"), Some(0)));
    assert_eq!(span["attributes"]["pages"], "3", "recorded after the span opened: {span}");
    let parse =
        trace["spans"].as_array().unwrap().iter().find(|s| s["name"] == "parse").cloned().expect("the span");
    assert_eq!(parse["attributes"], json!({"format": "ndjson", "records": "12"}), "set after opening");
    Ok(())
}

#[tokio::test]
async fn progress_reported_by_tasks_adds_up_on_the_job() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("probe").await?;
    let id = host.submit("Counted", json!({"n": 25})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed");
    assert_eq!(job["progress"]["items"], json!({"total": 25, "done": 25}), "{job}");
    assert_eq!(job["task_counts"]["computed"], 26);
    Ok(())
}
