//! How an attempt ended, in words: the guest's own error (truncated to its
//! bound), a bound it went past, its deadline, a forced cancel, or a trap;
//! for a trap, what the guest printed to stderr says why (a Rust panic's
//! message, the last line of a Python traceback or of a JavaScript error),
//! followed by the last few lines it printed.

use std::time::Duration;

use wasmtime::Trap;

use super::execute::Ended;
use super::host::Canceled;
use super::limits::Limits;
use super::output::Capture;
use crate::model::{OverBound, Record, SubtaskSpec};

/// Lines of stderr quoted with a trap.
const STDERR_TAIL: usize = 5;

/// An attempt's captured stdout and stderr.
pub(super) struct Captured {
    pub(super) stdout: Capture,
    pub(super) stderr: Capture,
}

impl Captured {
    /// Captures keeping at most `cap` bytes each.
    pub(super) fn new(cap: usize) -> Self {
        Captured { stdout: Capture::new(cap), stderr: Capture::new(cap) }
    }
}

/// The attempt's outcome: its subtasks (its checked output is then kept in
/// `record`), or why it failed.
pub(super) fn outcome(
    ended: Ended,
    record: &mut Record,
    captured: &Captured,
    limits: &Limits,
) -> Result<Vec<SubtaskSpec>, String> {
    match ended {
        Ended::Returned(Ok(Ok(output))) => {
            record.set_output(output).map(|()| std::mem::take(&mut record.subtasks))
        }
        // A guest that failed after its output was cut fails for that
        // reason, whatever it says (typically a broken pipe).
        Ended::Returned(Ok(Err(message))) => Err(limits.bounds.error(&match overflow(captured, limits) {
            Some(cut) => format!("{cut} (the task then failed: {message})"),
            None => message,
        })),
        Ended::Returned(Err(e)) => Err(limits.bounds.error(&describe_trap(&e, captured, limits))),
        Ended::TimedOut => Err(format!("timed out after {}", human(limits.timeout))),
        Ended::Canceled => Err("canceled".to_owned()),
    }
}

/// A readable message for an attempt that trapped or went past a bound.
fn describe_trap(e: &wasmtime::Error, captured: &Captured, limits: &Limits) -> String {
    if let Some(bound) = e.downcast_ref::<OverBound>() {
        return bound.0.clone();
    }
    if e.downcast_ref::<Canceled>().is_some() {
        return "canceled".to_owned();
    }
    if let Some(Trap::StackOverflow) = e.downcast_ref::<Trap>() {
        return "stack overflow: the task's call stack was exhausted".into();
    }
    if let Some(cut) = overflow(captured, limits) {
        return cut;
    }
    let kind = match e.downcast_ref::<Trap>() {
        Some(trap) => format!("trapped: {trap}"),
        None => format!("failed: {}", e.root_cause()),
    };
    let stderr = captured.stderr.contents();
    let stderr = String::from_utf8_lossy(&stderr);
    let lines: Vec<&str> = stderr.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
    let cause = python_exception(&lines).or_else(|| rust_panic(&lines));
    let Some(cause) = cause.or_else(|| lines.last().map(|l| (*l).to_owned())) else {
        return kind;
    };
    if lines.len() == 1 {
        return format!("{cause}\n\n({kind})");
    }
    let tail = lines[lines.len().saturating_sub(STDERR_TAIL)..].join("\n");
    format!("{cause}\n\n({kind}; the last lines of its stderr:)\n{tail}")
}

/// What says which captured stream went past its limit, if one did.
fn overflow(captured: &Captured, limits: &Limits) -> Option<String> {
    let streams = [("stdout", &captured.stdout), ("stderr", &captured.stderr)];
    let (name, _) = streams.into_iter().find(|(_, pipe)| pipe.overflowed())?;
    Some(format!("{name} exceeded the capture limit of {} bytes", limits.output_bytes))
}

/// The exception of the last Python traceback in `lines`: the line that ends
/// it (`ValueError: ...`), the first after its header that is not indented.
fn python_exception(lines: &[&str]) -> Option<String> {
    let start = lines.iter().rposition(|l| l.starts_with("Traceback (most recent call last):"))?;
    lines[start + 1..].iter().find(|l| !l.starts_with(' ')).map(|l| (*l).to_owned())
}

/// The message of a Rust panic in `lines`: `panicked at FILE:LINE:COL: MSG`
/// (the standard library prints the message on the next line).
fn rust_panic(lines: &[&str]) -> Option<String> {
    let (i, line) = lines.iter().enumerate().rev().find(|(_, l)| l.contains("panicked at "))?;
    let at = &line[line.find("panicked at ")?..];
    let message: Vec<&str> =
        lines[i + 1..].iter().take_while(|l| !l.starts_with("note: ")).copied().collect();
    Some(match (at.strip_suffix(':'), message.is_empty()) {
        (Some(at), false) => format!("{at}: {}", message.join("\n")),
        _ => at.to_owned(),
    })
}

fn human(d: Duration) -> String {
    if d.as_secs() > 0 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_panic_reads_as_its_message() {
        let new = [
            "thread '<unnamed>' (1) panicked at src/lib.rs:60:9:",
            "boom",
            "note: run with `RUST_BACKTRACE=1`",
        ];
        assert_eq!(rust_panic(&new).as_deref(), Some("panicked at src/lib.rs:60:9: boom"));
        let old = ["thread '<unnamed>' panicked at 'boom', src/lib.rs:60:9"];
        assert_eq!(rust_panic(&old).as_deref(), Some("panicked at 'boom', src/lib.rs:60:9"));
        assert_eq!(rust_panic(&["Traceback (most recent call last):", "ValueError: boom"]), None);
    }

    #[test]
    fn a_python_exception_reads_as_its_last_line() {
        let stderr = [
            "Traceback (most recent call last):",
            "  File \"/0/app.py\", line 34, in execute",
            "ValueError: the data source refused the request",
            "thread '<unnamed>' (1) panicked at runtime/src/lib.rs:1293:29:",
            "Python function threw an unexpected exception",
        ];
        assert_eq!(
            python_exception(&stderr).as_deref(),
            Some("ValueError: the data source refused the request")
        );
    }
}
