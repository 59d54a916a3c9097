//! Remote runners: separate `sandflow runner` processes take the tasks of
//! their cluster over HTTP, fetch and cache modules, survive being killed
//! (the lease expires and another runner finishes), and stop gracefully.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Host, Runner, until};

const WAIT: Duration = Duration::from_secs(60);

async fn states(host: &Host, job: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(host
        .tasks(job)
        .await?
        .iter()
        .map(|t| {
            (t["cluster"].as_str().unwrap_or("").to_owned(), t["state"].as_str().unwrap_or("").to_owned())
        })
        .collect())
}

async fn wait_until(what: &str, check: impl AsyncFnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    until(what, WAIT, check).await
}

#[tokio::test]
async fn tasks_run_only_on_runners_of_their_cluster() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    host.upload("probe").await?;
    host.create_cluster("east").await?;
    host.create_cluster("west").await?;
    let cache = tempfile::tempdir()?;
    let _east1 =
        Runner::start(&host, "east", &cache.path().join("e1"), &["--concurrency", "2", "--id", "east-1"])
            .await?;
    let _east2 =
        Runner::start(&host, "east", &cache.path().join("e2"), &["--concurrency", "2", "--id", "east-2"])
            .await?;
    let body =
        json!({"name": "split", "task": "Fanout", "input": {"n": 20, "cluster": "west"}, "cluster": "east"});
    let (status, job) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    // The root runs on east; its 20 subtasks wait for a west runner.
    wait_until("the east root is computed", async || {
        Ok(states(&host, &id).await?.iter().any(|(c, s)| c == "east" && s == "computed"))
    })
    .await?;
    // Barrier: the east runners claim and complete an east job after the
    // west tasks were ready; had they taken west tasks, those would show.
    let east =
        host.post("/v1/jobs", &json!({"name": "n", "task": "Noop", "input": {}, "cluster": "east"})).await?;
    assert_eq!(host.wait(east.1["id"].as_str().unwrap(), WAIT).await?["state"], "completed");
    let west: Vec<_> = states(&host, &id).await?.into_iter().filter(|(c, _)| c == "west").collect();
    assert_eq!(west.len(), 20);
    assert!(west.iter().all(|(_, s)| s == "queued"), "east runners took west tasks: {west:?}");

    let _west =
        Runner::start(&host, "west", &cache.path().join("w"), &["--concurrency", "2", "--id", "west-1"])
            .await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(
        job["state"],
        "completed",
        "{job} {:?}",
        host.tasks(&id).await?.iter().filter_map(|t| t["error"].as_str()).collect::<Vec<_>>()
    );
    let (_, runners) = host.get("/v1/runners").await?;
    let mut seen: Vec<(String, String)> = runners
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["cluster"].as_str().unwrap().to_owned()))
        .collect();
    seen.sort();
    let expected = [("east-1", "east"), ("east-2", "east"), ("west-1", "west")];
    assert_eq!(seen, expected.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec());
    Ok(())
}

#[tokio::test]
async fn a_killed_runners_task_is_finished_by_another_and_its_late_report_refused() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0", "--lease-ttl", "1s"]).await?;
    host.upload("probe").await?;
    let cache = tempfile::tempdir()?;
    let mut doomed =
        Runner::start(&host, "default", &cache.path().join("a"), &["--concurrency", "1"]).await?;
    let id = host.submit("Sleep", json!({"ms": 2000, "children": 3})).await?;
    wait_until("the task runs", async || Ok(host.tasks(&id).await?[0]["state"] == "running")).await?;
    let first = host.tasks(&id).await?[0].clone();
    doomed.kill();
    let _heir = Runner::start(&host, "default", &cache.path().join("b"), &["--concurrency", "1"]).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["task_counts"]["computed"], 4);
    let root = &host.tasks(&id).await?[0];
    assert_eq!(root["attempts"], 2, "the killed attempt was lost, the second ran it: {root}");
    // The killed attempt's report, replayed late, is refused.
    let late = json!({"job": id, "task": first["id"], "attempt": 1, "lease": first["lease"]});
    let (status, body) = host.post("/v1/runners/report", &late).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (409, Some("stale_attempt")), "{body}");
    Ok(())
}

fn artifacts(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[tokio::test]
async fn a_runner_fetches_verifies_and_caches_modules_and_refetches_a_corrupted_one() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    host.upload("probe").await?;
    let cache = tempfile::tempdir()?;
    let args = ["--concurrency", "1", "--compile-locally"];
    let mut runner = Runner::start(&host, "default", cache.path(), &args).await?;
    let id = host.submit("Noop", json!({})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    assert!(runner.log().contains("fetched a module"), "{}", runner.log());
    let cached = artifacts(cache.path());
    assert_eq!(cached.len(), 1, "one precompiled artifact");
    assert!(runner.terminate()?.success(), "a graceful stop exits 0");

    // Restarted on the same cache, it needs no fetch.
    let mut runner = Runner::start(&host, "default", cache.path(), &args).await?;
    let id = host.submit("Noop", json!({})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    assert!(!runner.log().contains("fetched a module"), "{}", runner.log());
    runner.terminate()?;

    // A corrupted artifact is detected, discarded, and the module fetched again.
    let mut bytes = std::fs::read(&cached[0])?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&cached[0], &bytes)?;
    let runner = Runner::start(&host, "default", cache.path(), &args).await?;
    let id = host.submit("Noop", json!({})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    let log = runner.log();
    assert!(log.contains("discarding a cached artifact") && log.contains("corrupted"), "{log}");
    assert!(log.contains("fetched a module"), "{log}");
    assert_ne!(std::fs::read(&cached[0])?, bytes, "the artifact was rewritten");
    Ok(())
}

#[tokio::test]
async fn a_new_runner_loads_the_hosts_precompiled_artifact_instead_of_compiling() -> anyhow::Result<()> {
    for (component, noops) in [("sdk-py", "PyNoops@v1.0"), ("sdk-js", "JsNoops@v1.0")] {
        let host = Host::start(&["--runners", "0"]).await?;
        host.upload(component).await?;
        let cache = tempfile::tempdir()?;
        let runner = Runner::start(&host, "default", cache.path(), &["--concurrency", "2"]).await?;
        let id = host.submit(noops, json!({"n": 3})).await?;
        assert_eq!(host.wait(&id, WAIT).await?["state"], "completed", "{component}");
        let log = runner.log();
        assert!(log.contains("fetched the host's precompiled artifact"), "{component}: {log}");
        assert!(log.contains("loaded the host's precompiled artifact"), "{component}: {log}");
        assert!(!log.contains("fetched a module"), "the runner compiled {component} itself: {log}");
        assert_eq!(artifacts(cache.path()).len(), 1, "the artifact is kept for the next start");

        // The route answers only for the host's own engine.
        let digest = artifacts(cache.path())[0].file_name().unwrap().to_string_lossy()[..64].to_owned();
        let (status, body) =
            host.get(&format!("/v1/runners/artifacts/{digest}?engine=0000000000000000")).await?;
        assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (404, Some("no_artifact")), "{body}");
    }
    Ok(())
}

#[tokio::test]
async fn a_stopping_runner_finishes_what_fits_in_its_grace_and_hands_back_the_rest() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    host.upload("probe").await?;
    let cache = tempfile::tempdir()?;
    let mut patient =
        Runner::start(&host, "default", &cache.path().join("a"), &["--grace", "10s", "--concurrency", "1"])
            .await?;
    let quick = host.submit("Sleep", json!({"ms": 800, "children": 0})).await?;
    // The runner fetches the module for its first task: it holds the claim.
    let fetched = |log: String| log.contains("fetched the host's precompiled artifact");
    wait_until("the runner has the task", async || Ok(fetched(patient.log()))).await?;
    assert!(patient.terminate()?.success());
    let task: Value = host.tasks(&quick).await?[0].clone();
    assert_eq!((task["state"].as_str(), task["attempts"].as_u64()), (Some("computed"), Some(1)), "{task}");

    // One slot: once the task runs, no claim is in flight when the stop comes.
    let mut hasty =
        Runner::start(&host, "default", &cache.path().join("b"), &["--grace", "200ms", "--concurrency", "1"])
            .await?;
    let slow = host.submit("Sleep", json!({"ms": 3000, "children": 0})).await?;
    wait_until("the runner has the task", async || Ok(fetched(hasty.log()))).await?;
    hasty.terminate()?;
    let task: Value = host.tasks(&slow).await?[0].clone();
    assert_eq!(
        (task["state"].as_str(), task["attempts"].as_u64()),
        (Some("queued"), Some(0)),
        "handed back: {task}"
    );
    let _next = Runner::start(&host, "default", &cache.path().join("c"), &[]).await?;
    let job = host.wait(&slow, WAIT).await?;
    assert_eq!(job["state"], "completed");
    let task: Value = host.tasks(&slow).await?[0].clone();
    assert_eq!(task["attempts"], 1, "no retry or lost attempt was used: {task}");
    Ok(())
}

#[tokio::test]
async fn a_cluster_is_renamed_and_redescribed_and_keeps_its_slug_and_tasks() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    host.upload("probe").await?;
    host.create_cluster("gpu").await?;
    let client = reqwest::Client::new();
    let patch = |path: &str, body: Value| host.send(client.patch(format!("{}{path}", host.base)).json(&body));
    let (status, updated) = patch("/v1/clusters/gpu", json!({"description": "H100s since May"})).await?;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["slug"].as_str(), updated["description"].as_str()),
        (Some("gpu"), Some("H100s since May"))
    );
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(["cluster", "update", "gpu", "--name", "GPU pool", "--server", &host.base])
        .output()?;
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let (_, shown) = host.get("/v1/clusters/gpu").await?;
    assert_eq!(
        (shown["name"].as_str(), shown["description"].as_str()),
        (Some("GPU pool"), Some("H100s since May"))
    );
    // The default cluster's words can change too; it is still listed first.
    assert_eq!(patch("/v1/clusters/default", json!({"name": "Shared"})).await?.0, 200);
    let (_, list) = host.get("/v1/clusters").await?;
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Shared", "GPU pool"]);
    let id = host.submit("Noop", json!({})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed", "the default cluster still runs tasks");

    let (status, body) = patch("/v1/clusters/gpu", json!({"name": ""})).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (422, Some("invalid_cluster")), "{body}");
    let (status, body) = patch("/v1/clusters/gpu", json!({"description": "x".repeat(1001)})).await?;
    assert_eq!(status.as_u16(), 422, "{body}");
    let (status, body) = patch("/v1/clusters/nowhere", json!({"name": "x"})).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    Ok(())
}

#[tokio::test]
async fn clusters_are_created_listed_and_deleted_and_unknown_ones_refused() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    host.upload("probe").await?;
    let (status, created) =
        host.post("/v1/clusters", &json!({"name": "GPU pool (east)", "description": "A100s"})).await?;
    assert_eq!(status, 201, "{created}");
    let slug = created["slug"].as_str().unwrap().to_owned();
    assert!(slug.starts_with("gpu-pool-east-") && slug.len() <= 100, "{slug}");
    let (status, again) = host.post("/v1/clusters", &json!({"name": "x", "slug": slug})).await?;
    assert_eq!((status.as_u16(), again["error"]["code"].as_str()), (409, Some("conflict")));
    let (status, bad) = host.post("/v1/clusters", &json!({"name": "x", "slug": "no spaces"})).await?;
    assert_eq!((status.as_u16(), bad["error"]["code"].as_str()), (422, Some("invalid_cluster")));
    let (_, list) = host.get("/v1/clusters").await?;
    let slugs: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, vec!["default", slug.as_str()]);
    assert_eq!(host.get(&format!("/v1/clusters/{slug}")).await?.1["description"], "A100s");

    // Unknown clusters are refused for jobs, subtasks and runners.
    let body = json!({"name": "x", "task": "Noop", "input": {}, "cluster": "nowhere"});
    let (status, refused) = host.post("/v1/jobs", &body).await?;
    assert_eq!(
        (status.as_u16(), refused["error"]["code"].as_str()),
        (422, Some("unknown_cluster")),
        "{refused}"
    );
    let id = host.submit("Fanout", json!({"n": 1, "cluster": "nowhere"})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "failed");
    let error = host.tasks(&id).await?[0]["error"].as_str().unwrap_or("").to_owned();
    assert!(error.contains("unknown cluster nowhere"), "{error}");
    let (status, _) = host.post("/v1/runners/claim", &json!({"cluster": "nowhere", "wait_ms": 10})).await?;
    assert_eq!(status, 422);

    // A cluster with queued tasks stays; an empty one goes; default always stays.
    let body = json!({"name": "x", "task": "Noop", "input": {}, "cluster": slug});
    assert_eq!(host.post("/v1/jobs", &body).await?.0, 201);
    let client = reqwest::Client::new();
    let delete = |path: String| host.send(client.delete(format!("{}{path}", host.base)));
    let (status, busy) = delete(format!("/v1/clusters/{slug}")).await?;
    assert_eq!((status.as_u16(), busy["error"]["code"].as_str()), (409, Some("conflict")), "{busy}");
    let (status, _) = delete("/v1/clusters/default".into()).await?;
    assert_eq!(status, 409);
    host.create_cluster("empty").await?;
    assert_eq!(delete("/v1/clusters/empty".into()).await?.0, 204);
    assert_eq!(host.get("/v1/clusters/empty").await?.0, 404);
    Ok(())
}
