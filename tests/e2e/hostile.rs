//! Hostile guests end as failed tasks with exact messages; the host and a
//! well-behaved job alongside carry on.

use std::time::Duration;

use serde_json::json;

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn hostile_tasks_fail_precisely_and_harm_nobody() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "4", "--task-timeout", "1s", "--memory-limit-mib", "32"]).await?;
    host.upload("hostile").await?;
    host.upload("fanout").await?;
    let cases = [
        ("Spin", json!({}), "timed out after 1s".to_owned()),
        ("MemoryBomb", json!({}), "memory limit of 32 MiB exceeded".to_owned()),
        ("Panic", json!({"message": "boom"}), "panicked at".to_owned()),
        ("Flood", json!({}), format!("stdout exceeded the capture limit of {} bytes", 1 << 20)),
        ("StackOverflow", json!({}), "stack overflow: the task's call stack was exhausted".to_owned()),
        ("LogFlood", json!({}), "log limit of 10000 lines per attempt exceeded".to_owned()),
        ("SubtaskFlood", json!({}), "subtask limit of 100000 per attempt exceeded".to_owned()),
        (
            "EdgeFlood",
            json!({}),
            "the attempt's subtasks would name 1001000 dependencies in all, over the limit of 1000000 per attempt"
                .to_owned(),
        ),
        ("BadJson", json!({}), "input is not valid JSON: key must be a string at line 1 column 2".to_owned()),
        ("BadUtf8", json!({}), "failed: invalid utf-8 sequence of 1 bytes from index 2".to_owned()),
    ];
    let mut jobs = Vec::new();
    for (task, input, _) in &cases {
        jobs.push(host.submit(task, input.clone()).await?);
    }
    let good = host.submit("Root", json!({"num_subtasks": 10})).await?;
    for ((task, _, expected), id) in cases.iter().zip(&jobs) {
        let error = host.failure(id, WAIT).await?;
        assert!(error.starts_with(expected.as_str()), "{task}: {error:?} does not start with {expected:?}");
        if *task == "Panic" {
            let first = error.lines().next().unwrap_or("");
            assert!(first.ends_with(": boom"), "the panic's message first: {error}");
        }
    }
    assert_eq!(host.wait(&good, WAIT).await?["state"], "completed");
    let (status, _) = host.get("/healthz").await?;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test]
async fn a_forced_cancel_interrupts_running_tasks_and_frees_their_runner() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1", "--task-timeout", "10m"]).await?;
    host.upload("hostile").await?;
    host.upload("probe").await?;
    let (_, job) = host
        .post("/v1/jobs", &json!({"name": "spin", "task": "Spin", "input": {}, "max_retries": 3}))
        .await?;
    let id = job["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + WAIT;
    while host.tasks(&id).await?[0]["state"] != "running" {
        anyhow::ensure!(std::time::Instant::now() < deadline, "Spin never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = host.post(&format!("/v1/jobs/{id}/cancel?force=true"), &json!(null)).await?;
    assert_eq!(status, 200, "{body}");
    let canceled = std::time::Instant::now();
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "canceled");
    let task = &host.tasks(&id).await?[0];
    while host.tasks(&id).await?[0]["state"] != "failed" {
        anyhow::ensure!(canceled.elapsed() < Duration::from_secs(5), "not interrupted: {task}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let task = &host.tasks(&id).await?[0];
    assert_eq!((task["error"].as_str(), task["attempts"].as_u64()), (Some("canceled"), Some(1)), "{task}");
    // The only runner is free again at once.
    let noop = host.submit("Noop", json!({})).await?;
    assert_eq!(host.wait(&noop, Duration::from_secs(5)).await?["state"], "completed");
    Ok(())
}

#[tokio::test]
async fn an_upload_narrows_the_limits_of_its_task_types_within_the_host_maxima() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2", "--task-timeout", "20s", "--memory-limit-mib", "64"]).await?;
    let bytes = std::fs::read(crate::harness::component("hostile"))?;
    for (query, code) in [
        ("timeout=1h", "invalid_limits"),
        ("timeout=soon", "invalid_limits"),
        ("memory_mib=65", "invalid_limits"),
        ("memory_mib=0", "invalid_limits"),
    ] {
        let (status, body) =
            host.post_raw(&format!("/v1/modules?{query}"), bytes.clone(), "application/wasm").await?;
        assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (422, Some(code)), "{query}: {body}");
    }
    let (status, body) =
        host.post_raw("/v1/modules?timeout=300ms&memory_mib=16", bytes.clone(), "application/wasm").await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["timeout_ms"].as_u64(), body["memory_mib"].as_u64()), (Some(300), Some(16)));
    let started = std::time::Instant::now();
    let spin = host.submit("Spin", json!({})).await?;
    let bomb = host.submit("MemoryBomb", json!({})).await?;
    host.wait(&spin, WAIT).await?;
    assert!(started.elapsed() < Duration::from_secs(10), "the module's timeout applied, not the host's");
    assert_eq!(host.tasks(&spin).await?[0]["error"], "timed out after 300ms");
    host.wait(&bomb, WAIT).await?;
    let error = host.tasks(&bomb).await?[0]["error"].as_str().unwrap_or("").to_owned();
    assert!(error.starts_with("memory limit of 16 MiB exceeded"), "{error}");
    // The same bytes with other limits replace them.
    let (status, body) = host.post_raw("/v1/modules?timeout=2s", bytes, "application/wasm").await?;
    assert_eq!((status.as_u16(), body["timeout_ms"].as_u64()), (200, Some(2000)), "{body}");
    let spin = host.submit("Spin", json!({})).await?;
    host.wait(&spin, WAIT).await?;
    assert_eq!(host.tasks(&spin).await?[0]["error"], "timed out after 2s");
    Ok(())
}
