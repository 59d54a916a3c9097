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
        ("BadJson", json!({}), "input is not valid JSON: key must be a string at line 1 column 2".to_owned()),
        ("BadUtf8", json!({}), "failed: invalid utf-8 sequence of 1 bytes from index 2".to_owned()),
    ];
    let mut jobs = Vec::new();
    for (task, input, _) in &cases {
        jobs.push(host.submit(task, input.clone()).await?);
    }
    let good = host.submit("Root", json!({"num_subtasks": 10})).await?;
    for ((task, _, expected), id) in cases.iter().zip(&jobs) {
        let job = host.wait(id, WAIT).await?;
        assert_eq!(job["state"], "failed", "{task}");
        let error = host.tasks(id).await?[0]["error"].as_str().unwrap_or("").to_owned();
        assert!(error.starts_with(expected.as_str()), "{task}: {error:?} does not start with {expected:?}");
        if *task == "Panic" {
            assert!(error.ends_with(": boom"), "{error}");
        }
    }
    assert_eq!(host.wait(&good, WAIT).await?["state"], "completed");
    let (status, _) = host.get("/healthz").await?;
    assert_eq!(status, 200);
    Ok(())
}
