//! Project automation, run as `cargo xtask <command>`:
//!
//! - `demo`: build everything, start a host on a fresh data directory, upload
//!   the examples, run the `fanout` and `pipeline` jobs to completion and print
//!   their task trees.
//! - `test`: formatting, lints, the whole test suite, and the benchmark suite
//!   at a small size, as CI runs them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "demo" => demo(),
        "test" => test(),
        _ => Err("usage: cargo xtask <demo|test>".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd.current_dir(root()).status().map_err(|e| format!("{}: {e}", describe(cmd)))?;
    if status.success() { Ok(()) } else { Err(format!("`{}` failed with {status}", describe(cmd))) }
}

fn describe(cmd: &Command) -> String {
    let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    format!("{} {}", cmd.get_program().to_string_lossy(), args.join(" "))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Installs the wasm32-wasip2 target (and the lint components) when missing.
fn ensure_toolchain(components: bool) -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let has_target =
        installed.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l == "wasm32-wasip2"));
    if !has_target {
        run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))?;
    }
    if components {
        run(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))?;
    }
    Ok(())
}

fn test() -> Result<()> {
    ensure_toolchain(true)?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // The benchmark suite is a program, not a test; CI only checks that it
    // runs. `--workspace` keeps the feature set of the other commands, so
    // nothing is rebuilt for it.
    let bench = ["bench", "--workspace", "--bench", "suite", "--profile", "dev", "--", "--small"];
    run(cargo().args(bench))?;
    run(cargo().args(["test", "--workspace"]))?;
    // The end-to-end suite again with every host's state in a PostgreSQL
    // database, but for the tests in which the store plays no part (the
    // sandbox's, the SDKs', the dashboard's, the fuzzers') and those that
    // run on the local store whatever the suite's store is.
    let skip = [
        "fuzz::",
        "dashboard::",
        "python::",
        "javascript::",
        "containment::",
        "hostile::",
        "egress::",
        "netns::",
        "limits::",
        "store_faults::",
        "migrate::",
    ];
    let mut e2e = cargo();
    e2e.args(["test", "-p", "sandflow-tests", "--test", "e2e", "--"]).env("SANDFLOW_TEST_STORE", "postgres");
    for test in skip {
        e2e.args(["--skip", test]);
    }
    run(&mut e2e)
}

fn demo() -> Result<()> {
    ensure_toolchain(false)?;
    run(cargo().args(["build", "--package", "sandflow-host"]))?;
    run(cargo().args([
        "build",
        "--target",
        "wasm32-wasip2",
        "--profile",
        "guest",
        "-p",
        "fanout",
        "-p",
        "pipeline",
    ]))?;
    let data = root().join("target").join("demo-data");
    let _ = std::fs::remove_dir_all(&data);
    let bin = root().join("target").join("debug").join("sandflow");
    let (mut host, server) = start_host(&bin, &data)?;
    let result = drive_demo(&bin, &server);
    let _ = host.kill();
    let _ = host.wait();
    result
}

fn start_host(bin: &Path, data: &Path) -> Result<(Child, String)> {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the host: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no host stdout")?;
    BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
    let server =
        line.trim().strip_prefix("sandflow listening on ").ok_or(format!("host said {line:?}"))?.to_owned();
    Ok((child, server))
}

fn drive_demo(bin: &Path, server: &str) -> Result<()> {
    let guests = root().join("target").join("wasm32-wasip2").join("guest");
    let cli = || {
        let mut c = Command::new(bin);
        c.env("SANDFLOW_SERVER", server);
        c
    };
    run(cli().args(["module", "upload"]).arg(guests.join("fanout.wasm")).arg(guests.join("pipeline.wasm")))?;
    for (name, task, input) in [
        ("fanout", "Root", r#"{"num_subtasks": 5}"#),
        ("pipeline", "Pipeline", r#"{"sources": ["north", "south", "east", "west"]}"#),
    ] {
        let out = cli()
            .args(["job", "submit", name, "--task", task, "--input", input, "--wait"])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| e.to_string())?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() {
            return Err(format!("job {name} ({id}) did not complete"));
        }
        println!("\n== {name} job {id}");
        run(cli().args(["job", "show", &id]))?;
        run(cli().args(["job", "tasks", &id]))?;
    }
    Ok(())
}
