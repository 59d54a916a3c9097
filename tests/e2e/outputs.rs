//! Outputs: a task's output reaches the tasks that depend on it and the
//! user, typed through the SDK; a reducer reads a thousand of them; bounds
//! give readable failures; outputs are durable and never change; a remote
//! runner reads them through the API; a component built against WIT 0.1.0
//! still runs.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Host, Runner};

const WAIT: Duration = Duration::from_secs(120);

/// The job's output as the API answers it: status and JSON body.
async fn output(host: &Host, job: &str) -> anyhow::Result<(StatusCode, Value)> {
    host.get(&format!("/v1/jobs/{job}/output")).await
}

#[tokio::test]
async fn word_count_leaves_the_top_words_as_the_jobs_output() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("wordcount").await?;
    let texts = ["The cat sat.", "the dog sat; the cat ran", "A dog!"];
    let id = host.submit("WordCount", json!({"texts": texts, "top": 3})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed");
    let top = json!([["the", 3], ["cat", 2], ["dog", 2]]);
    assert_eq!(job["output"], top, "the job shows its output once completed");
    assert_eq!(output(&host, &id).await?, (StatusCode::OK, top));
    let tasks = host.tasks(&id).await?;
    let mapper = crate::harness::of_type(&tasks, "CountWords")[0]["id"].as_str().unwrap().to_owned();
    let (status, counts) = host.get(&format!("/v1/jobs/{id}/tasks/{mapper}/output")).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(counts.as_object().is_some_and(|c| !c.is_empty()), "a mapper leaves its counts: {counts}");
    let (_, task) = host.get(&format!("/v1/jobs/{id}/tasks/{mapper}")).await?;
    assert_eq!(task["output"], counts, "one task's view shows its small output");
    assert_eq!(task["output_bytes"], serde_json::to_vec(&counts)?.len(), "{task}");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(["job", "output", &id, "--server", &host.base])
        .output()?;
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&cli.stdout)?, json!([["the", 3], ["cat", 2], ["dog", 2]]));

    // Many at once: a reducer is handed out in the group that computed its
    // last mapper, before that group is visible, and must still read every
    // output (9 of 60 such jobs failed before the read waited for it).
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(host.submit("WordCount", json!({"texts": texts, "top": 3})).await?);
    }
    for id in ids {
        assert_eq!(host.wait(&id, WAIT).await?["output"], json!([["the", 3], ["cat", 2], ["dog", 2]]));
    }
    Ok(())
}

#[tokio::test]
async fn a_reducer_reads_a_thousand_dependency_outputs() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("outputs").await?;
    let id = host.submit("SumOf", json!({"n": 1000})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["output"], json!(999 * 1000 / 2));

    // Over 64 KiB, the output is not shown on the job, only served whole.
    let id = host.submit("Big", json!({"bytes": 100_000})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert!(job["state"] == "completed" && job.get("output").is_none(), "{job}");
    let (status, big) = output(&host, &id).await?;
    assert_eq!((status, big.as_str().map(str::len)), (StatusCode::OK, Some(99_998)));
    Ok(())
}

#[tokio::test]
async fn bad_outputs_and_reads_give_readable_answers() -> anyhow::Result<()> {
    let host = Host::start(&["--limit", "task_output_bytes=64KiB"]).await?;
    host.upload("outputs").await?;
    let id = host.submit("Big", json!({"bytes": 100_000})).await?;
    let error = host.failure(&id, WAIT).await?;
    assert!(error.contains("the task's output of 100000 bytes exceeds the limit of 65536 bytes"), "{error}");
    let fits = host.submit("Big", json!({"bytes": 65_536})).await?;
    let job = host.wait(&fits, WAIT).await?;
    assert_eq!(job["output"].as_str().map(str::len), Some(65_534), "64 KiB are shown on the job");
    let (_, root) =
        host.get(&format!("/v1/jobs/{fits}/tasks/{}", job["root_task"].as_str().unwrap())).await?;
    assert_eq!(
        (root["output_bytes"].as_u64(), root["output"].as_str().map(str::len)),
        (Some(65_536), Some(65_534))
    );

    let id = host.submit("PeekRoot", json!({"handle": 1})).await?;
    host.wait(&id, WAIT).await?;
    let (_, answer) = output(&host, &id).await?;
    let refused = answer["Err"].as_str().unwrap_or_default();
    assert!(refused.contains("does not depend on subtask handle 1; its dependencies are [0]"), "{answer}");
    let id = host.submit("PeekRoot", json!({"handle": 0})).await?;
    host.wait(&id, WAIT).await?;
    assert_eq!(output(&host, &id).await?.1, json!({"Ok": 7}));

    let id = host.submit("Nothing", json!({})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert!(job.get("output").is_none(), "{job}");
    let (_, root) = host.get(&format!("/v1/jobs/{id}/tasks/{id}")).await?;
    assert!(root.get("output").is_none() && root.get("output_bytes").is_none(), "{root}");
    let (status, body) = output(&host, &id).await?;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("no_output")));
    let (status, body) = host.get(&format!("/v1/jobs/{id}/tasks/{id}/output")).await?;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    Ok(())
}

#[tokio::test]
async fn a_retried_task_leaves_its_computed_attempts_output() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("outputs").await?;
    let (status, body) = host
        .post("/v1/jobs", &json!({"name": "flaky", "task": "FlakyOutput", "input": {}, "max_retries": 1}))
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(host.wait(&id, WAIT).await?["output"], json!(2));
    Ok(())
}

#[tokio::test]
async fn outputs_survive_a_kill_and_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut host = Host::start_in(dir.path(), &[]).await?;
    host.upload("outputs").await?;
    let id = host.submit("SumOf", json!({"n": 50})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["output"], json!(1225));
    // What a read shows may not be durable yet (in-process reports are
    // synced within 2 ms, unacknowledged); an acknowledged submission after
    // it is, and so is everything logged before it.
    host.submit("Nothing", json!({})).await?;
    host.kill();
    let mut host = Host::start_in(dir.path(), &[]).await?;
    assert_eq!(output(&host, &id).await?, (StatusCode::OK, json!(1225)));
    host.stop()?;
    let host = Host::start_in(dir.path(), &[]).await?;
    assert_eq!(output(&host, &id).await?, (StatusCode::OK, json!(1225)));
    let (status, _) = host.send(reqwest::Client::new().delete(format!("{}/v1/jobs/{id}", host.base))).await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = output(&host, &id).await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "a deleted job's outputs are gone");
    Ok(())
}

#[tokio::test]
async fn a_remote_runner_reads_outputs_through_the_api() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    host.upload("outputs").await?;
    let cache = tempfile::tempdir()?;
    let _runner = Runner::start(&host, "default", cache.path(), &["--concurrency", "2"]).await?;
    let id = host.submit("SumOf", json!({"n": 40})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["output"], json!(780), "{job}");
    Ok(())
}

/// The `outputs` fixture as an older SDK built it (`component`) sums 40
/// numbers its subtasks output, as today's does.
async fn older_outputs_still_run(component: &str) -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload(component).await?;
    let id = host.submit("SumOf", json!({"n": 40})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!((job["state"].as_str(), &job["output"]), (Some("completed"), &json!(780)), "{job}");
    Ok(())
}

#[tokio::test]
async fn a_component_built_against_wit_0_3_0_still_runs() -> anyhow::Result<()> {
    older_outputs_still_run("outputs-v0.3.0").await
}

#[tokio::test]
async fn a_component_built_against_wit_0_2_0_still_runs() -> anyhow::Result<()> {
    older_outputs_still_run("outputs-v0.2.0").await
}

#[tokio::test]
async fn a_component_built_against_wit_0_1_0_still_runs() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("fanout-v0.1.0").await?;
    let id = host.submit("Root", json!({"num_subtasks": 3})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!((job["state"].as_str(), job["task_counts"]["total"].as_u64()), (Some("completed"), Some(10)));
    assert!(job.get("output").is_none());
    let (status, _) = output(&host, &id).await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "a 0.1.0 task leaves no output");
    Ok(())
}
