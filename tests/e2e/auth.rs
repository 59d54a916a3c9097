//! Bearer tokens: admin routes take only admin tokens, the runner protocol
//! only runner tokens, `/healthz` none; an open API is refused off loopback
//! and to web pages of other sites.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::Host;

/// The admin token of [`host_with_tokens`].
pub const ADMIN: &str = "admin-token-0123456789abcdef";
/// A runner token of [`host_with_tokens`], for every cluster.
pub const RUNNER: &str = "runner-token-0123456789abcdef";
const GPU_RUNNER: &str = "gpu-runner-token-0123456789ab";

/// A host with an admin token, a runner token and a runner token for the
/// `gpu` cluster only (the directory holds the token file).
pub async fn host_with_tokens() -> anyhow::Result<(Host, tempfile::TempDir)> {
    host_with_tokens_and(&[]).await
}

/// [`host_with_tokens`] with further `serve` options.
pub async fn host_with_tokens_and(args: &[&str]) -> anyhow::Result<(Host, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        format!("# test tokens\nadmin {ADMIN}\nrunner {RUNNER}\nrunner {GPU_RUNNER} clusters=gpu\n"),
    )?;
    let mut all = vec!["--runners", "1", "--token-file", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let host = Host::start(&all).await?;
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

    // A runner token limited to a cluster claims there only.
    let (status, _) = host.post("/v1/clusters", &json!({"name": "gpu", "slug": "gpu"})).await?;
    assert_eq!(status, StatusCode::CREATED);
    host.token = Some(GPU_RUNNER.into());
    let (status, body) = host.post("/v1/runners/claim", &claim).await?;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::FORBIDDEN, &json!("cluster_not_allowed")));
    assert_eq!(body["error"]["message"], "this runner token may claim tasks of gpu only, not of default");
    let gpu = json!({"cluster": "gpu", "wait_ms": 10});
    assert_eq!(host.post("/v1/runners/claim", &gpu).await?.0, StatusCode::NO_CONTENT);
    let complete = json!({"reports": [], "claim": claim});
    assert_eq!(host.post("/v1/runners/complete", &complete).await?.0, StatusCode::FORBIDDEN);
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

#[tokio::test]
async fn a_token_less_host_refuses_what_a_web_page_of_another_site_sends() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    let http = reqwest::Client::new();
    let job = r#"{"name": "x", "task": "Noop", "input": {}}"#;
    // A cross-site form or `no-cors` fetch: a "simple" POST with an Origin.
    let post = |origin: &'static str| {
        http.post(format!("{}/v1/jobs", host.base))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .body(job)
    };
    let (status, body) = host.send(post("https://evil.example")).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "cross_site");
    assert_eq!(
        body["error"]["message"],
        "without API tokens requests from web pages of other sites (`https://evil.example`) are refused"
    );
    // A page that rebinds its own name to 127.0.0.1 sends that name as Host.
    let rebound = http.get(format!("{}/v1/jobs", host.base)).header("host", "evil.example:7700");
    let (status, body) = host.send(rebound).await?;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::FORBIDDEN, &json!("cross_site")), "{body}");
    // An upload must say it is a component.
    let upload =
        http.post(format!("{}/v1/modules", host.base)).header("content-type", "text/plain").body("x");
    let (status, body) = host.send(upload).await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, &json!("unsupported_media_type"))
    );
    // Tools (no Origin) and pages of this host itself are served.
    let own = http
        .post(format!("{}/v1/jobs", host.base))
        .header("origin", host.base.clone())
        .json(&json!({"name": "x", "task": "Noop", "input": {}}));
    let (status, body) = host.send(own).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "refused only for its unknown task type: {body}");
    assert_eq!(body["error"]["code"], "unknown_task_type");
    Ok(())
}
