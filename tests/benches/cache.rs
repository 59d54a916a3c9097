//! Job cache throughput: one task puts `n` values of 1 MiB (streamed
//! through a writer), its subtask reads every one back and checks its
//! bytes; MiB/s from the tasks' own start and finish times, so job setup is
//! not counted. Through the host's cache directly (in-process runners),
//! and through the API (a remote runner).

use std::time::Duration;

use serde_json::{Value, json};

use super::harness::{Host, Runner, time};
use super::{report, wait_done};

/// The MiB/s of one put pass and one get pass over `n` values.
async fn rates(host: &Host, n: u32) -> anyhow::Result<(f64, f64)> {
    let key = |i| format!("v/{i}");
    let puts: Vec<Value> = (0..n).map(|i| json!({"put_pattern": key(i), "bytes": 1 << 20})).collect();
    let gets: Vec<Value> = (0..n).map(|i| json!({"check_pattern": key(i)})).collect();
    let id = host.submit("CacheOps", json!({"ops": puts, "then": gets})).await?;
    wait_done(host, &id, Duration::from_millis(20)).await?;
    let tasks = host.tasks(&id).await?;
    let secs = |t: &Value| {
        time(&t["finished_at"]).duration_since(time(&t["started_at"])).unwrap_or_default().as_secs_f64()
    };
    let root = tasks.iter().find(|t| t["parent"].is_null()).ok_or_else(|| anyhow::anyhow!("no root"))?;
    let child = tasks.iter().find(|t| !t["parent"].is_null()).ok_or_else(|| anyhow::anyhow!("no reader"))?;
    let (_, output) = host.get(&format!("/v1/jobs/{id}/output")).await?;
    anyhow::ensure!(output.as_array().is_some_and(|o| o.iter().all(|v| v == 1 << 20)), "bad reads: {output}");
    Ok((f64::from(n) / secs(root), f64::from(n) / secs(child)))
}

async fn measure(host: &Host, name: &str, n: u32, runs: usize) -> anyhow::Result<()> {
    host.upload("cache").await?;
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (put, get) = rates(host, n).await?;
        puts.push(put);
        gets.push(get);
    }
    report(&format!("cache put, {n} values of 1 MiB, {name}"), "MiB/s", &mut puts);
    report(&format!("cache get, {n} values of 1 MiB, {name}"), "MiB/s", &mut gets);
    Ok(())
}

pub async fn throughput(n: u32, runs: usize) -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    measure(&host, "in-process runner, cache directory", n, runs).await?;
    let host = Host::start(&["--runners", "0"]).await?;
    let dir = tempfile::tempdir()?;
    let _runner = Runner::start(&host, "default", dir.path(), &["--concurrency", "2"]).await?;
    measure(&host, "remote runner through the API", n, runs).await
}
