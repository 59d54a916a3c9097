//! `GET /v1/jobs/{id}/spans`: the trace of a job: one span for the job, one
//! for each task attempt (from the task's start and finish times and the
//! times kept with each failed attempt's error, so running a task writes no
//! extra record), and the spans attempts opened, those without a parent
//! nested under their attempt's.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::error::ErrorBody;
use super::extract::{Path, Query};
use super::views::timestamp;
use super::{ApiError, AppState};
use crate::model::{SpanEntry, Task, TaskId, TaskKey, Usage, guest_span_id, now_ms};

/// Most spans in one answer.
const MAX_SPANS: usize = 10_000;

/// Filters of `GET /v1/jobs/{id}/spans`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SpanFilter {
    /// Only this task's spans.
    #[param(format = Uuid)]
    pub task: Option<String>,
}

/// One span.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpanView {
    /// The task, absent for the job's span.
    pub task: Option<String>,
    pub attempt: Option<u32>,
    /// Its id within the attempt; 0 is the attempt's own span.
    pub id: u64,
    /// Its span id in exported traces (16 hex digits).
    pub span_id: String,
    /// The enclosing span within the attempt (the job's span encloses the
    /// attempts).
    pub parent: Option<u64>,
    pub name: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub start: String,
    pub end: String,
    pub duration_ms: u64,
}

impl SpanView {
    fn new(task: Option<&TaskKey>, s: &SpanEntry, job_span: [u8; 8]) -> Self {
        let span_id = task.map_or(job_span, |k| guest_span_id(k.task, s.attempt, s.id));
        SpanView {
            span_id: hex::encode(span_id),
            task: task.map(|k| k.task.to_string()),
            attempt: task.map(|_| s.attempt),
            id: s.id,
            parent: s.parent,
            name: s.name.clone(),
            attributes: s.attributes.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect(),
            start: timestamp(s.start_ms),
            end: timestamp(s.end_ms),
            duration_ms: s.end_ms.saturating_sub(s.start_ms),
        }
    }
}

/// A job's trace.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TraceView {
    /// The trace id of the job's exported spans (32 hex digits).
    pub trace_id: String,
    /// From submission to the last attempt's end (now, while running).
    pub job: SpanView,
    /// Attempts' spans and what they opened, by task and attempt.
    pub spans: Vec<SpanView>,
    /// Whether spans past the first 10,000 were left out.
    pub truncated: bool,
}

/// `GET /v1/jobs/{id}/spans`.
#[utoipa::path(get, path = "/v1/jobs/{id}/spans", tag = "jobs", params(("id" = String, Path, format = Uuid, description = "the job id"), SpanFilter),
    responses((status = 200, description = "the job's trace", body = TraceView),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("admin" = [])))]
pub async fn spans(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(filter): Query<SpanFilter>,
) -> Result<axum::Json<TraceView>, ApiError> {
    let job = super::jobs::find_job(&state, &id)?;
    let task = filter.task.as_deref().map(str::parse::<TaskId>).transpose()?;
    let (guest, truncated) = state.store.spans_of(job.id, task, MAX_SPANS)?;
    // One task's record when filtered; every task's otherwise.
    let tasks = match task {
        Some(id) => state.store.task(TaskKey { job: job.id, task: id })?.into_iter().collect(),
        None => state.store.tasks_of(job.id)?,
    };
    let mut spans: Vec<(TaskKey, SpanEntry)> =
        tasks.iter().flat_map(|t| attempt_spans(t).into_iter().map(|s| (t.key, s))).collect();
    spans.extend(guest.into_iter().map(|(k, s)| (k, SpanEntry { parent: s.parent.or(Some(0)), ..s })));
    spans.sort_by_key(|(k, s)| (k.task, s.attempt, s.id));
    let last = spans.iter().map(|(_, s)| s.end_ms).max();
    let end_ms = if job.has_ended() { last.unwrap_or_else(now_ms) } else { now_ms() };
    let job_span = SpanEntry {
        id: 0,
        parent: None,
        attempt: 0,
        name: format!("job {}", job.name),
        attributes: vec![("job".into(), job.id.to_string()), ("state".into(), job.state().as_str().into())],
        start_ms: job.id.created_ms(),
        end_ms: end_ms.max(job.id.created_ms()),
    };
    let trace = job.trace();
    Ok(axum::Json(TraceView {
        trace_id: hex::encode(trace.trace_id),
        job: SpanView::new(None, &job_span, trace.span_id),
        spans: spans.iter().take(MAX_SPANS).map(|(k, s)| SpanView::new(Some(k), s, trace.span_id)).collect(),
        truncated: truncated || spans.len() > MAX_SPANS,
    }))
}

/// The spans of `task`'s attempts (id 0, parent of each attempt's own
/// spans): the latest from the task's start and finish times, earlier ones
/// from the times kept with their errors.
fn attempt_spans(task: &Task) -> Vec<SpanEntry> {
    let span = |attempt: u32,
                (start_ms, end_ms): (u64, u64),
                state: &str,
                error: Option<&str>,
                usage: Option<Usage>| {
        let mut attributes =
            vec![("task_type".into(), task.def.task_type.to_string()), ("state".into(), state.into())];
        attributes.extend(error.map(|e| ("error".into(), e.into())));
        if let Some(u) = usage {
            attributes.push(("cpu_us".into(), u.cpu_us.to_string()));
            attributes.push(("peak_memory_bytes".into(), u.peak_memory_bytes.to_string()));
        }
        SpanEntry {
            id: 0,
            parent: None,
            attempt,
            name: format!("attempt {attempt}"),
            attributes,
            start_ms,
            end_ms,
        }
    };
    let mut spans: Vec<SpanEntry> = task
        .errors
        .iter()
        .filter(|e| e.attempt < task.status.attempt)
        .filter_map(|e| Some(span(e.attempt, e.ran?, "failed", Some(&e.message), e.usage)))
        .collect();
    if let Some(start_ms) = task.status.started_ms {
        let end_ms = task.status.finished_ms.filter(|f| *f >= start_ms).unwrap_or_else(now_ms);
        let error =
            task.errors.iter().rfind(|e| e.attempt == task.status.attempt).map(|e| e.message.as_str());
        let state = if error.is_some() { "failed" } else { task.status.state.as_str() };
        let usage = task.status.usage.filter(|_| task.status.finished_ms.is_some());
        spans.push(span(task.status.attempt, (start_ms, end_ms), state, error, usage));
    }
    spans
}
