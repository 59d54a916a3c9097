//! State survives a restart, and modules are not recompiled.

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(60);

fn artifacts(dir: &std::path::Path) -> Vec<(String, SystemTime)> {
    let mut out: Vec<_> = std::fs::read_dir(dir.join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().modified().unwrap()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn jobs_tasks_and_modules_survive_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut host = Host::start_in(dir.path(), &[]).await?;
    host.upload("fanout").await?;
    let id = host.submit("Root", json!({"num_subtasks": 3})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    let tasks_before = host.tasks(&id).await?;
    let artifacts_before = artifacts(dir.path());
    assert_eq!(artifacts_before.len(), 1);
    host.kill();

    let host = Host::start_in(dir.path(), &[]).await?;
    let (status, again) = host
        .post_raw("/v1/modules", std::fs::read(crate::harness::component("fanout"))?, "application/wasm")
        .await?;
    assert_eq!(status, 200, "re-uploading the same bytes is idempotent: {again}");
    let (status, job) = host.get(&format!("/v1/jobs/{id}")).await?;
    assert_eq!(status, 200);
    assert_eq!(job["state"], "completed");
    assert_eq!(host.tasks(&id).await?, tasks_before);
    let (_, modules) = host.get("/v1/modules").await?;
    assert_eq!(modules.as_array().unwrap().len(), 1);

    let again = host.submit("Root", json!({"num_subtasks": 2})).await?;
    assert_eq!(host.wait(&again, WAIT).await?["state"], "completed");
    assert_eq!(artifacts(dir.path()), artifacts_before);
    let (_, stats) = host.get("/v1/stats").await?;
    assert_eq!(stats["modules_compiled"], 0, "the module was compiled again after the restart: {stats}");
    Ok(())
}
