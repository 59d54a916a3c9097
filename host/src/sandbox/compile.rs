//! Compiling a component, in-process or in a short-lived child process.
//!
//! Compiling an interpreter-sized component (a 19 MB Python one) makes
//! cranelift allocate hundreds of MiB, which the allocator keeps after the
//! compile: the host's RSS grew by that much with every such upload. With
//! [`Settings::compile_with`](super::Settings) set (the host and `sandflow
//! runner` set it to their own executable), the compile runs in a child,
//! `sandflow compile-component`, whose memory the system takes back when it
//! exits; the host only loads the result. The child builds its engine from
//! the same settings, so its code loads into the host's engine.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use wasmtime::Engine;

use super::engines::{Reset, engine_config};
use super::{Error, Settings};
use crate::sandbox::limits::Limits;

/// The hidden subcommand that compiles in a child.
pub const SUBCOMMAND: &str = "compile-component";

/// The child's exit status when the bytes are not a component it can
/// compile (the message is on its stderr).
const NOT_A_COMPONENT: i32 = 2;

/// Compiles `bytes` to this engine's precompiled code: in a child process
/// when `settings.compile_with` names the program, else here.
pub(super) fn precompile(engine: &Engine, settings: &Settings, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    match &settings.compile_with {
        Some(program) => in_child(program, settings, bytes),
        None => engine.precompile_component(bytes).map_err(|e| Error::NotAComponent(format!("{e:#}"))),
    }
}

fn in_child(program: &Path, settings: &Settings, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let spawn_failed = |e: std::io::Error| Error::Engine(format!("starting the compiler process: {e}"));
    let mut child = Command::new(program)
        .arg(SUBCOMMAND)
        .arg(settings.max_instances.to_string())
        .arg(settings.limits.memory_bytes.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_failed)?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = bytes.to_vec();
    // Written from a thread, so a child already writing its answer never
    // waits on a full pipe while this one waits to write.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().map_err(spawn_failed)?;
    let _ = writer.join();
    let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    match out.status.code() {
        Some(0) => Ok(out.stdout),
        Some(NOT_A_COMPONENT) => Err(Error::NotAComponent(message)),
        _ => Err(Error::Engine(format!("the compiler process failed ({}): {message}", out.status))),
    }
}

/// `sandflow compile-component MAX_INSTANCES MEMORY_BYTES`: reads a
/// component on stdin, writes its precompiled code on stdout.
pub fn child_main(args: &[String]) -> ExitCode {
    let Some(settings) = child_settings(args) else {
        eprintln!("usage: sandflow {SUBCOMMAND} MAX_INSTANCES MEMORY_BYTES < component > code");
        return ExitCode::FAILURE;
    };
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("reading the component: {e}");
        return ExitCode::FAILURE;
    }
    let engine = match Engine::new(&engine_config(&settings, Reset::DirtyPages)) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("wasmtime engine setup failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let code = match engine.precompile_component(&bytes) {
        Ok(code) => code,
        Err(e) => {
            eprint!("{e:#}");
            return ExitCode::from(NOT_A_COMPONENT as u8);
        }
    };
    match std::io::stdout().lock().write_all(&code) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writing the compiled code: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The settings an engine is configured from, as the parent passed them.
fn child_settings(args: &[String]) -> Option<Settings> {
    let [instances, memory] = args else { return None };
    Some(Settings {
        cache_dir: Default::default(),
        limits: Limits { memory_bytes: memory.parse().ok()?, ..Limits::default() },
        max_instances: instances.parse().ok()?,
        allow_http: Default::default(),
        max_task_types: super::MAX_TASK_TYPES,
        compile_with: None,
    })
}
