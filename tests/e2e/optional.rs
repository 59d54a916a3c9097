//! Failure handling end to end: an optional subtree that fails spares the
//! job (its failed task `failed_optional`, what was queued there
//! `skipped`, its dependent run), retries wait out their backoff (across a
//! host restart too), a permanent error is never retried, a delayed job
//! waits for its `not_before`, and the API, the CLI's tree and the diagram
//! show all of it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Host, of_type, time};

const WAIT: Duration = Duration::from_secs(60);

/// When each logged attempt of the task whose log says `message` ran.
async fn attempt_times(host: &Host, id: &str, message: &str) -> anyhow::Result<Vec<std::time::SystemTime>> {
    let logs = host.logs(id).await?;
    let lines = logs.as_array().cloned().unwrap_or_default();
    Ok(lines.iter().filter(|l| l["message"] == message).map(|l| time(&l["time"])).collect())
}

fn gap(times: &[std::time::SystemTime]) -> Duration {
    times[1].duration_since(times[0]).unwrap_or_default()
}

#[tokio::test]
async fn a_failed_optional_subtree_spares_the_job_and_shows_as_such() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let id = host.submit("Spared", json!({"backoff_ms": 300})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed", "{job}");
    let c = &job["task_counts"];
    assert_eq!(
        (&c["computed"], &c["failed_optional"], &c["skipped"], &c["failed"]),
        (&json!(3), &json!(1), &json!(1), &json!(0)),
        "{job}"
    );
    let tasks = host.tasks(&id).await?;
    let one = |name: &str| -> Value { of_type(&tasks, name)[0].clone() };
    assert_eq!(
        (one("Doomed")["state"].as_str(), one("Doomed")["optional"].as_bool()),
        (Some("computed"), Some(true))
    );
    let flaky = one("Flaky");
    assert_eq!(
        (flaky["state"].as_str(), flaky["attempts"].as_u64()),
        (Some("failed_optional"), Some(2)),
        "{flaky}"
    );
    assert!(flaky["error"].as_str().unwrap().contains("flaky failure on attempt 2"), "{flaky}");
    assert_eq!((one("Noop")["state"].as_str(), one("Noop")["attempts"].as_u64()), (Some("skipped"), Some(0)));
    assert_eq!(one("After")["state"], "computed", "the optional task's dependent ran");
    let times = attempt_times(&host, &id, "flaky attempt").await?;
    assert!(gap(&times) >= Duration::from_millis(300), "the retry waited its backoff: {:?}", gap(&times));

    let (status, page) = host.get("/v1/jobs?task_state=skipped").await?;
    assert_eq!((status, page["jobs"][0]["id"].as_str()), (StatusCode::OK, Some(id.as_str())), "{page}");
    let tree = host.cli(&["job", "tasks", &id])?;
    assert!(tree.contains("[failed_optional]  Flaky@"), "{tree}");
    assert!(tree.contains("[skipped]  Noop@"), "{tree}");
    assert!(tree.contains("[computed optional]  Doomed@"), "{tree}");
    let shown = host.cli(&["job", "show", &id])?;
    assert!(shown.contains("failed optional 1, skipped 1"), "{shown}");
    let svg = reqwest::get(format!("{}/v1/jobs/{id}/diagram.svg", host.base)).await?.text().await?;
    assert!(
        svg.contains(r#"data-state="skipped""#) && svg.contains("#fcf3ae"),
        "skipped tasks have their colour"
    );
    assert!(svg.contains(r#"data-state="failed_optional""#) && svg.contains(r#"data-optional="true""#));
    Ok(())
}

#[tokio::test]
async fn a_permanent_error_is_not_retried_and_a_retry_of_the_job_runs_it_once_more() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let body = json!({"name": "hopeless", "task": "Hopeless", "input": {}, "max_retries": 5});
    let (status, job) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let error = host.failure(&id, WAIT).await?;
    assert_eq!(error, "the account is closed; no retry can help");
    assert_eq!(host.tasks(&id).await?[0]["attempts"], 1, "five retries left, none used");
    let (_, retried) = host.post(&format!("/v1/jobs/{id}/retry"), &json!({})).await?;
    assert_eq!(retried["requeued"], 1, "{retried}");
    host.failure(&id, WAIT).await?;
    assert_eq!(host.tasks(&id).await?[0]["attempts"], 2, "a job retry runs it once more");
    Ok(())
}

#[tokio::test]
async fn a_root_task_waits_out_its_backoff_across_a_host_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut host = Host::start_in(dir.path(), &[]).await?;
    host.upload("probe").await?;
    let args = [
        "job",
        "submit",
        "flaky",
        "--task",
        "Flaky",
        "--input",
        r#"{"fail_first": 1}"#,
        "--max-retries",
        "1",
        "--backoff",
        "3s",
    ];
    let id = host.cli(&args)?.trim().to_owned();
    crate::harness::until("the first attempt failed", WAIT, async || {
        let tasks = host.tasks(&id).await?;
        Ok(tasks[0]["not_before"].is_string())
    })
    .await?;
    let task = &host.tasks(&id).await?[0];
    assert_eq!(
        (task["state"].as_str(), &task["backoff"]["initial_ms"]),
        (Some("queued"), &json!(3000)),
        "{task}"
    );
    // A clean stop: an in-process runner's report is not acknowledged, so
    // a kill could lose the failed attempt itself (and rightly run it again).
    host.stop()?;
    let host = Host::start_in(dir.path(), &[]).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed", "{job}");
    let times = attempt_times(&host, &id, "flaky attempt").await?;
    assert!(gap(&times) >= Duration::from_secs(3), "the restart kept the backoff: {:?}", gap(&times));
    Ok(())
}

#[tokio::test]
async fn a_bad_backoff_is_refused_with_the_reason() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let body =
        json!({"name": "x", "task": "Noop", "input": {}, "backoff": {"initial_ms": 5000, "max_ms": 10}});
    let (status, answer) = host.post("/v1/jobs", &body).await?;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_backoff"))
    );
    assert!(answer["error"]["message"].as_str().unwrap().contains("below its initial delay"), "{answer}");
    let body = json!({"name": "x", "task": "Noop", "input": {}, "backoff": {"initial_ms": 1, "factor": 0.5}});
    let (status, answer) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    Ok(())
}

#[tokio::test]
async fn a_delayed_job_starts_no_earlier_than_its_not_before() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let submitted = std::time::SystemTime::now();
    let id = host.cli(&[
        "job",
        "submit",
        "later",
        "--task",
        "Traced",
        "--input",
        r#"{"title": "t"}"#,
        "--delay",
        "1500ms",
    ])?;
    let id = id.trim();
    let root = &host.tasks(id).await?[0];
    assert_eq!((root["state"].as_str(), root["not_before"].is_string()), (Some("queued"), true), "{root}");
    let job = host.wait(id, WAIT).await?;
    assert_eq!(job["state"], "completed", "{job}");
    let started = time(&host.tasks(id).await?[0]["started_at"]);
    let waited = started.duration_since(submitted).unwrap_or_default();
    assert!(waited >= Duration::from_millis(1400), "started {waited:?} after submission");

    let late = json!({"name": "x", "task": "Noop", "input": {}, "not_before": "2999-01-01T00:00:00Z"});
    let (status, answer) = host.post("/v1/jobs", &late).await?;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_not_before"))
    );
    let past = json!({"name": "x", "task": "Noop", "input": {}, "not_before": "2020-01-01T00:00:00Z"});
    let (status, job) = host.post("/v1/jobs", &past).await?;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    host.wait(job["id"].as_str().unwrap(), WAIT).await?;
    Ok(())
}
