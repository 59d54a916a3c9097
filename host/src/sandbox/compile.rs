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

/// Most of the child's stderr kept for its error message.
const MESSAGE_BYTES: u64 = 64 << 10;

/// Compiles `bytes` to this engine's precompiled code, written to `out` as
/// it comes: in a child process when `settings.compile_with` names the
/// program, else here.
pub(super) fn precompile(
    engine: &Engine,
    settings: &Settings,
    bytes: &[u8],
    out: &mut dyn Write,
) -> Result<(), Error> {
    match &settings.compile_with {
        Some(program) => in_child(program, settings, bytes, out),
        None => {
            let code =
                engine.precompile_component(bytes).map_err(|e| Error::NotAComponent(format!("{e:#}")))?;
            Ok(out.write_all(&code)?)
        }
    }
}

/// Runs the compiler child: `bytes` to its stdin and its stdout to `out`,
/// each from a thread of its own, so neither side ever waits on a full
/// pipe, and nothing of either is held here whole.
fn in_child(program: &Path, settings: &Settings, bytes: &[u8], out: &mut dyn Write) -> Result<(), Error> {
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
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (copied, message) = std::thread::scope(|s| {
        // The child sees the end of its input when `stdin` drops.
        s.spawn(move || stdin.write_all(bytes));
        let message = s.spawn(move || message_of(stderr));
        let copied = std::io::copy(&mut stdout, out);
        if copied.is_err() {
            // Nothing reads its answer any more: stop it, or it would wait
            // on the full pipe for ever.
            let _ = child.kill();
        }
        (copied, message.join().unwrap_or_default())
    });
    let status = child.wait().map_err(spawn_failed)?;
    copied?;
    match status.code() {
        Some(0) => Ok(()),
        Some(NOT_A_COMPONENT) => Err(Error::NotAComponent(message)),
        _ => Err(Error::Engine(format!("the compiler process failed ({status}): {message}"))),
    }
}

/// The first [`MESSAGE_BYTES`] of the child's stderr, read to its end.
fn message_of(stderr: impl Read) -> String {
    let mut stderr = std::io::BufReader::new(stderr);
    let mut kept = Vec::new();
    let _ = (&mut stderr).take(MESSAGE_BYTES).read_to_end(&mut kept);
    let _ = std::io::copy(&mut stderr, &mut std::io::sink());
    String::from_utf8_lossy(&kept).trim().to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A full disk under the artifact: the copy fails, the child (here
    /// `yes`, which would write for ever) is stopped, and the error says
    /// why, instead of the compile waiting on a full pipe.
    #[test]
    fn a_full_disk_stops_the_compiler_child_and_is_the_error() {
        let settings = child_settings(&["2".into(), "1048576".into()]).unwrap();
        let mut full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let failed = in_child(Path::new("yes"), &settings, b"component", &mut full);
        match failed {
            Err(Error::Artifact(e)) => assert_eq!(e.raw_os_error(), Some(28), "{e}"),
            other => panic!("expected the disk's error, got {other:?}"),
        }
    }

    #[test]
    fn a_refusal_is_the_childs_message() {
        let settings = child_settings(&["2".into(), "1048576".into()]).unwrap();
        let program = Path::new("sh");
        // `sh compile-component ...` finds no such script: it fails (with
        // 2 or 127, by shell) and says so on stderr.
        match in_child(program, &settings, b"", &mut std::io::sink()) {
            Err(Error::Engine(message) | Error::NotAComponent(message)) => {
                assert!(message.contains("compile-component"), "{message}")
            }
            other => panic!("expected the child's failure, got {other:?}"),
        }
    }
}
