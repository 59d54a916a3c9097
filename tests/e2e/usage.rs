//! What attempts use, measured by the sandbox: a busy task's CPU time and
//! peak memory, a sleeping one's (no CPU to speak of), and a job's
//! execution stats, through the API, the spans and the CLI.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Host, of_type};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn attempts_report_their_cpu_time_and_peak_memory_and_jobs_their_stats() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let busy = host.submit("Burn", json!({"ms": 300, "mib": 24})).await?;
    let idle = host.submit("Sleep", json!({"ms": 300, "children": 0})).await?;
    for id in [&busy, &idle] {
        assert_eq!(host.wait(id, WAIT).await?["state"], "completed");
    }
    let burn = host.tasks(&busy).await?.remove(0);
    let usage = &burn["usage"];
    let cpu = usage["cpu_us"].as_u64().unwrap();
    // Busy for 300 ms of wall time: some CPU (however loaded the machine),
    // never more than the attempt's own wall time.
    let ran_ms = crate::harness::time(&burn["finished_at"])
        .duration_since(crate::harness::time(&burn["started_at"]))?;
    assert!(
        cpu >= 10_000 && cpu <= ran_ms.as_micros() as u64 + 50_000,
        "300 ms busy, ran {ran_ms:?}: {usage}"
    );
    assert!(usage["peak_memory_bytes"].as_u64().unwrap() >= 24 << 20, "24 MiB held: {usage}");
    let sleep = host.tasks(&idle).await?.remove(0);
    let slept = sleep["usage"]["cpu_us"].as_u64().unwrap();
    assert!(slept < 100_000 && slept * 10 < cpu, "a 300 ms sleep costs next to no CPU: {}", sleep["usage"]);

    let job = host.get(&format!("/v1/jobs/{busy}")).await?.1;
    let stats = &job["stats"];
    assert!(stats["compute_ms"].as_u64().unwrap() >= 300, "{stats}");
    assert_eq!(stats["cpu_us"].as_u64(), Some(cpu), "one attempt: the job's CPU is the task's");
    assert!(stats["elapsed_ms"].as_u64().unwrap() >= stats["compute_ms"].as_u64().unwrap(), "{stats}");
    assert!(stats["first_start_at"].is_string() && stats["last_stop_at"].is_string(), "{stats}");
    assert!(stats["parallelism"].as_f64().unwrap() <= 1.0, "{stats}");

    let spans = host.get(&format!("/v1/jobs/{busy}/spans")).await?.1;
    let attempt =
        spans["spans"].as_array().unwrap().iter().find(|s| s["name"] == "attempt 1").unwrap().clone();
    assert_eq!(attempt["attributes"]["cpu_us"], cpu.to_string(), "{attempt}");

    let shown = host.cli(&["job", "show", &busy])?;
    assert!(shown.contains("compute ") && shown.contains(" cpu "), "{shown}");
    let tree = host.cli(&["job", "tasks", &busy])?;
    assert!(tree.contains("  cpu ") && tree.contains(" MiB"), "{tree}");
    assert!(!of_type(&host.tasks(&busy).await?, "Burn").is_empty());
    Ok(())
}
