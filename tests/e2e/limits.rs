//! Guests are bounded in bytes: what an attempt records, what a module
//! declares, what it writes, the memories it has and the host resources it
//! may ask for. Each hostile case fails with its exact message while a
//! normal job completes alongside.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Host, component};

const WAIT: Duration = Duration::from_secs(60);

/// A `/proc/<pid>/status` value in bytes (`VmRSS`, `VmHWM`).
pub fn proc_bytes(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(key)).ok_or_else(|| anyhow::anyhow!("no {key}"))?;
    let kib: u64 = line.split_whitespace().nth(1).unwrap_or("0").parse()?;
    Ok(kib << 10)
}

/// The host process's open file descriptors.
fn open_fds(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

#[tokio::test]
async fn a_huge_log_call_fails_at_the_attempts_byte_budget_and_the_host_stays_small() -> anyhow::Result<()> {
    const BUDGET: u64 = 8 << 20;
    const MEMORY: u64 = 128 << 20;
    let host = Host::start(&["--runners", "2", "--memory-limit-mib", "128", "--limit", "attempt_bytes=8MiB"])
        .await?;
    host.upload("hostile").await?;
    host.upload("fanout").await?;
    let warm = host.submit("Root", json!({"num_subtasks": 10})).await?;
    assert_eq!(host.wait(&warm, WAIT).await?["state"], "completed");
    // Peak resident memory counts from here (Linux: 5 resets VmHWM).
    std::fs::write(format!("/proc/{}/clear_refs", host.pid()), "5")?;
    let before = proc_bytes(host.pid(), "VmRSS:")?;
    let started = Instant::now();
    // 1,000 calls of 1,000 fields of 100 KB: 100 GB offered to the host.
    let bomb = host.submit("LogBomb", json!({"calls": 1000, "fields": 1000, "bytes": 100_000})).await?;
    let good = host.submit("Root", json!({"num_subtasks": 10})).await?;
    assert_eq!(
        host.failure(&bomb, WAIT).await?,
        "the attempt recorded more than 8388608 bytes (subtask inputs, logs, spans, display, progress), the limit per attempt"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "the bomb took {:?}", started.elapsed());
    assert_eq!(host.wait(&good, WAIT).await?["state"], "completed");
    let grew = proc_bytes(host.pid(), "VmHWM:")?.saturating_sub(before);
    eprintln!("the host's peak RSS grew by {} MiB", grew >> 20);
    // The guest's own memory (its 100 MB of fields) is within the memory
    // limit; what the host kept of its calls is within a few budgets.
    assert!(grew < MEMORY + 4 * BUDGET, "the host's peak RSS grew by {} MiB", grew >> 20);
    Ok(())
}

#[tokio::test]
async fn a_module_declaring_a_million_task_types_is_refused_naming_the_limit() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    let started = Instant::now();
    let bytes = std::fs::read(component("many-types"))?;
    let (status, body) = host.post_raw("/v1/modules", bytes, "application/wasm").await?;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.ends_with("it lists 1000000 task types; a module may implement at most 1000"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(30), "refused after {:?}", started.elapsed());
    let (_, types) = host.get("/v1/task-types").await?;
    assert_eq!(types.as_array().map(Vec::len), Some(0), "{types}");
    Ok(())
}

#[tokio::test]
async fn taking_over_a_task_type_of_another_module_must_be_asked_for() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    let probe = host.upload("probe").await?;
    let bytes = std::fs::read(component("impostor"))?;
    let (status, body) = host.post_raw("/v1/modules", bytes.clone(), "application/wasm").await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "task_type_taken");
    let expected = format!(
        "task type Noop@v0.0 is implemented by module {}; upload with ?replace=true to take it over, or ship a newer minor version",
        probe["digest"].as_str().unwrap_or("?")
    );
    assert_eq!(body["error"]["message"], expected.as_str());
    // Jobs still run the first module's code.
    let id = host.submit("Noop", json!({})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    let (status, body) = host.post_raw("/v1/modules?replace=true", bytes, "application/wasm").await?;
    assert_eq!(status, 201, "{body}");
    let id = host.submit("Noop", json!({})).await?;
    assert_eq!(host.failure(&id, WAIT).await?, "the impostor's Noop ran");
    Ok(())
}

#[tokio::test]
async fn a_100_mb_write_and_a_socket_flood_meet_their_limits_by_name() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2", "--memory-limit-mib", "160"]).await?;
    host.upload("hostile").await?;
    host.upload("fanout").await?;
    let fds = open_fds(host.pid())?;
    let write = host.submit("BigWrite", json!({"mib": 100})).await?;
    let sockets = host.submit("Sockets", json!({"n": 1000})).await?;
    let good = host.submit("Root", json!({"num_subtasks": 10})).await?;
    let error = host.failure(&write, WAIT).await?;
    assert!(
        error.starts_with("stdout exceeded the capture limit of 1048576 bytes (the task then failed: "),
        "{error}"
    );
    assert_eq!(host.failure(&sockets, WAIT).await?, "socket 0 refused: access-denied");
    assert!(open_fds(host.pid())? < fds + 16, "the host opened descriptors for the guest");
    assert_eq!(host.wait(&good, WAIT).await?["state"], "completed");
    Ok(())
}

#[tokio::test]
async fn the_memory_limit_holds_for_all_memories_of_an_attempt_together() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2", "--memory-limit-mib", "32"]).await?;
    host.upload("many-memories").await?;
    host.upload("fanout").await?;
    let memories = host.submit("ManyMemories", json!({})).await?;
    let good = host.submit("Root", json!({"num_subtasks": 10})).await?;
    // Each of its three memories stays under 32 MiB; together they do not.
    assert_eq!(
        host.failure(&memories, WAIT).await?,
        "memory limit of 32 MiB exceeded (the task asked for 49 MiB in all)"
    );
    assert_eq!(host.wait(&good, WAIT).await?["state"], "completed");
    // A component with more memories than a sandbox slot holds is refused.
    let (status, body) =
        host.post_raw("/v1/modules", std::fs::read(component("crowded"))?, "application/wasm").await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "too_large_for_sandbox");
    assert_eq!(
        body["error"]["message"],
        "the component does not fit one sandbox slot: The component transitively contains 18 Wasm linear memories, which exceeds the configured maximum of 16 in the pooling allocator"
    );
    Ok(())
}
