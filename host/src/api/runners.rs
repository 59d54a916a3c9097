//! The runner protocol: how a runner outside this process claims a task,
//! keeps its lease, and reports the outcome. Every report names its attempt;
//! a report for an attempt that is no longer current is refused with 409.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ErrorBody;
use super::extract::Json;
use super::views::TaskTypeView;
use super::{ApiError, AppState};
use crate::model::{
    JobId, LogEntry, LogLevel, SubtaskSpec, TaskId, TaskKey, TaskType, now_ms, truncate_display,
};
use crate::runner::registry_check;
use crate::scheduler::{Assignment, Report};

/// Longest long-poll of a claim.
const MAX_WAIT_MS: u64 = 60_000;

/// The body of `POST /v1/runners/claim`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The cluster the runner serves.
    pub cluster: String,
    /// How long to wait for a task, in ms (at most 60000; default 30000).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// A claimed task.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssignmentView {
    pub job: String,
    pub task: String,
    pub task_type: TaskTypeView,
    /// The sha256 of the module to run.
    pub module: String,
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    /// The attempt number: the fencing token of every later call.
    pub attempt: u32,
    /// Extend the lease well before this many ms pass.
    pub lease_ms: u64,
}

impl From<&Assignment> for AssignmentView {
    fn from(a: &Assignment) -> Self {
        AssignmentView {
            job: a.key.job.to_string(),
            task: a.key.task.to_string(),
            task_type: (&a.task_type).into(),
            module: a.module.to_string(),
            input: serde_json::from_str(&a.input).unwrap_or(serde_json::Value::Null),
            attempt: a.attempt,
            lease_ms: a.lease_ttl.as_millis() as u64,
        }
    }
}

/// `POST /v1/runners/claim`: 200 with a task, or 204 when none became ready
/// within `wait_ms`.
#[utoipa::path(post, path = "/v1/runners/claim", tag = "runners", request_body = ClaimRequest,
    responses((status = 200, description = "a claimed task", body = AssignmentView),
        (status = 204, description = "no task became ready in time"), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("runner" = [])))]
pub async fn claim(
    State(state): State<AppState>,
    Json(body): Json<ClaimRequest>,
) -> Result<Response, ApiError> {
    crate::model::check_cluster(&body.cluster).map_err(|e| ApiError::unprocessable("invalid_cluster", e))?;
    let wait = Duration::from_millis(body.wait_ms.unwrap_or(30_000).min(MAX_WAIT_MS));
    match tokio::time::timeout(wait, state.scheduler.claim(&body.cluster)).await {
        Ok(assignment) => Ok(axum::Json(AssignmentView::from(&assignment?)).into_response()),
        Err(_) => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Names one attempt.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptRef {
    pub job: String,
    pub task: String,
    pub attempt: u32,
}

fn task_key(job: &str, task: &str) -> Result<TaskKey, ApiError> {
    Ok(TaskKey { job: job.parse::<JobId>()?, task: task.parse::<TaskId>()? })
}

/// The answer of `POST /v1/runners/extend`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Extended {
    /// The lease now lasts this many ms.
    pub lease_ms: u64,
}

/// `POST /v1/runners/extend`: renews an attempt's lease; 409 when the attempt
/// is no longer current.
#[utoipa::path(post, path = "/v1/runners/extend", tag = "runners", request_body = AttemptRef,
    responses((status = 200, description = "the lease was extended", body = Extended), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("runner" = [])))]
pub async fn extend(
    State(state): State<AppState>,
    Json(body): Json<AttemptRef>,
) -> Result<axum::Json<Extended>, ApiError> {
    let key = task_key(&body.job, &body.task)?;
    let ttl = state.scheduler.extend(key, body.attempt).await?;
    Ok(axum::Json(Extended { lease_ms: ttl.as_millis() as u64 }))
}

/// A subtask in a report.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubtaskBody {
    pub task_type: TaskTypeView,
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    #[serde(default)]
    pub depends_on: Vec<u32>,
    #[serde(default)]
    pub max_retries: u32,
    #[serde(default)]
    pub cluster: Option<String>,
}

/// A log line in a report.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogBody {
    #[schema(value_type = String, example = "info")]
    pub level: LogLevel,
    pub message: String,
    #[serde(default)]
    pub fields: Vec<(String, String)>,
}

/// The body of `POST /v1/runners/report`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    pub job: String,
    pub task: String,
    pub attempt: u32,
    /// Present when the attempt failed.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub subtasks: Vec<SubtaskBody>,
    #[serde(default)]
    pub display: Option<String>,
    #[serde(default)]
    pub logs: Vec<LogBody>,
    /// The attempt was interrupted because its job was force-canceled; it
    /// fails without using a retry.
    #[serde(default)]
    pub canceled: bool,
}

fn subtask(state: &AppState, s: SubtaskBody) -> Result<SubtaskSpec, ApiError> {
    let bad = |e: String| ApiError::unprocessable("invalid_subtask", e);
    let task_type = TaskType::new(&s.task_type.name, &s.task_type.version).map_err(|e| bad(e.to_string()))?;
    registry_check(&state.scheduler)(&task_type, s.cluster.as_deref()).map_err(bad)?;
    Ok(SubtaskSpec {
        task_type,
        input: s.input.to_string(),
        depends_on: s.depends_on,
        max_retries: s.max_retries,
        cluster: s.cluster,
    })
}

/// `POST /v1/runners/report`: records an attempt's outcome; 409 when the
/// attempt is no longer current (its lease expired or it was superseded).
#[utoipa::path(post, path = "/v1/runners/report", tag = "runners", request_body = ReportBody,
    responses((status = 200, description = "the outcome is on disk"), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("runner" = [])))]
pub async fn report(
    State(state): State<AppState>,
    Json(body): Json<ReportBody>,
) -> Result<StatusCode, ApiError> {
    let key = task_key(&body.job, &body.task)?;
    let limits = state.sandbox.limits();
    if body.subtasks.len() > limits.max_subtasks || body.logs.len() > limits.max_log_lines {
        return Err(ApiError::unprocessable(
            "limit_exceeded",
            "the report holds more subtasks or log lines than allowed",
        ));
    }
    let outcome = match body.error {
        Some(e) => Err(e),
        None => Ok(body.subtasks.into_iter().map(|s| subtask(&state, s)).collect::<Result<Vec<_>, _>>()?),
    };
    let logs = body
        .logs
        .into_iter()
        .map(|l| LogEntry {
            time_ms: now_ms(),
            attempt: body.attempt,
            level: l.level,
            message: l.message,
            fields: l.fields,
        })
        .collect();
    let display = body.display.as_deref().map(truncate_display);
    let report = Report {
        key,
        attempt: body.attempt,
        outcome,
        display,
        logs,
        spans: Vec::new(),
        canceled: body.canceled,
    };
    state.scheduler.report(report).await?;
    Ok(StatusCode::OK)
}
