//! A Python component (componentize-py, built by `tests/python.rs`) is
//! contained like any other: its infinite loop times out, its memory bomb
//! meets the memory limit, its uncaught exception is the task's error, and
//! 32 runners run its tasks at once without running out of sandbox slots.

use std::time::Duration;

use serde_json::json;

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn python_tasks_are_contained_and_run_on_32_runners() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "32", "--task-timeout", "3s", "--memory-limit-mib", "64"]).await?;
    host.upload("hostile-py").await?;
    host.upload("fanout").await?;
    let spin = host.submit("PySpin", json!({})).await?;
    let bomb = host.submit("PyMemoryBomb", json!({})).await?;
    let raise = host.submit("PyRaise", json!({})).await?;
    let mut noops = Vec::new();
    for _ in 0..64 {
        noops.push(host.submit("PyNoop", json!({})).await?);
    }
    let good = host.submit("Root", json!({"num_subtasks": 10})).await?;
    assert_eq!(host.failure(&spin, WAIT).await?, "timed out after 3s");
    let bomb = host.failure(&bomb, WAIT).await?;
    assert!(
        bomb.starts_with("memory limit of 64 MiB exceeded (the task asked for ")
            && bomb.ends_with(" MiB in all)"),
        "{bomb}"
    );
    let raised = host.failure(&raise, WAIT).await?;
    assert_eq!(raised.lines().next(), Some("ValueError: the data source refused the request"), "{raised}");
    for id in &noops {
        assert_eq!(host.wait(id, WAIT).await?["state"], "completed");
        let task = &host.tasks(id).await?[0];
        assert_eq!(task["attempts"], 1, "a Python task used a retry: {task}");
    }
    assert_eq!(host.wait(&good, WAIT).await?["state"], "completed");
    Ok(())
}
