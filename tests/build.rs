//! Compiles the example and fixture crates to `wasm32-wasip2` components and
//! tells the tests where they are (`COMPONENT_<NAME>` variables).
//!
//! The components are built by a nested cargo with its own target directory,
//! so it never waits on the lock of the build that runs this script.
//! Components written by hand in the text format are compiled with `wat`. The
//! Python components are built with componentize-py, installed at the
//! version and hash `guest-sdk-python/requirements.txt` pins into a virtual
//! environment under `target/guest-tools/` (the SDK's ones through its
//! build command); both the tool and the components are kept under names
//! that carry the hash of their inputs, so they are made once. The
//! HTTP API's fuzz tools (`tests/fuzz/requirements.txt`) are installed the
//! same way (`FUZZ_TOOLS` names their `bin` directory), and so is the S3
//! test server (`tests/s3/requirements.txt`, `S3_TOOLS`). The JavaScript
//! components are built by the JavaScript SDK's `sandflow-js build` with the
//! packages its lockfile pins (`tests/javascript.rs`, `SDK_JS`).

mod javascript;
mod python;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest crates the tests use.
const GUESTS: &[&str] = &[
    "fanout",
    "pipeline",
    "wordcount",
    "probe",
    "outputs",
    "cache",
    "hostile",
    "bad-import",
    "many-types",
    "impostor",
];

/// The components written by hand in the text format.
const WAT_FIXTURES: &[&str] = &["many-memories", "crowded"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.parent().expect("tests/ lives in the workspace").to_path_buf();
    for dir in [
        "wit",
        "guest-sdk",
        "guest-sdk-python",
        "guest-sdk-js/src",
        "guest-sdk-js/bin",
        "guest-sdk-js/test",
        "guest-sdk-js/types",
        "guest-sdk-js/package.json",
        "guest-sdk-js/package-lock.json",
        "examples",
        "tests/fixtures",
        "tests/fuzz/requirements.txt",
        "tests/browser/package-lock.json",
        "tests/s3/requirements.txt",
        "tests/python.rs",
        "tests/javascript.rs",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = root.join("target").join("guests");
    let out = target_dir.join("wasm32-wasip2").join("guest");
    build(&root, &target_dir, GUESTS, &[]);
    for guest in GUESTS {
        let file = out.join(format!("{}.wasm", guest.replace('-', "_")));
        assert!(file.exists(), "{} was not built", file.display());
        let var = guest.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env=COMPONENT_{var}={}", file.display());
    }
    for fixture in WAT_FIXTURES {
        let file = compile_wat(&root, &target_dir, fixture);
        let var = fixture.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env=COMPONENT_{var}={}", file.display());
    }
    let python = python::build(&root);
    println!("cargo:rustc-env=COMPONENT_HOSTILE_PY={}", python.display());
    let sdk_py = python::sdk_build(&root, "sdk_py", "tests/fixtures/sdk-py/tasks.py", &[]);
    println!("cargo:rustc-env=COMPONENT_SDK_PY={}", sdk_py.display());
    for version in ["1.0", "1.1"] {
        let dir = format!("examples/python-movies/v{version}");
        let name = format!("python_movies_v{version}");
        let file = python::sdk_build(&root, &name, "examples/python-movies/movies.py", &[&dir]);
        println!("cargo:rustc-env=COMPONENT_PYTHON_MOVIES_V{}={}", version.replace('.', "_"), file.display());
    }
    println!("cargo:rustc-env=SDK_PYTHON={}", python::sdk_python(&root).display());
    let sdk_js = javascript::sdk(&root);
    println!("cargo:rustc-env=SDK_JS={}", sdk_js.display());
    let example = javascript::example(&root, &sdk_js, "js-fanout");
    println!("cargo:rustc-env=EXAMPLE_JS_FANOUT={}", example.display());
    for (name, module) in
        [("sdk_js", "tests/fixtures/sdk-js/tasks.js"), ("js_fanout", "examples/js-fanout/fanout.js")]
    {
        let file = javascript::sdk_build(&root, &sdk_js, name, module);
        println!("cargo:rustc-env=COMPONENT_{}={}", name.to_uppercase(), file.display());
    }
    println!("cargo:rustc-env=AXE_JS={}", javascript::axe(&root).display());
    println!("cargo:rustc-env=FUZZ_TOOLS={}", python::fuzz_tools(&root).display());
    println!("cargo:rustc-env=S3_TOOLS={}", python::s3_tools(&root).display());
    // The movies example in both versions: v1.0 (with the bug) and v1.1.
    for (features, version) in [(&[][..], "V1_0"), (&["--features", "movies/fixed"][..], "V1_1")] {
        build(&root, &target_dir, &["movies"], features);
        let file = out.join(format!("movies-{version}.wasm"));
        std::fs::copy(out.join("movies.wasm"), &file).expect("copy the movies component");
        println!("cargo:rustc-env=COMPONENT_MOVIES_{version}={}", file.display());
    }
}

/// Compiles `tests/fixtures/<name>/component.wat` into `target_dir`.
fn compile_wat(root: &Path, target_dir: &Path, name: &str) -> PathBuf {
    let source = root.join("tests/fixtures").join(name).join("component.wat");
    let bytes = wat::parse_file(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let out = target_dir.join("wat").join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::create_dir_all(out.parent().expect("a parent")).expect("create the wat output directory");
    std::fs::write(&out, bytes).expect("write a compiled fixture");
    out
}

fn build(root: &Path, target_dir: &Path, packages: &[&str], extra: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "guest", "--target-dir"])
        .arg(target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    cmd.args(extra);
    // The outer build's flags and wrappers (clippy, coverage) are not for guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "building guest components failed; is the wasm32-wasip2 target installed?");
}
