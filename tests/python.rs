//! Python tools for the build script: the Python fixture
//! (`tests/fixtures/hostile-py`), built with componentize-py, and the HTTP
//! API's fuzz tools (`tests/fuzz`), and an S3-compatible server for the job
//! cache's test (`tests/s3`). Each tool set is installed from a
//! `requirements.txt` that pins every package by hash, into a virtual
//! environment named by that file's hash.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixture's component, built if its inputs changed; answers its path.
pub fn build(root: &Path) -> PathBuf {
    let fixture = root.join("tests/fixtures/hostile-py");
    let requirements = fixture.join("requirements.txt");
    let tool = venv(root, "py", &requirements).join("componentize-py");
    let mut inputs = vec![fixture.join("app.py"), requirements];
    // Built against WIT 0.1.0: it returns no output, and keeps a component
    // of the old world in the tests.
    let wit = root.join("wit/v0.1.0");
    inputs.extend(files(&wit));
    let out = root.join("target/guests/py").join(format!("hostile_py-{:016x}.wasm", hash(&inputs)));
    if !out.exists() {
        std::fs::create_dir_all(out.parent().expect("a parent")).expect("create target/guests/py");
        let partial = out.with_extension("partial");
        let status = Command::new(&tool)
            .arg("-d")
            .arg(&wit)
            .args(["-w", "task-component", "componentize", "-p"])
            .arg(&fixture)
            .arg("app")
            .arg("-o")
            .arg(&partial)
            .current_dir(std::env::var("OUT_DIR").expect("set by cargo"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .status()
            .expect("componentize-py runs");
        assert!(status.success(), "componentize-py failed to build {}", fixture.display());
        std::fs::rename(&partial, &out).expect("move the Python component in place");
    }
    out
}

/// The `bin` directory of the fuzz tools (`tests/fuzz/requirements.txt`).
pub fn fuzz_tools(root: &Path) -> PathBuf {
    venv(root, "fuzz", &root.join("tests/fuzz/requirements.txt"))
}

/// The `bin` directory of the S3-compatible test server's environment
/// (`tests/s3/requirements.txt`).
pub fn s3_tools(root: &Path) -> PathBuf {
    venv(root, "s3", &root.join("tests/s3/requirements.txt"))
}

/// The `bin` directory of a virtual environment with what `requirements`
/// pins, installed once per pin under `target/guest-tools/`.
fn venv(root: &Path, name: &str, requirements: &Path) -> PathBuf {
    let dir =
        root.join("target/guest-tools").join(format!("{name}-{:016x}", hash(&[requirements.to_path_buf()])));
    let bin = dir.join("bin");
    let done = dir.join("installed");
    if done.exists() {
        return bin;
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        Command::new(python).args(["-m", "venv", "--clear"]).arg(&dir),
        "create a Python virtual environment",
    );
    run(
        Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "--require-hashes", "-r"])
            .arg(requirements),
        &format!("install {}", requirements.display()),
    );
    std::fs::write(&done, b"").expect("mark the virtual environment installed");
    bin
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("could not {what}: {e}"));
    assert!(status.success(), "could not {what}: {status}");
}

/// The files directly in `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// A hash of the contents of `paths`.
fn hash(paths: &[PathBuf]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in paths {
        std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).hash(&mut h);
    }
    h.finish()
}
