//! The HTTP API fuzzed from its own OpenAPI document by outside tools
//! (`tests/fuzz`: schemathesis and openapi-spec-validator, pinned by hash):
//! the document validates; and on a host without tokens and on one with
//! them, no request gets a 5xx, every response matches the document, what
//! the document rules out is refused and what it allows is not (the few
//! exceptions the document cannot express are listed, with their reasons,
//! in `tests/fuzz/schemathesis.toml`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use reqwest::StatusCode;

use crate::auth::{ADMIN, RUNNER};
use crate::harness::Host;

/// The `bin` directory of the fuzz tools' virtual environment.
const TOOLS: &str = env!("FUZZ_TOOLS");

/// Longest a whole fuzz run may take; schemathesis stops generating at
/// `--max-time`, this also bounds what it is doing then.
const RUN_LIMIT: Duration = Duration::from_secs(240);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Runs `tool` with `args` in `cwd` within [`RUN_LIMIT`]; its output when it
/// failed.
async fn run(tool: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut cmd = tokio::process::Command::new(Path::new(TOOLS).join(tool));
    cmd.args(args).current_dir(cwd).envs(env.iter().copied()).kill_on_drop(true);
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .with_context(|| format!("{tool} ran over {RUN_LIMIT:?}"))?
        .with_context(|| format!("running {tool}"))?;
    ensure!(
        out.status.success(),
        "{tool} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Fuzzes `host` with schemathesis, every check on; the host stays healthy.
async fn fuzz(host: &Host) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let config = fuzz_dir().join("schemathesis.toml");
    let url = format!("{}/v1/openapi.json", host.base);
    let args = [
        "--no-color",
        "--config-file",
        config.to_str().context("a UTF-8 path")?,
        "run",
        &url,
        "--checks",
        "all",
        "--max-examples",
        "25",
        "--seed",
        "20261202",
        "--workers",
        "2",
        "--request-timeout",
        "10",
        "--max-time",
        "75",
        "--generation-database",
        "none",
    ];
    let hooks_path = fuzz_dir();
    let env = [
        ("SCHEMATHESIS_HOOKS", "hooks"),
        ("PYTHONPATH", hooks_path.to_str().context("a UTF-8 path")?),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("SANDFLOW_FUZZ_ADMIN", ADMIN),
        ("SANDFLOW_FUZZ_RUNNER", RUNNER),
    ];
    run("schemathesis", &args, scratch.path(), &env).await?;
    let (status, _) = host.get("/healthz").await?;
    assert_eq!(status, StatusCode::OK, "the host is healthy after the fuzz run");
    Ok(())
}

#[tokio::test]
async fn the_document_is_valid_openapi() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    let (_, doc) = host.get("/v1/openapi.json").await?;
    let scratch = tempfile::tempdir()?;
    let file = scratch.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc)?)?;
    run("openapi-spec-validator", &[file.to_str().context("a UTF-8 path")?], scratch.path(), &[]).await
}

#[tokio::test]
async fn fuzzing_a_host_without_tokens_finds_nothing() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1", "--poll-limit", "1s"]).await?;
    fuzz(&host).await
}

#[tokio::test]
async fn fuzzing_a_host_with_tokens_finds_nothing() -> anyhow::Result<()> {
    let (host, _dir) = crate::auth::host_with_tokens_and(&["--poll-limit", "1s"]).await?;
    fuzz(&host).await
}
