//! Python tasks. A bindings-only component (componentize-py, built by
//! `tests/python.rs`) is contained like any other: its infinite loop times
//! out, its memory bomb meets the memory limit, its uncaught exception is
//! the task's error, and 32 runners run its tasks at once without running
//! out of sandbox slots. Components written with the Python SDK
//! (`guest-sdk-python`, built by its own build command) use subtasks with
//! dependencies, outputs, the job cache, logs with fields, spans and
//! progress, fail readably, and tell the movie story; the SDK's and the
//! example's native unit tests pass.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Host, component, until};
use crate::limits::proc_bytes;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn python_tasks_are_contained_and_run_on_32_runners() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "32", "--task-timeout", "3s", "--memory-limit-mib", "64"]).await?;
    host.upload("hostile-py").await?;
    host.upload("fanout").await?;
    let spin = host.submit("PySpin", json!({})).await?;
    let bomb = host.submit("PyMemoryBomb", json!({})).await?;
    let raise = host.submit("PyRaise", json!({})).await?;
    let mut noops = Vec::new();
    for _ in 0..64 {
        noops.push(host.submit("PyNoop", json!({})).await?);
    }
    let good = host.submit("Root", json!({"num_subtasks": 10})).await?;
    assert_eq!(host.failure(&spin, WAIT).await?, "timed out after 3s");
    let bomb = host.failure(&bomb, WAIT).await?;
    assert!(
        bomb.starts_with("memory limit of 64 MiB exceeded (the task asked for ")
            && bomb.ends_with(" MiB in all)"),
        "{bomb}"
    );
    let raised = host.failure(&raise, WAIT).await?;
    assert_eq!(raised.lines().next(), Some("ValueError: the data source refused the request"), "{raised}");
    for id in &noops {
        assert_eq!(host.wait(id, WAIT).await?["state"], "completed");
        let task = &host.tasks(id).await?[0];
        assert_eq!(task["attempts"], 1, "a Python task used a retry: {task}");
    }
    assert_eq!(host.wait(&good, WAIT).await?["state"], "completed");
    Ok(())
}

#[tokio::test]
async fn python_sdk_tasks_pass_outputs_use_the_cache_and_fail_readably() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    // The upload's compile runs in a child process: the host's own peak
    // memory grows by the module it keeps, not by the compiler's (measured
    // in a debug build: +230 MiB, against +530 compiling in-process).
    let before = proc_bytes(host.pid(), "VmRSS:")?;
    std::fs::write(format!("/proc/{}/clear_refs", host.pid()), "5")?;
    host.upload("sdk-py").await?;
    let peak = proc_bytes(host.pid(), "VmHWM:")?.saturating_sub(before) >> 20;
    println!("host peak RSS during a Python upload: +{peak} MiB");
    assert!(peak < 350, "the host's RSS grew by {peak} MiB while a Python component was compiled");
    fan_of_squares(&host, "PyFan").await?;

    let failed = host.failure(&host.submit("PyKeyError@v1.0", json!({})).await?, WAIT).await?;
    let lines: Vec<&str> = failed.lines().collect();
    assert_eq!(lines[0], "KeyError('Title')", "{failed}");
    assert!(lines[1].starts_with("  at tasks.py:") && lines[1].ends_with(" in execute"), "{failed}");
    let bad = host.failure(&host.submit("PyFan@v1.0", json!({"n": "five"})).await?, WAIT).await?;
    assert_eq!(bad, "PyFan.n: expected int, got a string");
    spared_by_an_optional_subtask(&host, "PyCareful", "PyRefuse").await
}

/// Runs `careful`, whose optional subtask `refuse` fails permanently:
/// the job completes, `refuse` ran once (its retries unused), its
/// dependent ran.
pub async fn spared_by_an_optional_subtask(host: &Host, careful: &str, refuse: &str) -> anyhow::Result<()> {
    let id = host.submit(&format!("{careful}@v1.0"), json!({})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed", "{job}");
    let tasks = host.tasks(&id).await?;
    let refused = crate::harness::of_type(&tasks, refuse)[0];
    let answer = (refused["state"].as_str(), refused["attempts"].as_u64(), refused["error"].as_str());
    assert_eq!(answer, (Some("failed_optional"), Some(1), Some("refused for good")), "{refused}");
    assert_eq!(refused["backoff"]["initial_ms"], 50, "{refused}");
    assert_eq!(job["task_counts"]["computed"], 2, "the root and the dependent: {job}");
    Ok(())
}

#[tokio::test]
async fn python_movies_fail_then_a_fixed_version_and_a_retry_complete_the_job() -> anyhow::Result<()> {
    let error = crate::failures::movies_story("python-movies-v1.0", "python-movies-v1.1").await?;
    let frame = error.lines().nth(1).unwrap_or_default();
    assert!(frame.starts_with("  at movies.py:") && frame.ends_with(" in execute"), "{error}");
    Ok(())
}

#[test]
fn the_python_sdk_and_example_unit_tests_pass_natively() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for (dir, path) in [
        ("guest-sdk-python/tests", "guest-sdk-python/src"),
        ("examples/python-movies", "guest-sdk-python/src:examples/python-movies:examples/python-movies/v1.1"),
    ] {
        let out = Command::new(env!("SDK_PYTHON"))
            .args(["-m", "unittest", "discover", "-s", dir, "-p", "test_*.py"])
            .current_dir(root)
            .env("PYTHONPATH", path)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("python runs");
        let report = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && report.contains("\nOK"), "{dir}: {report}");
    }
}

/// The SDK fixtures' `{fan}(n: 5)` (`PyFan`, `JsFan`): 5 squares and a sum
/// depending on them; the job's output is the sum's (30), with the squares'
/// progress, display, logs with fields, spans, and the total in the cache.
pub async fn fan_of_squares(host: &Host, fan: &str) -> anyhow::Result<()> {
    let id = host.submit(&format!("{fan}@v1.0"), json!({"n": 5})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!((&job["state"], &job["output"]), (&json!("completed"), &json!(30)), "{job}");
    assert_eq!(job["progress"]["squares"], json!({"total": 5, "done": 5}));
    let tasks = host.tasks(&id).await?;
    assert_eq!(tasks.len(), 7);
    assert!(tasks.iter().any(|t| t["display"] == format!("{fan}(5)")), "{tasks:?}");
    let logs = host.logs(&id).await?;
    let squared: Vec<&Value> =
        logs.as_array().unwrap().iter().filter(|l| l["message"] == "squared").collect();
    assert_eq!(squared.len(), 5);
    assert!(squared.iter().any(|l| l["fields"] == json!({"i": "4", "square": "16"})), "{squared:?}");
    let (_, trace) = host.get(&format!("/v1/jobs/{id}/spans")).await?;
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.iter().filter(|s| s["name"] == "square").count(), 5, "{spans:?}");
    let four = json!({"square.of": "4", "square": "16"});
    assert!(spans.iter().any(|s| s["attributes"] == four), "an attribute set after opening: {spans:?}");
    let value = reqwest::get(format!("{}/v1/jobs/{id}/cache/value?key=sums%2Ftotal", host.base)).await?;
    assert_eq!(value.text().await?, "30");
    Ok(())
}

/// Where background upload `id` ended (polled until it is no longer
/// compiling).
async fn upload_end(host: &Host, id: &str) -> anyhow::Result<Value> {
    let mut last = Value::Null;
    until("the upload ends", WAIT, async || {
        last = host.get(&format!("/v1/modules/uploads/{id}")).await?.1;
        Ok(last["state"] != "compiling")
    })
    .await?;
    Ok(last)
}

#[tokio::test]
async fn a_large_upload_can_answer_at_once_and_be_followed() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    let bytes = std::fs::read(component("sdk-py"))?;
    let (status, started) =
        host.post_raw("/v1/modules?background=true", bytes.clone(), "application/wasm").await?;
    assert_eq!((status.as_u16(), started["state"].as_str()), (202, Some("compiling")), "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let ended = upload_end(&host, &id).await?;
    assert_eq!(
        (ended["state"].as_str(), ended["status"].as_u64()),
        (Some("registered"), Some(201)),
        "{ended}"
    );
    assert_eq!(ended["module"]["size"], bytes.len());
    let job = host.submit("PyNoops@v1.0", json!({"n": 2})).await?;
    assert_eq!(host.wait(&job, WAIT).await?["state"], "completed");

    // The same bytes again: registered before (200); garbage: refused as
    // the synchronous upload refuses it.
    let (_, again) = host.post_raw("/v1/modules?background=true", bytes, "application/wasm").await?;
    let again = upload_end(&host, again["id"].as_str().unwrap()).await?;
    assert_eq!(again["status"], 200, "{again}");
    let garbage = b"\0asm\x0d\0\x01\0 not really".to_vec();
    let (_, bad) = host.post_raw("/v1/modules?background=true", garbage, "application/wasm").await?;
    let bad = upload_end(&host, bad["id"].as_str().unwrap()).await?;
    assert_eq!((bad["state"].as_str(), bad["status"].as_u64()), (Some("refused"), Some(422)), "{bad}");
    assert_eq!(bad["error"]["code"], "not_a_component", "{bad}");
    let (status, _) = host.get("/v1/modules/uploads/01a23648-8f92-740a-b153-0ed8cf48725a").await?;
    assert_eq!(status, 404);
    let (status, body) = host.get("/v1/modules/uploads/nope").await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_id")));
    Ok(())
}
