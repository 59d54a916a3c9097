//! What tasks record besides their outcome: log lines and trace spans.

use serde::{Deserialize, Serialize};

/// Severity of a log line.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Fine-grained detail.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal progress.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// Every level, lowest first.
    pub const ALL: [LogLevel; 5] =
        [LogLevel::Trace, LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error];

    /// The lowercase name used by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One log line of a task attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// When it was recorded (Unix ms).
    pub time_ms: u64,
    /// The attempt that recorded it.
    pub attempt: u32,
    /// Its severity.
    pub level: LogLevel,
    /// The message.
    pub message: String,
    /// Structured key/value fields.
    pub fields: Vec<(String, String)>,
}

/// One trace span of a task attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanEntry {
    /// Its id within the attempt.
    pub id: u64,
    /// The enclosing span, if any.
    pub parent: Option<u64>,
    /// The attempt that recorded it.
    pub attempt: u32,
    /// Its name.
    pub name: String,
    /// Its attributes.
    pub attributes: Vec<(String, String)>,
    /// When it opened (Unix ms).
    pub start_ms: u64,
    /// When it closed (Unix ms); the attempt's end when never closed.
    pub end_ms: u64,
}
