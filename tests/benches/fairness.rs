//! Fairness under a large fan-out: while one job's `n` no-op subtasks run
//! on 2 in-process runners, one-task jobs are submitted one after another;
//! each one's latency from submission to completed bounds how long it
//! waited behind the fan-out. Reports its p50, p99 and max.

use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::Host;
use super::{pct, wait_done};

/// Submits `samples` one-task jobs while a fan-out of `n` runs.
pub async fn behind_a_fan_out(n: u32, samples: usize) -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("probe").await?;
    let big = host.submit("Fanout", json!({"n": n})).await?;
    // Let the fan-out's subtasks be queued first.
    wait_started(&host, &big).await?;
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let id = host.submit("Noop", json!({})).await?;
        wait_done(&host, &id, Duration::from_micros(200)).await?;
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let (_, job) = host.get(&format!("/v1/jobs/{big}")).await?;
    let behind = job["task_counts"]["queued"].as_u64().unwrap_or(0);
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "one-task job submitted behind a fan-out of {n} (2 runners; {behind} of its tasks still queued after the last sample): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({samples} jobs)",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    wait_done(&host, &big, Duration::from_millis(5)).await
}

/// Waits until the job's root has computed (its subtasks are queued).
async fn wait_started(host: &Host, id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, job) = host.get(&format!("/v1/jobs/{id}")).await?;
        if job["task_counts"]["computed"].as_u64().unwrap_or(0) > 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the fan-out did not start: {job}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
