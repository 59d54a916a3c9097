//! The vertical slice: upload, submit, schedule with dependencies, observe.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Host, of_type, time};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn fanout_completes_with_its_graph_and_displays() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("fanout").await?;
    host.upload("pipeline").await?;
    let id = host.submit("Root", json!({"num_subtasks": 5})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed");
    assert_eq!(job["task_counts"]["total"], 16);
    assert_eq!(job["task_counts"]["computed"], 16);

    let tasks = host.tasks(&id).await?;
    assert_eq!(tasks.len(), 16);
    assert!(tasks.iter().all(|t| t["state"] == "computed" && t["attempts"] == 1));
    let root = &of_type(&tasks, "Root")[0];
    assert_eq!(root["display"], "Root(5)");
    assert_eq!(root["parent"], Value::Null);
    let subs = of_type(&tasks, "Sub");
    assert_eq!(subs.len(), 5);
    assert!(subs.iter().all(|s| s["parent"] == root["id"] && s["display"] == "Sub"));

    let by_id: HashMap<&str, &Value> = tasks.iter().map(|t| (t["id"].as_str().unwrap(), t)).collect();
    let mut leaf_indexes = Vec::new();
    for dependent in of_type(&tasks, "Dependent") {
        let deps = dependent["depends_on"].as_array().unwrap();
        assert_eq!(deps.len(), 1, "each Dependent waits for exactly its leaf");
        let leaf = by_id[deps[0].as_str().unwrap()];
        assert_eq!(leaf["task_type"]["name"], "Leaf");
        assert_eq!(leaf["parent"], dependent["parent"], "a Dependent and its Leaf are siblings");
        assert_eq!(leaf["display"], format!("Leaf Nr. {}", leaf["input"]["index"]));
        assert_eq!(leaf["input"]["index"], dependent["input"]["index"]);
        leaf_indexes.push(leaf["input"]["index"].as_u64().unwrap());
    }
    leaf_indexes.sort_unstable();
    assert_eq!(leaf_indexes, vec![0, 1, 2, 3, 4]);
    Ok(())
}

#[tokio::test]
async fn a_dependent_starts_only_after_its_dependency_and_subtree() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "4"]).await?;
    host.upload("fanout").await?;
    host.upload("probe").await?;
    let fanout = host.submit("Root", json!({"num_subtasks": 8})).await?;
    let gate = host.submit("Gate", json!({"depth": 3, "fanout": 3})).await?;
    assert_eq!(host.wait(&fanout, WAIT).await?["state"], "completed");
    assert_eq!(host.wait(&gate, WAIT).await?["state"], "completed");

    let tasks = host.tasks(&fanout).await?;
    let by_id: HashMap<&str, &Value> = tasks.iter().map(|t| (t["id"].as_str().unwrap(), t)).collect();
    for dependent in of_type(&tasks, "Dependent") {
        let leaf = by_id[dependent["depends_on"][0].as_str().unwrap()];
        assert!(time(&dependent["started_at"]) >= time(&leaf["finished_at"]));
    }

    // `After` depends on a Tree whose own subtasks (39 of them) must all be
    // computed before it starts, not just the Tree task itself.
    let tasks = host.tasks(&gate).await?;
    assert_eq!(tasks.len(), 1 + 40 + 1, "Gate, 40 Tree tasks, After");
    let after = of_type(&tasks, "After")[0];
    let after_start = time(&after["started_at"]);
    for tree in of_type(&tasks, "Tree") {
        assert!(after_start >= time(&tree["finished_at"]), "After started before {tree}");
    }
    Ok(())
}

#[tokio::test]
async fn a_failing_task_fails_the_job_and_its_subtasks_never_exist() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let id = host.submit("FailAfterSubmit", json!({})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "failed");
    let tasks = host.tasks(&id).await?;
    assert_eq!(tasks.len(), 1, "the subtask buffered by the failed attempt must not exist: {tasks:?}");
    assert_eq!(tasks[0]["state"], "failed");
    assert_eq!(tasks[0]["error"], "the data source refused the request");
    assert_eq!(tasks[0]["display"], "about to fail");
    Ok(())
}

#[tokio::test]
async fn guest_mistakes_are_reported_to_the_guest() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let cycle = host.submit("Cycle", json!({})).await?;
    let unknown = host.submit("UnknownSubtask", json!({})).await?;
    assert_eq!(host.wait(&cycle, WAIT).await?["state"], "failed");
    assert_eq!(host.wait(&unknown, WAIT).await?["state"], "failed");
    let cycle_task = &host.tasks(&cycle).await?[0];
    assert_eq!(cycle_task["error"], "depends on subtask handle 5, but only 1 were issued before it");
    let unknown_task = &host.tasks(&unknown).await?[0];
    assert_eq!(
        unknown_task["error"],
        "unknown task type NobodyImplementsThis@v0.0: no registered implementation can run it"
    );
    Ok(())
}

#[tokio::test]
async fn display_names_default_to_the_type_and_are_truncated() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let long = host.submit("LongDisplay", json!({"chars": 5000})).await?;
    let plain = host.submit("Noop", json!({})).await?;
    host.wait(&long, WAIT).await?;
    host.wait(&plain, WAIT).await?;
    let display = host.tasks(&long).await?[0]["display"].as_str().unwrap().to_owned();
    assert_eq!(display, "d".repeat(1024));
    assert_eq!(host.tasks(&plain).await?[0]["display"], "Noop");
    Ok(())
}

#[tokio::test]
async fn pipeline_logs_with_fields() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("pipeline").await?;
    let id = host.submit("Pipeline", json!({"sources": ["a", "b", "c"]})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    let tasks = host.tasks(&id).await?;
    assert_eq!(tasks.len(), 6);
    let merge = of_type(&tasks, "Merge")[0];
    assert_eq!(merge["depends_on"].as_array().unwrap().len(), 3);
    let logs = host.logs(&id).await?;
    let downloaded: Vec<&Value> =
        logs.as_array().unwrap().iter().filter(|l| l["message"] == "downloaded").collect();
    assert_eq!(downloaded.len(), 3);
    assert!(downloaded.iter().any(|l| l["fields"]["source"] == "b" && l["level"] == "info"));
    Ok(())
}
