//! Python tools for the build script: the Python components, built with
//! componentize-py (pinned by `guest-sdk-python/requirements.txt`): the
//! bindings-only fixture `tests/fixtures/hostile-py`, and the SDK's
//! components (`examples/python-movies`, `tests/fixtures/sdk-py`) built by
//! the SDK's own `python -m sandflow build`; the HTTP API's fuzz tools
//! (`tests/fuzz`), and an S3-compatible server for the job cache's test
//! (`tests/s3`). Each tool set is installed from a `requirements.txt` that
//! pins every package by hash, into a virtual environment named by that
//! file's hash; each component is kept under a name that carries the hash
//! of its inputs.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixture's component, built if its inputs changed; answers its path.
pub fn build(root: &Path) -> PathBuf {
    let fixture = root.join("tests/fixtures/hostile-py");
    let requirements = root.join("guest-sdk-python/requirements.txt");
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

/// The component the SDK's build command makes of `module` (a `.py` file
/// under `root`), with `paths` searched first; answers its path.
pub fn sdk_build(root: &Path, name: &str, module: &str, paths: &[&str]) -> PathBuf {
    let requirements = root.join("guest-sdk-python/requirements.txt");
    let python = venv(root, "py", &requirements).join("python");
    let sdk = root.join("guest-sdk-python/src");
    let module = root.join(module);
    let mut inputs = vec![requirements];
    for dir in [sdk.join("sandflow"), root.join("wit"), module.parent().expect("a parent").to_path_buf()] {
        inputs.extend(files(&dir));
    }
    for p in paths {
        inputs.extend(files(&root.join(p)));
    }
    let out = root.join("target/guests/py").join(format!("{name}-{:016x}.wasm", hash(&inputs)));
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(out.parent().expect("a parent")).expect("create target/guests/py");
    let partial = out.with_extension("partial");
    let mut cmd = Command::new(python);
    cmd.args(["-m", "sandflow", "build"]).arg(&module).arg("-o").arg(&partial);
    for p in paths {
        cmd.arg("-p").arg(root.join(p));
    }
    cmd.env("PYTHONPATH", &sdk).env("PYTHONDONTWRITEBYTECODE", "1");
    run(&mut cmd, &format!("build {} with the Python SDK", module.display()));
    std::fs::rename(&partial, &out).expect("move the Python component in place");
    out
}

/// The Python of the SDK's tool environment (for its unit tests).
pub fn sdk_python(root: &Path) -> PathBuf {
    venv(root, "py", &root.join("guest-sdk-python/requirements.txt")).join("python")
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

pub fn run(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("could not {what}: {e}"));
    assert!(status.success(), "could not {what}: {status}");
}

/// The files directly in `dir`, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// A hash of the contents of `paths`.
pub fn hash(paths: &[PathBuf]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in paths {
        std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).hash(&mut h);
    }
    h.finish()
}
