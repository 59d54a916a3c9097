//! Several machines: the host and a remote runner in separate network
//! namespaces joined by a veth pair, with addresses that exist only inside
//! those namespaces. A job submitted with the CLI completes on the runner.
//! Where the machine refuses namespaces (not root, no `ip`), the test prints
//! why and skips; the same scenario on loopback always runs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::harness::component;

const BIN: &str = env!("CARGO_BIN_EXE_sandflow-under-test");
const ADMIN: &str = "netns-admin-token-0123456789";
const RUNNER: &str = "netns-runner-token-0123456789";

/// A command running our binary, inside namespace `ns` when given.
fn sandflow(ns: Option<&str>) -> Command {
    match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, BIN]);
            c
        }
        None => Command::new(BIN),
    }
}

/// Two namespaces joined by a veth pair; removed on drop.
struct Namespaces {
    host: String,
    runner: String,
    host_ip: String,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Namespaces {
    fn create() -> anyhow::Result<Self> {
        let id = std::process::id();
        let (host, runner) = (format!("sf{id}h"), format!("sf{id}r"));
        let net = format!("10.{}.{}", 100 + id % 100, (id / 100) % 250);
        let ns = Namespaces { host: host.clone(), runner: runner.clone(), host_ip: format!("{net}.1") };
        ip(&["netns", "add", &host])?;
        ip(&["netns", "add", &runner])?;
        let (vh, vr) = (format!("sf{id}a"), format!("sf{id}b"));
        ip(&["link", "add", &vh, "type", "veth", "peer", "name", &vr])?;
        ip(&["link", "set", &vh, "netns", &host])?;
        ip(&["link", "set", &vr, "netns", &runner])?;
        ip(&["-n", &host, "addr", "add", &format!("{net}.1/30"), "dev", &vh])?;
        ip(&["-n", &runner, "addr", "add", &format!("{net}.2/30"), "dev", &vr])?;
        for (n, dev) in [(&host, &vh), (&runner, &vr)] {
            ip(&["-n", n, "link", "set", dev, "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.host]);
        let _ = ip(&["netns", "del", &self.runner]);
    }
}

/// Host and runner (each in a namespace, or not), then a job through the CLI.
fn scenario(host_ns: Option<&str>, runner_ns: Option<&str>, listen_ip: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("admin {ADMIN}\nrunner {RUNNER}\n"))?;
    let mut host = sandflow(host_ns)
        .args(["serve", "--runners", "0", "--listen", &format!("{listen_ip}:0"), "--data-dir"])
        .arg(dir.path().join("host"))
        .arg("--token-file")
        .arg(&tokens)
        .env("SANDFLOW_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(host.stdout.take().context("stdout")?).read_line(&mut line)?;
    let base = line.trim().strip_prefix("sandflow listening on ").context(line.clone())?.to_owned();
    let mut runner = sandflow(runner_ns)
        .args(["--server", &base, "--token", RUNNER, "runner", "--concurrency", "2", "--cache-dir"])
        .arg(dir.path().join("runner"))
        .env("SANDFLOW_LOG", "error")
        .stdout(Stdio::null())
        .spawn()?;
    let admin = |args: &[&str]| -> anyhow::Result<String> {
        let out = sandflow(host_ns).args(["--server", &base, "--token", ADMIN]).args(args).output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        anyhow::ensure!(out.status.success(), "sandflow {}: {text}", args.join(" "));
        Ok(text)
    };
    let result = (|| {
        admin(&["module", "upload", component("probe").to_str().unwrap()])?;
        admin(&["job", "submit", "across", "--task", "Fanout", "--input", r#"{"n": 30}"#, "--wait"])
    })();
    let _ = runner.kill();
    let _ = host.kill();
    let (_, _) = (runner.wait(), host.wait());
    let output = result?;
    assert!(output.contains("completed"), "{output}");
    Ok(())
}

#[test]
fn a_job_completes_on_a_runner_in_another_network_namespace() -> anyhow::Result<()> {
    let ns = match Namespaces::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("SKIPPED: network namespaces are not available on this machine: {e:#}");
            return Ok(());
        }
    };
    scenario(Some(&ns.host), Some(&ns.runner), &ns.host_ip)
}

#[test]
fn the_same_scenario_on_loopback() -> anyhow::Result<()> {
    scenario(None, None, "127.0.0.1")
}
