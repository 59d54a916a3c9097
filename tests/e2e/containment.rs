//! Guests are contained on every runner, in-process and remote alike:
//! deadlines and forced cancels hold while a guest waits in a host call,
//! and a remote runner's guest gets the answers an in-process one gets.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Host, Runner, of_type, until};

const WAIT: Duration = Duration::from_secs(60);

/// Where a job runs: the host's own runners, or a runner process (with
/// its cache directory, removed with it).
enum On {
    Host(Host),
    Remote(Host, Runner, #[allow(dead_code, reason = "held until the runner is dropped")] tempfile::TempDir),
}

impl On {
    fn host(&self) -> &Host {
        match self {
            On::Host(h) | On::Remote(h, _, _) => h,
        }
    }

    /// A host with `args` for its runners, or a runner process with them.
    async fn start(remote: bool, args: &[&str]) -> anyhow::Result<On> {
        if !remote {
            let mut all = vec!["--runners", "2"];
            all.extend_from_slice(args);
            let host = Host::start(&all).await?;
            host.upload("probe").await?;
            return Ok(On::Host(host));
        }
        let host = Host::start(&["--runners", "0"]).await?;
        host.upload("probe").await?;
        let cache = tempfile::tempdir()?;
        let mut all = vec!["--concurrency", "2"];
        all.extend_from_slice(args);
        let runner = Runner::start(&host, "default", &cache.path().join("r"), &all).await?;
        Ok(On::Remote(host, runner, cache))
    }
}

async fn first_task(host: &Host, id: &str) -> anyhow::Result<Value> {
    Ok(host.tasks(id).await?.remove(0))
}

#[tokio::test]
async fn a_guest_asleep_in_a_host_call_meets_its_deadline_on_every_runner() -> anyhow::Result<()> {
    for remote in [false, true] {
        let on = On::start(remote, &["--task-timeout", "1s"]).await?;
        let host = on.host();
        let started = Instant::now();
        let id = host.submit("Sleep", json!({"ms": 60_000, "children": 0})).await?;
        assert_eq!(host.wait(&id, WAIT).await?["state"], "failed");
        let took = started.elapsed();
        let task = first_task(host, &id).await?;
        assert_eq!(task["error"], "timed out after 1s", "remote: {remote}");
        assert!(
            took < Duration::from_secs(4),
            "remote {remote}: a 1 s deadline ended the attempt after {took:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_forced_cancel_ends_a_guest_asleep_in_a_host_call_within_a_second_on_every_runner()
-> anyhow::Result<()> {
    for remote in [false, true] {
        let on = On::start(remote, &["--task-timeout", "10m"]).await?;
        let host = on.host();
        let body = json!({"name": "sleep", "task": "Sleep", "input": {"ms": 600_000, "children": 0}});
        let (_, job) = host.post("/v1/jobs", &body).await?;
        let id = job["id"].as_str().unwrap().to_owned();
        until("the sleep runs", WAIT, async || Ok(first_task(host, &id).await?["state"] == "running"))
            .await?;
        if let On::Remote(_, runner, _) = &on {
            until("the runner has it", WAIT, async || {
                Ok(runner.log().contains("loaded the host's precompiled artifact"))
            })
            .await?;
        }
        let (status, body) = host.post(&format!("/v1/jobs/{id}/cancel?force=true"), &json!(null)).await?;
        assert_eq!(status, 200, "{body}");
        let canceled = Instant::now();
        until("the attempt ends", WAIT, async || Ok(first_task(host, &id).await?["state"] == "failed"))
            .await?;
        let took = canceled.elapsed();
        assert!(took < Duration::from_secs(1), "remote {remote}: the forced cancel took {took:?}");
        assert_eq!(first_task(host, &id).await?["error"], "canceled");
        // The runner's slot is free again.
        let noop = host.submit("Noop", json!({})).await?;
        assert_eq!(host.wait(&noop, WAIT).await?["state"], "completed", "remote: {remote}");
    }
    Ok(())
}

#[tokio::test]
async fn a_remote_runners_guest_gets_the_answers_an_in_process_guest_gets() -> anyhow::Result<()> {
    for remote in [false, true] {
        let on = On::start(remote, &[]).await?;
        let host = on.host();
        let unknown = host.submit("UnknownSubtask", json!({})).await?;
        assert_eq!(host.wait(&unknown, WAIT).await?["state"], "failed");
        let task = first_task(host, &unknown).await?;
        let expected = "unknown task type NobodyImplementsThis@v0.0: no registered implementation can run it";
        assert_eq!(
            (&task["error"], &task["attempts"]),
            (&json!(expected), &json!(1)),
            "remote {remote}: {task}"
        );
        // Valid JSON that no f64 holds reaches the subtask as it was written.
        let big = host.submit("BigNumber", json!({})).await?;
        assert_eq!(host.wait(&big, WAIT).await?["state"], "completed", "remote: {remote}");
        let echo = of_type(&host.tasks(&big).await?, "Echo")[0].clone();
        let logs = host.logs(&big).await?;
        let line =
            logs.as_array().unwrap().iter().find(|l| l["task"] == echo["id"]).cloned().unwrap_or_default();
        assert_eq!(line["fields"]["text"], "[1e400]", "remote {remote}: {logs}");
    }
    Ok(())
}
