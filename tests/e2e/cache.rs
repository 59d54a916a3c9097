//! The job cache: tasks of one job share it and no other job sees it;
//! values larger than a host call's chunk stream through; bad keys and
//! bounds give readable errors; the writes of a failed attempt stay; the
//! cache is deleted with its job; a remote runner uses it through the API.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Host, Runner};

const WAIT: Duration = Duration::from_secs(120);
/// Three chunks of the host calls' 1 MiB, and a bit.
const BIG: u64 = (3 << 20) + 12_345;

/// Runs a `CacheOps` job; its output (the results of its ops).
async fn ops(host: &Host, input: Value) -> anyhow::Result<(String, Value)> {
    let id = host.submit("CacheOps", input).await?;
    let job = host.wait(&id, WAIT).await?;
    if job["state"] != "completed" {
        anyhow::bail!("{job}: {}", host.failure(&id, WAIT).await?);
    }
    let (status, output) = host.get(&format!("/v1/jobs/{id}/output")).await?;
    anyhow::ensure!(status == StatusCode::OK, "{output}");
    Ok((id, output))
}

/// A root that writes and a subtask that reads, in one job.
fn write_then_read() -> Value {
    json!({
        "ops": [
            {"put": "a", "value": "1"},
            {"drop_writer": "a", "value": "never stored"},
            {"put": "g/x", "value": "x"},
            {"put": "g/y", "value": "y"},
            {"put": "gz", "value": "z"},
            {"put_pattern": "big", "bytes": BIG},
        ],
        "then": [
            {"get": "a"},
            {"list": "g/"},
            {"list": "g"},
            {"check_pattern": "big"},
            {"contains": "a"},
            {"delete": "a"},
            {"contains": "a"},
            {"delete": "a"},
            {"get": "missing"},
        ],
    })
}

fn shared_results() -> Value {
    json!(["1", ["g/x", "g/y"], ["g/x", "g/y", "gz"], BIG, true, true, false, false, null])
}

/// Files under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn tasks_of_a_job_share_its_cache_and_no_other_job_sees_it() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let host = Host::start_in(data.path(), &[]).await?;
    host.upload("cache").await?;
    let (id, results) = ops(&host, write_then_read()).await?;
    assert_eq!(results, shared_results());
    let (_, other) = ops(&host, json!({"ops": [{"get": "g/x"}, {"list": ""}]})).await?;
    assert_eq!(other, json!([null, []]), "another job sees nothing of it");

    // The user sees the cache too.
    let (status, listing) = host.get(&format!("/v1/jobs/{id}/cache?prefix=g")).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listing,
        json!({"keys": [{"key": "g/x", "size": 1}, {"key": "g/y", "size": 1}, {"key": "gz", "size": 1}]})
    );
    let (_, page) = host.get(&format!("/v1/jobs/{id}/cache?limit=2")).await?;
    assert_eq!((page["keys"].as_array().map(Vec::len), &page["next"]), (Some(2), &json!("g/x")));
    let (_, page) = host.get(&format!("/v1/jobs/{id}/cache?limit=2&after=g/x")).await?;
    assert_eq!(page["keys"][0]["key"], "g/y");
    let value = reqwest::get(format!("{}/v1/jobs/{id}/cache/value?key=g%2Fy", host.base)).await?;
    assert_eq!((value.status(), value.text().await?), (StatusCode::OK, "y".to_owned()));
    let (status, missing) = host.get(&format!("/v1/jobs/{id}/cache/value?key=a")).await?;
    assert_eq!((status, missing["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("no_value")));
    let (status, bad) = host.get(&format!("/v1/jobs/{id}/cache/value?key=a%2F%2Fb")).await?;
    assert_eq!((status, bad["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_key")));

    // Deleted with the job, files and all.
    let job_dir = data.path().join("cache").join("jobs").join(&id);
    assert!(!files(&job_dir).is_empty());
    let (status, _) = host.send(reqwest::Client::new().delete(format!("{}/v1/jobs/{id}", host.base))).await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(files(&job_dir), Vec::<std::path::PathBuf>::new());
    let (status, _) = host.get(&format!("/v1/jobs/{id}/cache")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn bad_keys_and_bounds_are_readable_errors() -> anyhow::Result<()> {
    let host =
        Host::start(&["--limit", "cache_value_bytes=2MiB", "--limit", "cache_attempt_bytes=5MiB"]).await?;
    host.upload("cache").await?;
    let long = "k".repeat(1025);
    let (_, results) = ops(
        &host,
        json!({"ops": [
            {"put": "", "value": "x"},
            {"put": "a//b", "value": "x"},
            {"get": "../up"},
            {"put": long, "value": "x"},
            {"list": "bad\nprefix"},
            {"put_pattern": "too-big", "bytes": BIG},
            {"contains": "too-big"},
            {"put_pattern": "two", "bytes": 2 << 20},
            {"put_pattern": "more", "bytes": 2 << 20},
            {"open_writers": 17},
        ]}),
    )
    .await?;
    let says = |i: usize, text: &str| {
        let message = results[i]["error"].as_str().unwrap_or_default();
        assert!(message.contains(text), "op {i}: {:?} does not say {text:?}", results[i]);
    };
    says(0, "must not be empty");
    says(1, "empty, `.` or `..` segment");
    says(2, "empty, `.` or `..` segment");
    says(3, "at most 1024 bytes");
    says(4, "control character");
    says(5, "exceeds the limit of 2097152 bytes per value");
    assert_eq!(results[6], json!(false), "a value over the bound is not stored");
    assert_eq!(results[7], json!("ok"));
    says(8, "more than 5242880 bytes to the job cache");
    says(9, "at most 16 cache writers open at once");
    Ok(())
}

#[tokio::test]
async fn a_failed_attempt_keeps_its_writes_and_its_retry_sees_them() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("cache").await?;
    let input =
        json!({"ops": [{"get": "seen"}, {"put": "seen", "value": "by attempt 1"}], "fail_first": true});
    let (status, job) = host
        .post("/v1/jobs", &json!({"name": "flaky", "task": "CacheOps", "input": input, "max_retries": 1}))
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap();
    assert_eq!(host.wait(id, WAIT).await?["state"], "completed");
    let (_, output) = host.get(&format!("/v1/jobs/{id}/output")).await?;
    assert_eq!(output, json!(["by attempt 1", "ok"]));
    Ok(())
}

#[tokio::test]
async fn a_remote_runner_uses_the_cache_through_the_api() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0", "--limit", "cache_value_bytes=4MiB"]).await?;
    host.upload("cache").await?;
    let artifacts = tempfile::tempdir()?;
    let _runner = Runner::start(&host, "default", artifacts.path(), &["--concurrency", "2"]).await?;
    let (_, results) = ops(&host, write_then_read()).await?;
    assert_eq!(results, shared_results());
    let (_, results) =
        ops(&host, json!({"ops": [{"put_pattern": "huge", "bytes": 5 << 20}, {"contains": "huge"}]})).await?;
    let message = results[0]["error"].as_str().unwrap_or_default();
    assert!(message.contains("exceeds the limit of 4194304 bytes"), "{results}");
    assert_eq!(results[1], json!(false));
    Ok(())
}

/// The S3-compatible server `tests/s3/server.py` runs (moto), with one
/// bucket; killed when dropped.
struct S3Server {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    port: u16,
}

impl S3Server {
    const BUCKET: &str = "sandflow-test";

    fn start() -> anyhow::Result<S3Server> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(Path::new(env!("S3_TOOLS")).join("python"))
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/s3/server.py"))
            .arg(Self::BUCKET)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().transpose()?.unwrap_or_default();
        let port = first.strip_prefix("port=").and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            anyhow::bail!("the S3 server did not start: {first:?}");
        };
        Ok(S3Server { child, lines, port })
    }

    /// Objects under `prefix` in the bucket.
    fn count(&mut self, prefix: &str) -> anyhow::Result<u64> {
        use std::io::Write;
        writeln!(self.child.stdin.as_mut().unwrap(), "count {prefix}")?;
        let line = self.lines.next().transpose()?.unwrap_or_default();
        Ok(line.strip_prefix("count=").and_then(|n| n.parse().ok()).unwrap_or(u64::MAX))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_cache_can_live_in_an_s3_bucket() -> anyhow::Result<()> {
    let mut s3 = tokio::task::spawn_blocking(S3Server::start).await??;
    let endpoint = format!("http://127.0.0.1:{}", s3.port);
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
    ];
    let data = tempfile::tempdir()?;
    let bucket = format!("s3://{}/some/prefix", S3Server::BUCKET);
    let host = Host::start_with_env(data.path(), &["--cache", &bucket], &env).await?;
    host.upload("cache").await?;
    let (id, results) = ops(&host, write_then_read()).await?;
    assert_eq!(results, shared_results());
    let under = format!("some/prefix/jobs/{id}/");
    // `a` was deleted; `g/x`, `g/y`, `gz` and `big` are there.
    assert_eq!(s3.count(&under)?, 4);
    // Over 8 MiB a value goes up as a multipart upload.
    let huge = 9 << 20;
    let (_, results) =
        ops(&host, json!({"ops": [{"put_pattern": "huge", "bytes": huge}, {"check_pattern": "huge"}]}))
            .await?;
    assert_eq!(results, json!(["ok", huge]));
    assert!(!data.path().join("cache").exists(), "nothing went to the data dir");
    let (status, _) = host.send(reqwest::Client::new().delete(format!("{}/v1/jobs/{id}", host.base))).await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(s3.count(&under)?, 0, "deleted with the job");
    Ok(())
}
