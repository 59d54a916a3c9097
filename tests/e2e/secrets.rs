//! Secrets: set from the CLI's stdin, listed by name only, sealed on disk;
//! read by a task only when its module was granted them; redacted from
//! everything the attempt recorded, so no route of the API and no file of
//! the data dir holds the value; a remote runner reads them through the API,
//! which checks the grant and the attempt again.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Host, Runner, component};

const WAIT: Duration = Duration::from_secs(120);
const VALUE: &str = "s3cr3t-Value-0451";

fn sandflow(host: &Host, args: &[&str], stdin: &[u8]) -> anyhow::Result<std::process::Output> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(args)
        .args(["--server", &host.base])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().unwrap().write_all(stdin)?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(out)
}

/// Sets `API_KEY` and `OTHER`, uploads the fixture granted only `API_KEY`.
async fn prepare(host: &Host) -> anyhow::Result<()> {
    sandflow(host, &["secret", "set", "API_KEY"], format!("{VALUE}\n").as_bytes())?;
    sandflow(host, &["secret", "set", "OTHER"], b"other-value")?;
    let path = component("cache");
    let out = sandflow(host, &["module", "upload", "--secrets", "API_KEY"], b"").map(drop);
    anyhow::ensure!(out.is_err(), "an upload needs files");
    sandflow(host, &["module", "upload", "--secrets", "API_KEY", path.to_str().unwrap()], b"")?;
    Ok(())
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            found.push(path);
        }
    }
    found
}

/// The bodies of every route that shows something of job `id`.
async fn every_answer(host: &Host, id: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut paths: Vec<String> =
        ["", "/tasks", "/logs", "/spans", "/output", "/diagram.svg", "/events", "/cache"]
            .iter()
            .map(|p| format!("/v1/jobs/{id}{p}"))
            .collect();
    let (_, tasks) = host.get(&format!("/v1/jobs/{id}/tasks")).await?;
    for task in tasks.as_array().into_iter().flatten() {
        paths.push(format!("/v1/jobs/{id}/tasks/{}/output", task["id"].as_str().unwrap_or_default()));
    }
    paths.extend(["/v1/jobs", "/v1/secrets", "/v1/modules", "/v1/stats", "/v1/task-types"].map(String::from));
    let mut answers = Vec::new();
    for path in paths {
        let body = reqwest::get(format!("{}{path}", host.base)).await?.text().await?;
        answers.push((path, body));
    }
    Ok(answers)
}

#[tokio::test]
async fn secrets_reach_granted_tasks_and_nothing_else() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let host = Host::start_in(data.path(), &[]).await?;
    prepare(&host).await?;
    let listed = sandflow(&host, &["secret", "list"], b"")?;
    let listed = String::from_utf8(listed.stdout)?;
    assert!(listed.contains("API_KEY") && listed.contains("OTHER") && !listed.contains(VALUE), "{listed}");

    let id = host.submit("UseSecret", json!({"name": "API_KEY", "other": "OTHER"})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed", "{job}");
    let (_, output) = host.get(&format!("/v1/jobs/{id}/output")).await?;
    assert_eq!(output["value"], "[redacted API_KEY]", "the task had the value; its output is redacted");
    let refused = output["other"].as_str().unwrap_or_default();
    assert!(refused.contains("secret OTHER is not granted to this task's module"), "{output}");
    let logs = host.logs(&id).await?.to_string();
    assert!(
        logs.contains("the key is [redacted API_KEY]") && logs.contains("stdout has [redacted API_KEY]"),
        "{logs}"
    );

    let failed = host.submit("UseSecret", json!({"name": "API_KEY", "other": "OTHER", "fail": true})).await?;
    assert!(host.failure(&failed, WAIT).await?.contains("failed holding [redacted API_KEY]"));

    for job in [&id, &failed] {
        for (path, body) in every_answer(&host, job).await? {
            assert!(!body.contains(VALUE), "{path} shows the secret: {body}");
        }
    }
    assert!(
        every_answer(&host, &id)
            .await?
            .iter()
            .any(|(p, b)| p.ends_with("/spans") && b.contains("span [redacted API_KEY]"))
    );
    assert_eq!(
        files_holding(data.path(), VALUE.as_bytes()),
        Vec::<std::path::PathBuf>::new(),
        "sealed on disk"
    );

    // A secret not set, and bad names.
    sandflow(&host, &["secret", "delete", "API_KEY"], b"")?;
    let gone = host.submit("UseSecret", json!({"name": "API_KEY", "other": "OTHER"})).await?;
    assert!(host.failure(&gone, WAIT).await?.contains("there is no secret named API_KEY"));
    let bad = host
        .send(reqwest::Client::new().put(format!("{}/v1/secrets/no-dashes", host.base)).body("x"))
        .await?;
    assert_eq!((bad.0, bad.1["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_name")));
    let empty =
        host.send(reqwest::Client::new().put(format!("{}/v1/secrets/EMPTY", host.base)).body("")).await?;
    assert_eq!(empty.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", empty.1);
    Ok(())
}

#[tokio::test]
async fn a_remote_runner_reads_secrets_through_the_api_which_checks_the_attempt() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    prepare(&host).await?;
    let dir = tempfile::tempdir()?;
    let runner = Runner::start(&host, "default", dir.path(), &["--concurrency", "2"]).await?;
    let id = host.submit("UseSecret", json!({"name": "API_KEY", "other": "OTHER"})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed", "{job}: {}", runner.log());
    let (_, output) = host.get(&format!("/v1/jobs/{id}/output")).await?;
    assert_eq!(output["value"], "[redacted API_KEY]");
    assert!(output["other"].as_str().unwrap_or_default().contains("not granted"), "{output}");
    for (path, body) in every_answer(&host, &id).await? {
        assert!(!body.contains(VALUE), "{path} shows the secret: {body}");
    }
    assert!(!runner.log().contains(VALUE), "the runner's log holds the secret");

    // The API hands a value only to a running attempt, by its lease.
    let (_, tasks) = host.get(&format!("/v1/jobs/{id}/tasks")).await?;
    let task = &tasks[0];
    let query = format!("job={id}&task={}&lease={}", task["id"].as_str().unwrap(), 1);
    let (status, body) = host.get(&format!("/v1/runners/secrets/API_KEY?{query}")).await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("stale_lease")),
        "{body}"
    );
    let _: Value = body;
    Ok(())
}

/// A host whose key file does not open the secrets its store holds
/// (another host's key, or a replaced file) refuses to start, naming the
/// file and what to do, instead of running with secrets it cannot read.
#[tokio::test]
async fn a_host_with_another_key_file_refuses_a_store_with_secrets() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut host = Host::start_local(dir.path(), &["--runners", "0"], &[]).await?;
    sandflow(&host, &["secret", "set", "API_KEY"], VALUE.as_bytes())?;
    host.stop()?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(["serve", "--listen", "127.0.0.1:0", "--runners", "0", "--data-dir"])
        .arg(dir.path())
        .arg("--secret-key-file")
        .arg(dir.path().join("another.key"))
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not open the secrets this store holds (API_KEY among them)"), "{stderr}");
    let host = Host::start_local(dir.path(), &["--runners", "0"], &[]).await?;
    let listed = sandflow(&host, &["secret", "list"], b"")?;
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("API_KEY"),
        "the right key still opens the store"
    );
    Ok(())
}
