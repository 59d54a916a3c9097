//! Compiles the example and fixture crates to `wasm32-wasip2` components and
//! tells the tests where they are (`COMPONENT_<NAME>` variables).
//!
//! The components are built by a nested cargo with its own target directory,
//! so it never waits on the lock of the build that runs this script.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest crates the tests use.
const GUESTS: &[&str] = &["fanout", "pipeline", "probe", "hostile", "bad-import"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.parent().expect("tests/ lives in the workspace").to_path_buf();
    for dir in ["wit", "guest-sdk", "examples", "tests/fixtures", "Cargo.toml", "Cargo.lock"] {
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
    // The movies example in both versions: v1.0 (with the bug) and v1.1.
    for (features, version) in [(&[][..], "V1_0"), (&["--features", "movies/fixed"][..], "V1_1")] {
        build(&root, &target_dir, &["movies"], features);
        let file = out.join(format!("movies-{version}.wasm"));
        std::fs::copy(out.join("movies.wasm"), &file).expect("copy the movies component");
        println!("cargo:rustc-env=COMPONENT_MOVIES_{version}={}", file.display());
    }
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
