//! The PostgreSQL store beyond what every other test checks on it (run the
//! suite with `SANDFLOW_TEST_STORE=postgres` for those): a store copied from
//! a data directory into a database and back serves the same jobs, logs and
//! modules.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(60);

/// Runs `sandflow store copy --from FROM --to TO`; answers what it printed.
fn copy(from: &str, to: &str) -> anyhow::Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(["store", "copy", "--from", from, "--to", to])
        .output()?;
    let (stdout, stderr) =
        (String::from_utf8(out.stdout)?, String::from_utf8_lossy(&out.stderr).into_owned());
    anyhow::ensure!(out.status.success(), "store copy failed: {stdout}{stderr}");
    Ok(stdout)
}

fn db(dir: &Path) -> String {
    dir.join("db").display().to_string()
}

#[tokio::test]
async fn a_store_copied_into_a_database_and_back_serves_the_same_jobs() -> anyhow::Result<()> {
    let (first, second, third) = (tempfile::tempdir()?, tempfile::tempdir()?, tempfile::tempdir()?);
    let mut host = Host::start_local(first.path(), &[], &[]).await?;
    host.upload("pipeline").await?;
    let id = host.submit("Pipeline", json!({"sources": ["a", "b", "c"]})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    let (tasks, logs) = (host.tasks(&id).await?, host.logs(&id).await?);
    host.stop()?;

    let url = sandflow_test_postgres::shared().database().map_err(anyhow::Error::msg)?;
    let said = copy(&db(first.path()), &url)?;
    assert!(said.contains(" and 1 modules from "), "{said}");
    let refused = copy(&db(first.path()), &url).unwrap_err().to_string();
    assert!(refused.contains("not empty"), "a second copy into the same database is refused: {refused}");

    let store = ["--store", url.as_str()];
    let mut host = Host::start_in(second.path(), &store).await?;
    let (_, job) = host.get(&format!("/v1/jobs/{id}")).await?;
    assert_eq!(job["state"], "completed");
    assert_eq!(host.tasks(&id).await?, tasks);
    assert_eq!(host.logs(&id).await?, logs);
    let again = host.submit("Pipeline", json!({"sources": ["d"]})).await?;
    assert_eq!(host.wait(&again, WAIT).await?["state"], "completed", "the module's bytes came along");
    host.stop()?;

    copy(&url, &db(third.path()))?;
    let host = Host::start_local(third.path(), &[], &[]).await?;
    assert_eq!(host.tasks(&id).await?, tasks);
    assert_eq!(host.get(&format!("/v1/jobs/{again}")).await?.1["state"], "completed");
    Ok(())
}
