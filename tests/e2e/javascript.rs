//! JavaScript tasks written with the JavaScript SDK (`guest-sdk-js`, built
//! by its own `sandflow-js build`): subtasks with dependencies, outputs, the
//! job cache, logs with fields, spans and progress; a thrown error is the
//! task's readable failure naming the task's own file and line; an infinite
//! loop times out and a memory bomb meets the limit; the fan-out example
//! runs; the SDK's and the example's native unit tests pass.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn javascript_sdk_tasks_pass_outputs_use_the_cache_and_fail_readably() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("sdk-js").await?;
    crate::python::fan_of_squares(&host, "JsFan").await?;

    let failed = host.failure(&host.submit("JsTypeError@v1.0", json!({})).await?, WAIT).await?;
    let lines: Vec<&str> = failed.lines().collect();
    assert!(lines[0].starts_with("TypeError: ") && lines[0].contains("details"), "{failed}");
    assert!(lines[1].starts_with("  at tasks.js:") && lines[1].ends_with(" in execute"), "{failed}");
    let bad = host.failure(&host.submit("JsFan@v1.0", json!({"n": "five"})).await?, WAIT).await?;
    assert_eq!(bad, "JsFan.n: expected an integer, got a string");
    crate::python::spared_by_an_optional_subtask(&host, "JsCareful", "JsRefuse").await
}

#[tokio::test]
async fn javascript_tasks_are_contained() -> anyhow::Result<()> {
    let host = Host::start(&["--task-timeout", "3s", "--memory-limit-mib", "64"]).await?;
    host.upload("sdk-js").await?;
    let spin = host.submit("JsSpin@v1.0", json!({})).await?;
    let bomb = host.submit("JsMemoryBomb@v1.0", json!({})).await?;
    assert_eq!(host.failure(&spin, WAIT).await?, "timed out after 3s");
    let bomb = host.failure(&bomb, WAIT).await?;
    assert!(bomb.starts_with("memory limit of 64 MiB exceeded"), "{bomb}");
    Ok(())
}

#[tokio::test]
async fn the_javascript_fanout_example_reports_over_its_items() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("js-fanout").await?;
    let id = host.submit("Fanout@v1.0", json!({"items": ["alpha", "beta", "gamma", "epsilon"]})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["output"], json!({"items": 4, "letters": 21, "longest": "epsilon"}));
    assert_eq!(job["progress"]["items"], json!({"total": 4, "done": 4}));
    let empty = host.failure(&host.submit("Fanout@v1.0", json!({"items": []})).await?, WAIT).await?;
    assert_eq!(empty, "nothing to measure: items is empty");
    Ok(())
}

#[test]
fn the_javascript_sdk_and_example_unit_tests_pass_natively() {
    for dir in [concat!(env!("SDK_JS"), "/test"), env!("EXAMPLE_JS_FANOUT")] {
        let out = Command::new("node").args(["--test", dir]).output().expect("node runs");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && report.contains("# fail 0"), "{dir}: {report}");
    }
}
