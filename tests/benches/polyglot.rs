//! Python and JavaScript tasks (the SDKs' `sdk-py` and `sdk-js` fixtures,
//! about 19 and 12 MB): how long an upload takes (the host compiles it),
//! the host's RSS before and after, and the cost per task of a fan-out of
//! no-op tasks, submission to completion, with 2 in-process runners; and
//! how long a new remote runner (empty cache) takes to run its first task,
//! submission to completion (it loads the host's precompiled artifact).

use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::{Host, Runner};
use super::{report, rss_bytes, wait_done};

/// How long after an upload the host's RSS is read again.
const SETTLE: Duration = Duration::from_secs(5);

/// A guest language's benchmark fixture.
pub struct Language {
    pub name: &'static str,
    /// The component (a `harness::component` name).
    pub component: &'static str,
    /// The task type that submits `n` no-op subtasks.
    pub noops: &'static str,
}

pub const PYTHON: Language = Language { name: "Python", component: "sdk-py", noops: "PyNoops@v1.0" };
pub const JAVASCRIPT: Language = Language { name: "JavaScript", component: "sdk-js", noops: "JsNoops@v1.0" };

pub async fn tasks(lang: &Language, n: u32, runs: usize) -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    let before = rss_bytes(host.pid())?;
    let start = Instant::now();
    host.upload(lang.component).await?;
    let upload = start.elapsed().as_secs_f64();
    let after = rss_bytes(host.pid())?;
    // What the upload freed on the heap is given back to the system by
    // the allocator a second or two later; the second figure is the
    // host's RSS once it settled.
    tokio::time::sleep(SETTLE).await;
    let settled = rss_bytes(host.pid())?;
    println!(
        "{} component upload ({}): {upload:.2} s; host RSS {} MiB before, {} MiB right after, {} MiB {}s later",
        lang.name,
        lang.component,
        before >> 20,
        after >> 20,
        settled >> 20,
        SETTLE.as_secs()
    );
    let mut per_task = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let id = host.submit(lang.noops, json!({"n": n})).await?;
        wait_done(&host, &id, Duration::from_millis(2)).await?;
        per_task.push(start.elapsed().as_secs_f64() * 1000.0 / f64::from(n + 1));
    }
    let label = format!("fan-out of {n} no-op {} tasks, 2 in-process runners", lang.name);
    report(&label, "ms/task", &mut per_task);
    first_remote_task(lang, runs).await
}

async fn first_remote_task(lang: &Language, runs: usize) -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    host.upload(lang.component).await?;
    let mut secs = Vec::with_capacity(runs);
    for _ in 0..runs {
        let cache = tempfile::tempdir()?;
        let _runner = Runner::start(&host, "default", cache.path(), &["--concurrency", "2"]).await?;
        let start = Instant::now();
        let id = host.submit(lang.noops, json!({"n": 0})).await?;
        wait_done(&host, &id, Duration::from_millis(2)).await?;
        secs.push(start.elapsed().as_secs_f64());
    }
    let label = format!("first {} task on a new remote runner (submit to completed)", lang.name);
    report(&label, "s", &mut secs);
    Ok(())
}
