//! Bearer tokens: admin routes take only admin tokens, the runner protocol
//! only runner tokens, `/healthz` none; an open API is refused off loopback.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::Host;

const ADMIN: &str = "admin-token-0123456789abcdef";
const RUNNER: &str = "runner-token-0123456789abcdef";

async fn host_with_tokens() -> anyhow::Result<(Host, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("tokens");
    std::fs::write(&file, format!("# test tokens\nadmin {ADMIN}\nrunner {RUNNER}\n"))?;
    let host = Host::start(&["--runners", "1", "--token-file", file.to_str().unwrap()]).await?;
    Ok((host, dir))
}

#[tokio::test]
async fn routes_need_a_token_of_their_role() -> anyhow::Result<()> {
    let (mut host, _dir) = host_with_tokens().await?;
    let (status, _) = host.get("/healthz").await?;
    assert_eq!(status, StatusCode::OK, "healthz needs no token");

    let resp = reqwest::get(format!("{}/v1/jobs", host.base)).await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["error"]["code"], "unauthorized");

    host.token = Some("admin-token-0123456789abcdeX".into());
    assert_eq!(host.get("/v1/jobs").await?.0, StatusCode::UNAUTHORIZED, "a near miss is no token");

    host.token = Some(RUNNER.into());
    let (status, body) = host.get("/v1/jobs").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    let claim = json!({"cluster": "default", "wait_ms": 10});
    assert_eq!(host.post("/v1/runners/claim", &claim).await?.0, StatusCode::NO_CONTENT);

    host.token = Some(ADMIN.into());
    let (status, body) = host.post("/v1/runners/claim", &claim).await?;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    host.upload("probe").await?;
    let id = host.submit("Noop", json!({})).await?;
    let job = host.wait(&id, Duration::from_secs(30)).await?;
    assert_eq!(job["state"], "completed", "an admin token drives the whole API");
    Ok(())
}

#[test]
fn an_open_api_is_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    // The check runs before anything is bound or opened.
    let out = Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to listen on 0.0.0.0:0 without API tokens"), "{stderr}");
    assert!(!dir.path().join("db").exists(), "nothing was opened");
}
