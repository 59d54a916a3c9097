//! The graph shapes users run besides fan-outs, each on a fresh host with 2
//! in-process runners: a fan-in (and how soon its reducer starts after the
//! last leaf), dense dependencies (each task on the ones before it: a
//! sequence), layers (each row on the whole row before), a two-level
//! map-reduce, a chain, and a reduce over outputs (a reducer reading every
//! leaf's 100-byte output). For each: tasks per second, the bytes the host
//! appended to its log per task and per edge (from `GET /v1/stats`), the
//! bytes the process wrote to disk per task (`/proc/PID/io`, which also
//! counts the file system's own writes for every sync) and the longest
//! group the scheduler's writer applied.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::harness::{Host, time};
use super::{report, spread};

/// Sizes of the shapes.
pub struct Plan {
    pub runs: usize,
    pub fan_in: u32,
    pub dense: (u32, u32),
    pub layers: (u32, u32),
    pub map_reduce: (u32, u32),
    pub chain: u32,
    pub reduce_outputs: u32,
}

/// One shape: the module and task that build it, and its number of edges.
struct Shape {
    name: String,
    module: &'static str,
    task: &'static str,
    input: Value,
    edges: u64,
}

fn shapes(p: &Plan) -> Vec<Shape> {
    let (dn, dw) = (u64::from(p.dense.0), u64::from(p.dense.1));
    let dense_edges = (0..dn).map(|i| i.min(dw)).sum();
    let (rows, width) = (u64::from(p.layers.0), u64::from(p.layers.1));
    let (mappers, leaves) = p.map_reduce;
    vec![
        Shape {
            name: format!("fan-out of {}", p.fan_in),
            module: "probe",
            task: "Fanout",
            input: json!({"n": p.fan_in}),
            edges: 0,
        },
        Shape {
            name: format!("fan-in: {} leaves and a reducer depending on all", p.fan_in),
            module: "probe",
            task: "FanIn",
            input: json!({"n": p.fan_in}),
            edges: u64::from(p.fan_in),
        },
        Shape {
            name: format!("dense: {dn} tasks, each depending on the {dw} before it (a sequence)"),
            module: "probe",
            task: "Dense",
            input: json!({"n": dn, "window": dw}),
            edges: dense_edges,
        },
        Shape {
            name: format!("layers: {rows} rows of {width}, each task depending on the whole row before"),
            module: "probe",
            task: "Layers",
            input: json!({"layers": rows, "width": width}),
            edges: (rows - 1) * width * width,
        },
        Shape {
            name: format!(
                "map-reduce: {mappers} mappers of {leaves} leaves, their reducers, a final reducer"
            ),
            module: "probe",
            task: "MapReduce",
            input: json!({"mappers": mappers, "leaves": leaves}),
            edges: u64::from(mappers) * u64::from(leaves) + u64::from(mappers),
        },
        Shape {
            name: format!("chain of {}", p.chain),
            module: "probe",
            task: "Chain",
            input: json!({"n": p.chain}),
            edges: u64::from(p.chain.saturating_sub(1)),
        },
        Shape {
            name: format!(
                "reduce over outputs: {} leaves of 100 bytes, a reducer reading all",
                p.reduce_outputs
            ),
            module: "outputs",
            task: "Blobs",
            input: json!({"n": p.reduce_outputs, "bytes": 100}),
            edges: u64::from(p.reduce_outputs),
        },
    ]
}

/// What one run of a shape measured.
struct Run {
    tasks: u64,
    secs: f64,
    log_bytes: u64,
    disk_bytes: u64,
    longest_ms: f64,
    /// For a fan-in: from the last leaf's end to the reducer's start.
    reducer_start_ms: Option<f64>,
}

pub async fn all(plan: &Plan) -> anyhow::Result<()> {
    let mut fanout_log_per_task = 0.0;
    for shape in shapes(plan) {
        let mut runs = Vec::new();
        for _ in 0..plan.runs {
            runs.push(run(&shape).await?);
        }
        let per_task = |r: &Run| r.log_bytes as f64 / r.tasks as f64;
        if shape.edges == 0 {
            fanout_log_per_task = per_task(&runs[0]);
        }
        print_shape(&shape, &mut runs, fanout_log_per_task);
    }
    Ok(())
}

fn print_shape(shape: &Shape, runs: &mut [Run], baseline: f64) {
    let tasks = runs[0].tasks as f64;
    let mut rates: Vec<f64> = runs.iter().map(|r| r.tasks as f64 / r.secs).collect();
    report(&format!("{}, 2 runners", shape.name), "tasks/s", &mut rates);
    let mut per_task: Vec<f64> = runs.iter().map(|r| r.secs * 1000.0 / r.tasks as f64).collect();
    let (ms, _, _) = spread(&mut per_task);
    let r = &runs[0];
    let log = r.log_bytes as f64;
    let per_edge = if shape.edges > 0 {
        format!(", {:.0} B per edge over a fan-out's", (log - baseline * tasks) / shape.edges as f64)
    } else {
        String::new()
    };
    let mut longest: Vec<f64> = runs.iter().map(|r| r.longest_ms).collect();
    let (longest, _, max_longest) = spread(&mut longest);
    println!(
        "  {} tasks, {} edges: {ms:.4} ms/task; log {:.0} B/task{per_edge}; process disk writes {:.0} B/task; longest group {longest:.1} ms (worst run {max_longest:.1})",
        r.tasks,
        shape.edges,
        log / tasks,
        r.disk_bytes as f64 / tasks,
    );
    let mut starts: Vec<f64> = runs.iter().filter_map(|r| r.reducer_start_ms).collect();
    if !starts.is_empty() {
        report("  reducer start after the last leaf computed", "ms", &mut starts);
    }
}

async fn run(shape: &Shape) -> anyhow::Result<Run> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload(shape.module).await?;
    let (log0, disk0) = (stats(&host).await?["log_bytes"].as_u64().unwrap_or(0), disk_writes(host.pid())?);
    let started = Instant::now();
    let id = host.submit(shape.task, shape.input.clone()).await?;
    let job = wait(&host, &id).await?;
    let secs = started.elapsed().as_secs_f64();
    let (s, disk1) = (stats(&host).await?, disk_writes(host.pid())?);
    let reducer_start_ms = match shape.task {
        "FanIn" => Some(reducer_start(&host.tasks(&id).await?)?),
        _ => None,
    };
    Ok(Run {
        tasks: job["task_counts"]["total"].as_u64().unwrap_or(1),
        secs,
        log_bytes: s["log_bytes"].as_u64().unwrap_or(0) - log0,
        disk_bytes: disk1 - disk0,
        longest_ms: s["writer"]["longest_group_us"].as_u64().unwrap_or(0) as f64 / 1000.0,
        reducer_start_ms,
    })
}

async fn stats(host: &Host) -> anyhow::Result<Value> {
    Ok(host.get("/v1/stats").await?.1)
}

/// Polls the job every 2 ms until it completed.
async fn wait(host: &Host, id: &str) -> anyhow::Result<Value> {
    loop {
        let (_, job) = host.get(&format!("/v1/jobs/{id}")).await?;
        match job["state"].as_str() {
            Some("completed") => return Ok(job),
            Some("failed" | "canceled") => anyhow::bail!("job {id} ended {job}"),
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// From the last leaf's end to the reducer's start, in ms (the API's
/// timestamps have ms resolution).
fn reducer_start(tasks: &[Value]) -> anyhow::Result<f64> {
    let has_deps = |t: &&Value| t["depends_on"].as_array().is_some_and(|d| !d.is_empty());
    let reducer = tasks.iter().find(has_deps).ok_or_else(|| anyhow::anyhow!("no reducer"))?;
    let last_leaf: SystemTime = tasks[1..]
        .iter()
        .filter(|t| !has_deps(t))
        .map(|t| time(&t["finished_at"]))
        .max()
        .ok_or_else(|| anyhow::anyhow!("no leaves"))?;
    let gap = time(&reducer["started_at"]).duration_since(last_leaf).unwrap_or_default();
    Ok(gap.as_secs_f64() * 1000.0)
}

/// Bytes the process has caused to be written to storage.
fn disk_writes(pid: u32) -> anyhow::Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    let line = io
        .lines()
        .find(|l| l.starts_with("write_bytes:"))
        .ok_or_else(|| anyhow::anyhow!("no write_bytes"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}
