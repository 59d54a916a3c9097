//! A data directory written by the previous store layout (schema 2, see
//! `tests/fixtures/layout-v2/README.md`) opens, reads back as it was (its
//! module's bytes moved from the database into a file), and its unfinished
//! jobs complete. A local store's layout, so always on the local store.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::harness::{Host, of_type};

const WAIT: Duration = Duration::from_secs(60);

/// A copy of the schema-2 data directory in a temporary directory.
fn schema_2_copy() -> anyhow::Result<(tempfile::TempDir, HashMap<String, String>)> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/layout-v2");
    let dir = tempfile::tempdir()?;
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(fixture.join("db.tar.gz"))
        .arg("-C")
        .arg(dir.path())
        .status()
        .context("running tar")?;
    anyhow::ensure!(status.success(), "tar failed: {status}");
    let jobs = serde_json::from_str(&std::fs::read_to_string(fixture.join("jobs.json"))?)?;
    Ok((dir, jobs))
}

async fn job(host: &Host, id: &str) -> anyhow::Result<Value> {
    let (status, job) = host.get(&format!("/v1/jobs/{id}")).await?;
    anyhow::ensure!(status == 200, "job {id} answered {status}: {job}");
    Ok(job)
}

#[tokio::test]
async fn a_schema_2_data_dir_is_migrated_and_its_jobs_finish() -> anyhow::Result<()> {
    let (dir, ids) = schema_2_copy()?;
    let mut host = Host::start_local(dir.path(), &["--runners", "0"], &[]).await?;
    let counts = |queued: u64, computed: u64, failed: u64| json!({"queued": queued, "running": 0, "computed": computed, "failed": failed, "failed_optional": 0, "skipped": 0, "total": queued + computed + failed});
    let expected = [
        ("gate", "completed", counts(0, 15, 0)),
        ("traced", "completed", counts(0, 1, 0)),
        ("counted", "completed", counts(0, 4, 0)),
        ("flaky", "failed", counts(1, 1, 1)),
        ("mapreduce", "started", counts(16, 4, 0)),
        ("fanin", "started", counts(6, 1, 0)),
    ];
    for (name, state, task_counts) in &expected {
        let job = job(&host, &ids[*name]).await?;
        assert_eq!((&job["state"], &job["task_counts"]), (&json!(state), task_counts), "{name}: {job}");
    }
    let logs = host.logs(&ids["traced"]).await?;
    assert_eq!(logs.as_array().map(Vec::len), Some(2), "{logs}");
    assert_eq!(job(&host, &ids["counted"]).await?["progress"], json!({"items": {"total": 3, "done": 3}}));
    let tasks = host.tasks(&ids["flaky"]).await?;
    let flaky = of_type(&tasks, "Flaky");
    assert_eq!(flaky[0]["errors"], json!([{"attempt": 1, "message": "flaky failure on attempt 1"}]));
    let noop = of_type(&tasks, "Noop");
    assert_eq!(noop[0]["depends_on"], json!([flaky[0]["id"]]), "edges survive");
    // The module's bytes moved out of the database into a file named by
    // its digest (and the runners below load the module from it).
    let (_, modules) = host.get("/v1/modules").await?;
    let digest = modules[0]["digest"].as_str().unwrap_or_default().to_owned();
    let file = dir.path().join("db/modules").join(format!("{digest}.wasm"));
    assert_eq!(std::fs::metadata(&file)?.len(), modules[0]["size"].as_u64().unwrap_or(0), "{modules}");
    host.stop()?;

    // The subtasks of the unfinished jobs run on `later`; they complete
    // only if every migrated counter is right.
    host = Host::start_local(dir.path(), &["--runners", "2", "--cluster", "later"], &[]).await?;
    for name in ["mapreduce", "fanin"] {
        assert_eq!(host.wait(&ids[name], WAIT).await?["state"], "completed", "{name}");
    }
    host.stop()?;

    host = Host::start_local(dir.path(), &["--runners", "2"], &[]).await?;
    let (status, retried) = host.post(&format!("/v1/jobs/{}/retry", ids["flaky"]), &json!({})).await?;
    assert_eq!((status.as_u16(), &retried["requeued"]), (200, &json!(1)), "{retried}");
    assert_eq!(host.wait(&ids["flaky"], WAIT).await?["state"], "completed");
    Ok(())
}
