//! Python tasks (the SDK's `sdk-py` fixture, about 19 MB): how long its
//! upload takes (the host compiles it), the host's RSS before and after,
//! and the cost per task of a fan-out of no-op Python tasks, submission to
//! completion, with 2 in-process runners; and how long a new remote
//! runner (empty cache) takes to run its first Python task, submission to
//! completion (it loads the host's precompiled artifact).

use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::{Host, Runner};
use super::{report, rss_bytes, wait_done};

pub async fn tasks(n: u32, runs: usize) -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    let before = rss_bytes(host.pid())?;
    let start = Instant::now();
    host.upload("sdk-py").await?;
    let upload = start.elapsed().as_secs_f64();
    let after = rss_bytes(host.pid())?;
    println!(
        "Python component upload (sdk-py): {upload:.2} s; host RSS {} MiB before, {} MiB after",
        before >> 20,
        after >> 20
    );
    let mut per_task = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let id = host.submit("PyNoops@v1.0", json!({"n": n})).await?;
        wait_done(&host, &id, Duration::from_millis(2)).await?;
        per_task.push(start.elapsed().as_secs_f64() * 1000.0 / f64::from(n + 1));
    }
    report(&format!("fan-out of {n} no-op Python tasks, 2 in-process runners"), "ms/task", &mut per_task);
    first_remote_task(runs).await
}

async fn first_remote_task(runs: usize) -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    host.upload("sdk-py").await?;
    let mut secs = Vec::with_capacity(runs);
    for _ in 0..runs {
        let cache = tempfile::tempdir()?;
        let _runner = Runner::start(&host, "default", cache.path(), &["--concurrency", "2"]).await?;
        let start = Instant::now();
        let id = host.submit("PyNoops@v1.0", json!({"n": 0})).await?;
        wait_done(&host, &id, Duration::from_millis(2)).await?;
        secs.push(start.elapsed().as_secs_f64());
    }
    report("first Python task on a new remote runner (submit to completed)", "s", &mut secs);
    Ok(())
}
