//! Turns what the host recorded into OTLP messages: a job's span, an
//! attempt's span with the spans it opened, and its log records. Span ids
//! come from `model::trace`, so the tree is the job's: job span, root task
//! attempt, its subtasks' attempts, the spans each attempt opened.

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};

use crate::model::{Job, JobState, JobTrace, LogEntry, LogLevel, SpanEntry, attempt_span_id, guest_span_id};
use crate::scheduler::FinishedAttempt;

/// The instrumentation scope of everything the host exports.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "sandflow".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// A string attribute.
pub fn attr(key: &str, value: impl Into<String>) -> KeyValue {
    let value = Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) });
    KeyValue { key: key.into(), value, ..Default::default() }
}

fn nanos(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

fn status(error: Option<&str>) -> Option<Status> {
    error.map(|m| Status { message: m.into(), code: StatusCode::Error as i32 })
}

/// A span of `trace` with the given ids and times.
fn span(trace: &JobTrace, ids: ([u8; 8], Option<[u8; 8]>), name: String, times: (u64, u64)) -> Span {
    Span {
        trace_id: trace.trace_id.to_vec(),
        span_id: ids.0.to_vec(),
        parent_span_id: ids.1.map(|p| p.to_vec()).unwrap_or_default(),
        flags: u32::from(trace.flags),
        name,
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: nanos(times.0),
        end_time_unix_nano: nanos(times.1.max(times.0)),
        ..Default::default()
    }
}

/// The job's span, from submission to `end_ms`, under the client's span.
pub fn job_span(job: &Job, end_ms: u64) -> Span {
    let trace = job.trace();
    let mut s = span(
        &trace,
        (trace.span_id, trace.parent_id),
        format!("job {}", job.name),
        (job.id.created_ms(), end_ms),
    );
    s.attributes = vec![
        attr("sandflow.job.id", job.id.to_string()),
        attr("sandflow.job.state", job.state().as_str()),
        attr("sandflow.cluster", job.cluster.clone()),
    ];
    if job.state() == JobState::Failed {
        s.status = status(Some("a task failed"));
    }
    s
}

/// The attempt's own span, under its parent task's (computing) attempt, or
/// under the job's span for the root task.
pub fn attempt_span(trace: &JobTrace, a: &FinishedAttempt, parent: Option<[u8; 8]>) -> Span {
    let id = attempt_span_id(a.key.task, a.attempt);
    let times = (a.started_ms, a.finished_ms);
    let mut s = span(trace, (id, Some(parent.unwrap_or(trace.span_id))), a.task_type.clone(), times);
    s.attributes = vec![
        attr("sandflow.job.id", a.key.job.to_string()),
        attr("sandflow.task.id", a.key.task.to_string()),
        attr("sandflow.task.attempt", a.attempt.to_string()),
    ];
    if let Some(u) = a.usage {
        s.attributes.push(attr("sandflow.attempt.cpu_us", u.cpu_us.to_string()));
        s.attributes.push(attr("sandflow.attempt.peak_memory_bytes", u.peak_memory_bytes.to_string()));
    }
    s.status = status(a.error.as_deref());
    s
}

/// A span the attempt opened; one without a parent is the attempt's child.
pub fn guest_span(trace: &JobTrace, a: &FinishedAttempt, g: &SpanEntry) -> Span {
    let (task, attempt) = (a.key.task, a.attempt);
    let ids = (guest_span_id(task, attempt, g.id), Some(guest_span_id(task, attempt, g.parent.unwrap_or(0))));
    let mut s = span(trace, ids, g.name.clone(), (g.start_ms, g.end_ms));
    s.attributes = g.attributes.iter().map(|(k, v)| attr(k, v.clone())).collect();
    s
}

/// A log record of the attempt, in the attempt's span.
pub fn log_record(trace: &JobTrace, a: &FinishedAttempt, entry: &LogEntry) -> LogRecord {
    let (number, text) = severity(entry.level);
    let mut attributes = vec![
        attr("sandflow.job.id", a.key.job.to_string()),
        attr("sandflow.task.id", a.key.task.to_string()),
        attr("sandflow.task.attempt", a.attempt.to_string()),
    ];
    attributes.extend(entry.fields.iter().map(|(k, v)| attr(k, v.clone())));
    LogRecord {
        time_unix_nano: nanos(entry.time_ms),
        observed_time_unix_nano: nanos(entry.time_ms),
        severity_number: number as i32,
        severity_text: text.into(),
        body: Some(AnyValue { value: Some(any_value::Value::StringValue(entry.message.clone())) }),
        attributes,
        flags: u32::from(trace.flags),
        trace_id: trace.trace_id.to_vec(),
        span_id: attempt_span_id(a.key.task, a.attempt).to_vec(),
        ..Default::default()
    }
}

fn severity(level: LogLevel) -> (SeverityNumber, &'static str) {
    match level {
        LogLevel::Trace => (SeverityNumber::Trace, "TRACE"),
        LogLevel::Debug => (SeverityNumber::Debug, "DEBUG"),
        LogLevel::Info => (SeverityNumber::Info, "INFO"),
        LogLevel::Warn => (SeverityNumber::Warn, "WARN"),
        LogLevel::Error => (SeverityNumber::Error, "ERROR"),
    }
}
