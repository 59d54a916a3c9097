//! JavaScript tools for the build script: the SDK (`guest-sdk-js`) with
//! the packages its `package-lock.json` pins (componentize-js, esbuild, and
//! for its tests jco-transpile), installed by `npm ci` once per lockfile
//! under `target/guest-tools/js-<hash>/`, and the components its own
//! `sandflow-js build` makes (`tests/fixtures/sdk-js`, `examples/js-fanout`),
//! kept under names that carry the hash of their inputs.
//!
//! The SDK is copied beside the installed `node_modules` (`…/sdk/`, linked
//! as `node_modules/sandflow`), and so are the examples (`…/examples/`), so
//! Node.js finds the packages the ordinary way for the SDK's and the
//! examples' native tests, and the source tree is never written to.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::python::{files, hash, run};

/// The SDK's directories that a copy needs (the WIT is copied, not linked).
const SDK_DIRS: &[&str] = &["src", "bin", "test", "types", "types/wit", "types/wit/interfaces"];

/// The copy of the SDK beside its installed packages; refreshed from the
/// source tree each time the build script runs.
pub fn sdk(root: &Path) -> PathBuf {
    let source = root.join("guest-sdk-js");
    let dir = npm_ci(root, &source, "js");
    let copy = dir.join("sdk");
    let _ = std::fs::remove_dir_all(&copy);
    for sub in SDK_DIRS {
        std::fs::create_dir_all(copy.join(sub)).expect("create the SDK copy");
        for file in files(&source.join(sub)) {
            std::fs::copy(&file, copy.join(sub).join(file.file_name().expect("a name")))
                .expect("copy the SDK");
        }
    }
    std::fs::create_dir_all(copy.join("wit")).expect("create the SDK's WIT copy");
    std::fs::copy(root.join("wit/task.wit"), copy.join("wit/task.wit")).expect("copy the WIT");
    std::fs::copy(source.join("package.json"), copy.join("package.json")).expect("copy package.json");
    // `import "sandflow"` from the examples' tests finds the copy.
    let link = dir.join("node_modules/sandflow");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("../sdk", &link).expect("link the SDK into node_modules");
    }
    copy
}

/// A copy of the example directory `name` (its files) beside the SDK's
/// packages, where its native tests import `sandflow`; answers its path.
pub fn example(root: &Path, sdk: &Path, name: &str) -> PathBuf {
    let copy = sdk.parent().expect("a tools directory").join("examples").join(name);
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).expect("create the example copy");
    for file in files(&root.join("examples").join(name)) {
        std::fs::copy(&file, copy.join(file.file_name().expect("a name"))).expect("copy the example");
    }
    copy
}

/// The component the SDK's build command makes of `module` (a `.js` file
/// under `root`); answers its path.
pub fn sdk_build(root: &Path, sdk: &Path, name: &str, module: &str) -> PathBuf {
    let module = root.join(module);
    let mut inputs = vec![root.join("guest-sdk-js/package-lock.json"), root.join("wit/task.wit")];
    for dir in ["src", "bin"] {
        inputs.extend(files(&sdk.join(dir)));
    }
    inputs.extend(files(module.parent().expect("a parent")));
    let out = root.join("target/guests/js").join(format!("{name}-{:016x}.wasm", hash(&inputs)));
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(out.parent().expect("a parent")).expect("create target/guests/js");
    let partial = out.with_extension("partial");
    let mut cmd = Command::new("node");
    cmd.arg(sdk.join("bin/sandflow-js.js")).arg("build").arg(&module).arg("-o").arg(&partial);
    run(&mut cmd, &format!("build {} with the JavaScript SDK", module.display()));
    std::fs::rename(&partial, &out).expect("move the JavaScript component in place");
    out
}

/// The accessibility checker the dashboard's browser tests inject
/// (`tests/browser`, axe-core at the version its lockfile pins), installed
/// by `npm ci` once per lockfile; answers the path of its script.
pub fn axe(root: &Path) -> PathBuf {
    npm_ci(root, &root.join("tests/browser"), "browser").join("node_modules/axe-core/axe.min.js")
}

/// The packages `source/package-lock.json` pins, installed by `npm ci` once
/// per lockfile into `target/guest-tools/<name>-<hash>/`; answers that
/// directory.
fn npm_ci(root: &Path, source: &Path, name: &str) -> PathBuf {
    let lock = source.join("package-lock.json");
    let dir =
        root.join("target/guest-tools").join(format!("{name}-{:016x}", hash(std::slice::from_ref(&lock))));
    let done = dir.join("installed");
    if !done.exists() {
        std::fs::create_dir_all(&dir).expect("create the JavaScript tools directory");
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(source.join(file), dir.join(file)).expect("copy the package files");
        }
        run(
            Command::new("npm")
                .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
            &format!("install the packages of {} with npm ci (is Node.js installed?)", source.display()),
        );
        std::fs::write(&done, b"").expect("mark the packages installed");
    }
    dir
}
