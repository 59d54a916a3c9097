//! The benchmark suite: starts real hosts on temporary data directories, drives
//! them with real components, and prints one line per figure (median and
//! spread over several runs). `--small` runs every figure at a small size, as
//! CI does to check that the suite works.
//!
//! Run: `cargo bench -p sandflow-tests --bench suite` (add `-- --small`, or
//! `-- --only sandbox|handoff|fanout|fairness|shapes|cache|python|javascript|remote|submit|storage` for one
//! figure). With `SANDFLOW_TEST_STORE=postgres` every host keeps its state
//! in a private PostgreSQL server (`SANDFLOW_TEST_POSTGRES_DURABLE=1`: with
//! `fsync`, as a production database runs).

mod cache;
mod fairness;
#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;
mod polyglot;
mod shapes;

use std::time::{Duration, Instant};

use anyhow::Context;
use harness::{Host, component};
use serde_json::json;

/// Sizes of one suite run.
struct Sizes {
    runs: usize,
    fanouts: &'static [u32],
    /// Graph shapes: fan-in leaves, dense (n, window), layers (rows,
    /// width), map-reduce (mappers, leaves), chain length.
    fan_in: u32,
    dense: (u32, u32),
    layers: (u32, u32),
    map_reduce: (u32, u32),
    chain: u32,
    /// Leaves whose 100-byte outputs one reducer reads.
    reduce_outputs: u32,
    /// 1 MiB values put into, and read from, a job cache.
    cache_values: u32,
    /// No-op Python (and JavaScript) tasks of one fan-out.
    guest_tasks: u32,
    submits: usize,
    sustained_rounds: usize,
    sandbox_calls: usize,
    stored_jobs: u32,
    stored_per_job: u32,
}

const FULL: Sizes = Sizes {
    runs: 5,
    fanouts: &[10_000, 100_000],
    // With the reducer, 100,000 subtasks: the per-attempt limit.
    fan_in: 99_999,
    dense: (2000, 100),
    layers: (20, 100),
    map_reduce: (100, 1000),
    chain: 10_000,
    reduce_outputs: 10_000,
    cache_values: 256,
    guest_tasks: 2000,
    submits: 12_800,
    sustained_rounds: 30,
    sandbox_calls: 20_000,
    stored_jobs: 10,
    stored_per_job: 100_000,
};
const SMALL: Sizes = Sizes {
    runs: 2,
    fanouts: &[1000],
    fan_in: 1000,
    dense: (100, 10),
    layers: (4, 10),
    map_reduce: (5, 50),
    chain: 100,
    reduce_outputs: 200,
    cache_values: 8,
    guest_tasks: 50,
    submits: 200,
    sustained_rounds: 2,
    sandbox_calls: 500,
    stored_jobs: 2,
    stored_per_job: 2000,
};

/// Median, min and max of `values`.
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.total_cmp(b));
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

fn report(name: &str, unit: &str, values: &mut [f64]) {
    let (median, min, max) = spread(values);
    println!("{name}: median {median:.3} {unit} (min {min:.3}, max {max:.3}, {} runs)", values.len());
}

async fn wait_done(host: &Host, id: &str, poll: Duration) -> anyhow::Result<()> {
    loop {
        let (_, job) = host.get(&format!("/v1/jobs/{id}")).await?;
        match job["state"].as_str() {
            Some("completed") => return Ok(()),
            Some("failed" | "canceled") => anyhow::bail!("job {id} ended {job}"),
            _ => tokio::time::sleep(poll).await,
        }
    }
}

async fn handoff(sizes: &Sizes) -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("probe").await?;
    let mut per_task = Vec::new();
    for _ in 0..sizes.runs {
        let start = Instant::now();
        let id = host.submit("Chain", json!({"n": 40})).await?;
        wait_done(&host, &id, Duration::from_micros(200)).await?;
        per_task.push(start.elapsed().as_secs_f64() * 1000.0 / 41.0);
    }
    report(
        "sequential hand-off, chain of 40 no-op tasks (submit to completed / 41 tasks)",
        "ms/task",
        &mut per_task,
    );
    Ok(())
}

/// Tasks per second of `runs` fan-outs of `n` no-op subtasks, submission to
/// completion.
async fn fanout_rates(host: &Host, n: u32, runs: usize) -> anyhow::Result<Vec<f64>> {
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let id = host.submit("Fanout", json!({"n": n})).await?;
        wait_done(host, &id, Duration::from_millis(2)).await?;
        rates.push(f64::from(n + 1) / start.elapsed().as_secs_f64());
    }
    Ok(rates)
}

async fn fanout(sizes: &Sizes) -> anyhow::Result<()> {
    for runners in ["2", "32"] {
        fanout_with(sizes, runners).await?;
    }
    Ok(())
}

async fn fanout_with(sizes: &Sizes, runners: &str) -> anyhow::Result<()> {
    let host = Host::start(&["--runners", runners]).await?;
    host.upload("probe").await?;
    for &n in sizes.fanouts {
        let runs = if n >= 100_000 { sizes.runs.min(3) } else { sizes.runs };
        let mut rates = fanout_rates(&host, n, runs).await?;
        report(
            &format!("fan-out of {n} no-op subtasks, {runners} in-process runners (submit to completed)"),
            "tasks/s",
            &mut rates,
        );
    }
    Ok(())
}

/// Fan-out throughput with 1, 2 and 4 remote runner processes (2 slots
/// each) of one host that runs no task itself.
async fn remote_fanout(sizes: &Sizes) -> anyhow::Result<()> {
    let n = sizes.fanouts[0];
    for processes in [1, 2, 4] {
        let host = Host::start(&["--runners", "0"]).await?;
        host.upload("probe").await?;
        let cache = tempfile::tempdir()?;
        let mut runners = Vec::new();
        for i in 0..processes {
            let dir = cache.path().join(i.to_string());
            runners.push(harness::Runner::start(&host, "default", &dir, &["--concurrency", "2"]).await?);
        }
        let mut rates = fanout_rates(&host, n, sizes.runs).await?;
        report(
            &format!("fan-out of {n} no-op subtasks, {processes} remote runner process(es) x 2 slots"),
            "tasks/s",
            &mut rates,
        );
    }
    Ok(())
}

async fn submit_latency(sizes: &Sizes) -> anyhow::Result<()> {
    let host = std::sync::Arc::new(Host::start(&["--runners", "2"]).await?);
    host.upload("probe").await?;
    host.create_cluster("bench-idle").await?;
    for clients in [1usize, 64] {
        let per_run = (sizes.submits / clients).max(1) * clients;
        let name = format!("submit latency, {clients} concurrent client(s), {per_run} requests per run");
        submit_rounds(&host, &name, clients, sizes.runs, sizes.submits).await?;
    }
    // Without a pause, until the store's background checkpoint has run at
    // least once (it starts when the in-memory table passes 64 MiB, about
    // 200,000 submissions).
    let name = format!(
        "submit latency, 64 concurrent clients, sustained: {} rounds of {} requests, through checkpoints",
        sizes.sustained_rounds,
        (sizes.submits / 64).max(1) * 64
    );
    let all = submit_rounds(&host, &name, 64, sizes.sustained_rounds, sizes.submits).await?;
    println!(
        "{name}: p50 {:.3} ms, p99 {:.3} ms of all {} requests",
        pct(&all, 0.5),
        pct(&all, 0.99),
        all.len()
    );
    Ok(())
}

/// The `p` quantile of sorted `values`.
fn pct(values: &[f64], p: f64) -> f64 {
    values[((values.len() as f64 * p) as usize).min(values.len() - 1)]
}

/// `runs` rounds of `total` submissions from `clients` clients; reports the
/// spread of each round's p50, p99 and max, and answers every latency,
/// sorted.
async fn submit_rounds(
    host: &std::sync::Arc<Host>,
    name: &str,
    clients: usize,
    runs: usize,
    total: usize,
) -> anyhow::Result<Vec<f64>> {
    let (mut p50s, mut p99s, mut maxes, mut every) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut all = submit_round(host, clients, total).await?;
        all.sort_by(|a, b| a.total_cmp(b));
        p50s.push(pct(&all, 0.50));
        p99s.push(pct(&all, 0.99));
        maxes.push(all[all.len() - 1]);
        every.extend(all);
    }
    report(&format!("{name}, p50"), "ms", &mut p50s);
    report(&format!("{name}, p99"), "ms", &mut p99s);
    report(&format!("{name}, max"), "ms", &mut maxes);
    every.sort_by(|a, b| a.total_cmp(b));
    Ok(every)
}

/// `total` submissions from `clients` concurrent clients, each on a
/// connection opened beforehand; answers every latency, in ms.
async fn submit_round(host: &std::sync::Arc<Host>, clients: usize, total: usize) -> anyhow::Result<Vec<f64>> {
    let per_client = (total / clients).max(1);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            let body = json!({"name": "latency", "task": "Noop", "input": {}, "cluster": "bench-idle"});
            // Opening the connection is not part of a submission's latency.
            host.get("/healthz").await?;
            for _ in 0..per_client {
                let start = Instant::now();
                let (status, _) = host.post("/v1/jobs", &body).await?;
                anyhow::ensure!(status == 201, "submit answered {status}");
                latencies.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// Runs like an in-process runner: one thread with its own executor.
fn sandbox_overhead(sizes: &Sizes) -> anyhow::Result<()> {
    let (runs, calls) = (sizes.runs, sizes.sandbox_calls);
    let mut micros = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(sandbox_runs(runs, calls))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the sandbox thread panicked"))??;
    report(
        "sandbox overhead: fresh store + instantiate + no-op execute + teardown, one thread",
        "µs/task",
        &mut micros,
    );
    Ok(())
}

async fn sandbox_runs(runs: usize, calls: usize) -> anyhow::Result<Vec<f64>> {
    use sandflow_host::model::{JobId, TaskId, TaskType};
    use sandflow_host::sandbox::{Execution, Limits, Sandbox, Settings};
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        cache_dir: dir.path().to_path_buf(),
        limits: Limits::default(),
        max_instances: 16,
        allow_http: Default::default(),
        max_task_types: sandflow_host::sandbox::MAX_TASK_TYPES,
        compile_with: None,
    };
    let sandbox = Sandbox::new(settings)?;
    let inspected = sandbox.inspect(std::fs::read(component("probe"))?.into()).await?;
    let prepared = sandbox.prepare(&inspected.digest, async { None }, async { None }).await?;
    let check: sandflow_host::sandbox::SubtaskCheck = std::sync::Arc::new(|_, _| Ok(()));
    let mut micros = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        for _ in 0..calls {
            let exec = Execution {
                job: JobId::new(),
                task: TaskId::new(),
                attempt: 1,
                task_type: TaskType::parse("Noop")?,
                input: "{}".into(),
                limits: Default::default(),
                check: check.clone(),
                dependencies: Default::default(),
                cache: None,
                lease: 0,
                secrets: None,
            };
            let result = sandbox.execute(&prepared, exec).await;
            anyhow::ensure!(result.outcome.is_ok(), "noop failed: {:?}", result.outcome);
        }
        micros.push(start.elapsed().as_secs_f64() * 1e6 / calls as f64);
    }
    Ok(micros)
}

fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    let kib: u64 = line.split_whitespace().nth(1).context("VmRSS value")?.parse()?;
    Ok(kib * 1024)
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Stops `host` (`clean`: SIGTERM, else SIGKILL) and starts it again on
/// `dir`, `runs` times; answers each start's time to serving, in ms.
async fn restart_times(
    host: &mut Host,
    dir: &std::path::Path,
    runs: usize,
    clean: bool,
) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::new();
    for _ in 0..runs {
        if clean {
            host.stop()?;
        } else {
            host.kill();
        }
        let start = Instant::now();
        *host = Host::start_in(dir, &["--runners", "2"]).await?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
}

async fn storage_and_restart(sizes: &Sizes) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut host = Host::start_in(dir.path(), &["--runners", "2"]).await?;
    host.upload("probe").await?;
    host.create_cluster("bench-idle").await?;
    let baseline = rss_bytes(host.pid())?;
    let mut ids = Vec::new();
    for _ in 0..sizes.stored_jobs {
        let id = host.submit("Fanout", json!({"n": sizes.stored_per_job, "cluster": "bench-idle"})).await?;
        ids.push(id);
    }
    for id in &ids {
        loop {
            let (_, job) = host.get(&format!("/v1/jobs/{id}")).await?;
            if job["task_counts"]["computed"] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let tasks = u64::from(sizes.stored_jobs) * u64::from(sizes.stored_per_job + 1);
    let rss = rss_bytes(host.pid())?;
    let disk = dir_size(dir.path());
    println!(
        "storage with {tasks} tasks ({} queued): host RSS {} MiB ({} MiB over an idle host, {:.0} B per queued task), data dir {} MiB ({:.0} B per task)",
        tasks - u64::from(sizes.stored_jobs),
        rss >> 20,
        rss.saturating_sub(baseline) >> 20,
        rss.saturating_sub(baseline) as f64 / (tasks - u64::from(sizes.stored_jobs)) as f64,
        disk >> 20,
        disk as f64 / tasks as f64
    );
    // Killed right after the writes: the start replays the write-ahead log.
    let mut restarts = restart_times(&mut host, dir.path(), sizes.runs.min(3), false).await?;
    report(
        &format!("restart after kill -9 with {tasks} tasks stored (start to serving)"),
        "ms",
        &mut restarts,
    );
    // Stopped cleanly (SIGTERM): the last checkpoint leaves no log.
    let mut restarts = restart_times(&mut host, dir.path(), sizes.runs.min(3), true).await?;
    report(
        &format!("restart after a clean stop with {tasks} tasks stored (start to serving)"),
        "ms",
        &mut restarts,
    );
    println!("host RSS after restart: {} MiB", rss_bytes(host.pid())? >> 20);
    let disk = dir_size(dir.path());
    println!(
        "data dir after the clean stops: {} MiB ({:.0} B per task)",
        disk >> 20,
        disk as f64 / tasks as f64
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let small = std::env::args().any(|a| a == "--small");
    let sizes = if small { &SMALL } else { &FULL };
    let commit = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output();
    let commit = commit.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let store = if harness::postgres_store() { "PostgreSQL (SANDFLOW_TEST_STORE=postgres)" } else { "local" };
    println!(
        "sandflow benchmark suite ({}), commit {commit}, {cores} cores, {store} store",
        if small { "small" } else { "full" }
    );
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wanted("sandbox") {
        sandbox_overhead(sizes)?;
    }
    if wanted("handoff") {
        handoff(sizes).await?;
    }
    if wanted("fanout") {
        fanout(sizes).await?;
    }
    if wanted("fairness") {
        let n = sizes.fanouts[sizes.fanouts.len() - 1];
        fairness::behind_a_fan_out(n, if small { 5 } else { 200 }).await?;
    }
    if wanted("shapes") {
        shapes::all(&shapes::Plan {
            runs: sizes.runs.min(3),
            fan_in: sizes.fan_in,
            dense: sizes.dense,
            layers: sizes.layers,
            map_reduce: sizes.map_reduce,
            chain: sizes.chain,
            reduce_outputs: sizes.reduce_outputs,
        })
        .await?;
    }
    if wanted("cache") {
        cache::throughput(sizes.cache_values, sizes.runs).await?;
    }
    if wanted("python") {
        polyglot::tasks(&polyglot::PYTHON, sizes.guest_tasks, sizes.runs).await?;
    }
    if wanted("javascript") {
        polyglot::tasks(&polyglot::JAVASCRIPT, sizes.guest_tasks, sizes.runs).await?;
    }
    if wanted("remote") {
        remote_fanout(sizes).await?;
    }
    if wanted("submit") {
        submit_latency(sizes).await?;
    }
    if wanted("storage") {
        storage_and_restart(sizes).await?;
    }
    Ok(())
}
