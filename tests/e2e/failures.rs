//! Failures, retries, cancellation, leases and idempotent submission.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::harness::{Host, of_type, time, until};

const WAIT: Duration = Duration::from_secs(60);

fn count(logs: &Value, message: &str) -> usize {
    logs.as_array().unwrap().iter().filter(|l| l["message"] == message).count()
}

#[tokio::test]
async fn movies_fail_then_a_fixed_version_and_a_retry_complete_the_job() -> anyhow::Result<()> {
    let error = movies_story("movies-v1.0", "movies-v1.1").await?;
    assert_eq!(error, "KeyError('Title')");
    Ok(())
}

/// The movie story with the components `v1_0` and `v1_1` (Rust's or
/// Python's): v1.0 fails on a title the catalog lacks, v1.1 is uploaded,
/// the retry runs only the failed task, on v1.1. Answers the failed
/// attempt's error, whose first line is `KeyError('Title')`.
pub async fn movies_story(v1_0: &str, v1_1: &str) -> anyhow::Result<String> {
    let host = Host::start(&[]).await?;
    host.upload(v1_0).await?;
    let titles = ["The Matrix", "Shrek 2", "Sandflow - The Movie", "The Avengers"];
    let id = host.submit("MoviesStats@v1.0", json!({ "titles": titles })).await?;
    // A sibling already running when the task fails may still finish.
    assert_eq!(host.wait_ended(&id, WAIT).await?["state"], "failed");

    let tasks = host.tasks(&id).await?;
    assert_eq!(tasks.len(), 5);
    let failed: Vec<&Value> = tasks.iter().filter(|t| t["state"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["input"]["title"], "Sandflow - The Movie");
    let error = failed[0]["error"].as_str().unwrap_or_default().to_owned();
    assert_eq!(error.lines().next(), Some("KeyError('Title')"), "{error}");
    assert_eq!(failed[0]["ran_version"], "v1.0");
    assert!(tasks.iter().all(|t| t["state"] != "running"), "a failed job runs nothing more");
    let computed_before: Vec<String> = tasks
        .iter()
        .filter(|t| t["state"] == "computed")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();

    host.upload(v1_1).await?;
    let (status, retried) = host.post(&format!("/v1/jobs/{id}/retry"), &json!({})).await?;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["requeued"], 1);
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");

    let tasks = host.tasks(&id).await?;
    for t in &tasks {
        let expected_attempts = if t["id"] == failed[0]["id"] { 2 } else { 1 };
        assert_eq!(t["attempts"], expected_attempts, "execution count of {t}");
    }
    for id in &computed_before {
        assert!(tasks.iter().any(|t| t["id"] == id.as_str() && t["attempts"] == 1));
    }
    let fixed = tasks.iter().find(|t| t["id"] == failed[0]["id"]).unwrap();
    assert_eq!(fixed["ran_version"], "v1.1");
    assert_eq!(fixed["display"], "NotFound: Sandflow - The Movie");
    assert_eq!(fixed["errors"][0]["message"], error.as_str());

    let logs = host.logs(&id).await?;
    assert_eq!(count(&logs, "Movie release date fetched"), 3, "each found title ran exactly once");
    let not_found: Vec<&Value> =
        logs.as_array().unwrap().iter().filter(|l| l["message"] == "Movie release date not found").collect();
    assert_eq!(not_found.len(), 1);
    assert_eq!(not_found[0]["fields"]["title"], "Sandflow - The Movie");
    assert_eq!(not_found[0]["attempt"], 2);

    let (status, body) = host.post(&format!("/v1/jobs/{id}/retry"), &json!({})).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (409, Some("conflict")));
    let (status, _) = host.post(&format!("/v1/jobs/{id}/cancel"), &json!({})).await?;
    assert_eq!(status, 409, "a completed job cannot be canceled");
    Ok(error)
}

async fn submit_with_retries(host: &Host, fail_first: u32, max_retries: u32) -> anyhow::Result<String> {
    let body = json!({"name": "flaky", "task": "Flaky", "input": {"fail_first": fail_first}, "max_retries": max_retries});
    let (status, job) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, 201, "{job}");
    Ok(job["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_flaky_task_completes_within_its_retries_and_fails_beyond() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let enough = submit_with_retries(&host, 2, 2).await?;
    let short = submit_with_retries(&host, 2, 1).await?;
    assert_eq!(host.wait(&enough, WAIT).await?["state"], "completed");
    assert_eq!(host.wait(&short, WAIT).await?["state"], "failed");

    let t = &host.tasks(&enough).await?[0];
    assert_eq!((t["state"].as_str(), t["attempts"].as_u64()), (Some("computed"), Some(3)));
    assert_eq!(t["errors"].as_array().unwrap().len(), 2);
    assert_eq!(t["errors"][1]["message"], "flaky failure on attempt 2");

    let t = &host.tasks(&short).await?[0];
    assert_eq!((t["state"].as_str(), t["attempts"].as_u64()), (Some("failed"), Some(2)));
    assert_eq!(t["error"], "flaky failure on attempt 2");
    Ok(())
}

#[tokio::test]
async fn cancel_stops_new_starts_and_retry_resumes() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("probe").await?;
    let id = host.submit("SlowFanout", json!({"n": 30, "ms": 150, "children": 2})).await?;
    until("sleeps run", WAIT, async || {
        let (_, job) = host.get(&format!("/v1/jobs/{id}")).await?;
        Ok(job["task_counts"]["running"].as_u64() >= Some(1)
            && job["task_counts"]["computed"].as_u64() >= Some(1))
    })
    .await?;
    let (status, job) = host.post(&format!("/v1/jobs/{id}/cancel"), &json!({})).await?;
    let canceled_at = SystemTime::now();
    assert_eq!((status.as_u16(), job["state"].as_str()), (200, Some("canceled")));

    // Running tasks finish; nothing else starts.
    until("running tasks finish", WAIT, async || {
        Ok(host.get(&format!("/v1/jobs/{id}")).await?.1["task_counts"]["running"] == 0)
    })
    .await?;
    // Barrier: both runners are free and claim again; a job submitted now
    // completes, and no task of the canceled one started meanwhile.
    let after = host.submit("Noop", json!({})).await?;
    assert_eq!(host.wait(&after, WAIT).await?["state"], "completed");
    let (_, job) = host.get(&format!("/v1/jobs/{id}")).await?;
    assert_eq!(job["state"], "canceled");
    assert_eq!(job["task_counts"]["running"], 0);
    let tasks = host.tasks(&id).await?;
    for t in tasks.iter().filter(|t| !t["started_at"].is_null()) {
        assert!(time(&t["started_at"]) <= canceled_at, "started after the cancel: {t}");
    }
    let late_children: Vec<&Value> =
        of_type(&tasks, "Noop").into_iter().filter(|t| time(&t["created_at"]) > canceled_at).collect();
    assert!(
        !late_children.is_empty(),
        "running tasks that finished after the cancel recorded their subtasks"
    );
    assert!(late_children.iter().all(|t| t["state"] == "queued"));
    assert!(of_type(&tasks, "Sleep").iter().any(|t| t["state"] == "queued"), "some sleeps never started");

    let (status, retried) = host.post(&format!("/v1/jobs/{id}/retry"), &json!({})).await?;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["requeued"], 0, "a canceled job has no failed tasks");
    assert!(retried["ready"].as_u64() > Some(0));
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed");
    assert_eq!(job["task_counts"]["computed"], 1 + 30 + 60);
    assert!(host.tasks(&id).await?.iter().all(|t| t["attempts"] == 1), "nothing ran twice");
    Ok(())
}

async fn claim(host: &Host) -> anyhow::Result<Value> {
    let (status, claimed) =
        host.post("/v1/runners/claim", &json!({"cluster": "default", "wait_ms": 5000})).await?;
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["tasks"].as_array().map(Vec::len), Some(1), "{claimed}");
    Ok(claimed["tasks"][0].clone())
}

/// Names the start `a` (a claimed task).
fn attempt_ref(a: &Value) -> Value {
    json!({"job": a["job"], "task": a["task"], "lease": a["lease"]})
}

/// A report of the start `a`, with nothing in it.
fn report_of(a: &Value) -> Value {
    json!({"job": a["job"], "task": a["task"], "attempt": a["attempt"], "lease": a["lease"]})
}

async fn task_state(host: &Host, job: &str) -> anyhow::Result<String> {
    Ok(host.tasks(job).await?[0]["state"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn an_expired_lease_requeues_and_the_late_report_is_refused() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0", "--lease-ttl", "300ms", "--max-lost-attempts", "1"]).await?;
    host.upload("probe").await?;
    let id = host.submit("Noop", json!({})).await?;

    let first = claim(&host).await?;
    assert_eq!(first["attempt"], 1);
    assert_eq!(first["lease_ms"], 300);
    let (status, _) = host.post("/v1/runners/extend", &attempt_ref(&first)).await?;
    assert_eq!(status, 200);
    until("the expired attempt is re-queued", WAIT, async || Ok(task_state(&host, &id).await? == "queued"))
        .await?;
    let (status, _) = host.post("/v1/runners/extend", &attempt_ref(&first)).await?;
    assert_eq!(status, 409);

    let second = claim(&host).await?;
    assert_eq!(second["attempt"], 2);
    assert_ne!(second["lease"], first["lease"]);
    let (status, body) = host.post("/v1/runners/report", &report_of(&first)).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (409, Some("stale_attempt")));
    assert_eq!(task_state(&host, &id).await?, "running", "the stale report changed nothing");
    let (status, body) = host.post("/v1/runners/report", &report_of(&second)).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    let t = &host.tasks(&id).await?[0];
    assert_eq!(t["attempts"], 2);
    assert_eq!(t["max_retries"], 0, "a lost attempt does not use a retry");

    // Past the budget of lost attempts the task fails and says why.
    let doomed = host.submit("Noop", json!({})).await?;
    for _ in 0..2 {
        claim(&host).await?;
        until("the lease expires", WAIT, async || Ok(task_state(&host, &doomed).await? != "running")).await?;
    }
    assert_eq!(host.wait(&doomed, WAIT).await?["state"], "failed");
    let error = host.tasks(&doomed).await?[0]["error"].as_str().unwrap_or("").to_owned();
    assert!(error.contains("lost with its runner") && error.contains("limit of 1"), "{error}");
    Ok(())
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_job() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let body = json!({"name": "once", "task": "Noop", "input": {}, "idempotency_key": "order-42"});
    let (first_status, first) = host.post("/v1/jobs", &body).await?;
    let (again_status, again) = host.post("/v1/jobs", &body).await?;
    assert_eq!((first_status.as_u16(), again_status.as_u16()), (201, 200));
    assert_eq!(first["id"], again["id"]);
    let other = json!({"name": "once", "task": "Noop", "input": {}, "idempotency_key": "order-43"});
    let (status, third) = host.post("/v1/jobs", &other).await?;
    assert_eq!(status, 201);
    assert_ne!(third["id"], first["id"]);
    // Once its job is deleted, the key makes a new job.
    let id = first["id"].as_str().unwrap();
    host.wait_ended(id, WAIT).await?;
    let (status, _) = host.send(reqwest::Client::new().delete(format!("{}/v1/jobs/{id}", host.base))).await?;
    assert_eq!(status, 204);
    let (status, fourth) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, 201, "{fourth}");
    assert_ne!(fourth["id"], first["id"]);
    let (status, again) = host.post("/v1/jobs", &body).await?;
    assert_eq!((status.as_u16(), &again["id"]), (200, &fourth["id"]));
    Ok(())
}

#[tokio::test]
async fn a_remote_report_is_checked_as_the_sandbox_checks_a_guest() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    host.upload("probe").await?;
    // A subtask the host does not admit fails the attempt with the answer
    // an in-process guest would have had, instead of refusing the report.
    let id = host.submit("Noop", json!({})).await?;
    let a = claim(&host).await?;
    let mut report = report_of(&a);
    report["subtasks"] = json!([
        {"task_type": {"name": "Noop", "version": "v0.0"}, "input": {}},
        {"task_type": {"name": "Noop", "version": "v0.0"}, "input": [1], "depends_on": [3]},
    ]);
    let (status, body) = host.post("/v1/runners/report", &report).await?;
    assert_eq!(status, 200, "{body}");
    let tasks = host.tasks(&id).await?;
    assert_eq!(tasks.len(), 1, "no subtask of a failed attempt exists");
    assert_eq!(tasks[0]["state"], "failed");
    assert_eq!(
        tasks[0]["error"],
        "subtask 1 was refused by the host: depends on subtask handle 3, but only 1 were issued before it"
    );
    // A stale lease is refused and changes nothing.
    let (status, body) = host.post("/v1/runners/report", &report).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (409, Some("stale_attempt")), "{body}");

    // An input the host cannot hold in an f64 travels as it was written.
    let id = host.submit("Noop", json!({})).await?;
    let a = claim(&host).await?;
    let mut report = report_of(&a);
    report["subtasks"] = json!([{"task_type": {"name": "Noop", "version": "v0.0"}, "input": [0]}]);
    let body = report.to_string().replace(r#""input":[0]"#, r#""input":[1e400]"#);
    let (status, body) = host.post_raw("/v1/runners/report", body.into_bytes(), "application/json").await?;
    assert_eq!(status, 200, "{body}");
    let tasks = host.tasks(&id).await?;
    assert_eq!(tasks[1]["state"], "queued", "no runner serves the cluster");
    let claimed = reqwest::Client::new()
        .post(format!("{}/v1/runners/claim", host.base))
        .json(&json!({"cluster": "default", "wait_ms": 5000}))
        .send()
        .await?
        .text()
        .await?;
    assert!(claimed.contains(r#""input":[1e400]"#), "the subtask's input as it was reported: {claimed}");
    Ok(())
}
