//! Job routes: submit, show, list tasks, read logs.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::error::ErrorBody;
use super::extract::{Json, Path, Query};
use super::roots::{RootBody, backoff_of, more_roots};
use super::views::{JobView, LogView};
use super::{ApiError, AppState};
use crate::model::{
    Job, JobId, LogEntry, LogLevel, MAX_PRIORITY, MIN_PRIORITY, ParseTraceParentError, TaskId, TaskKey,
    TaskType, TraceParent, check_cluster,
};
use crate::protocol::BackoffBody;
use crate::scheduler::JobSpec;

/// Longest job name, in characters.
const MAX_JOB_NAME: usize = 256;
/// Longest idempotency key, in characters.
const MAX_IDEMPOTENCY_KEY: usize = 256;

/// The body of `POST /v1/jobs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// The job's name, 1 to 256 characters.
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// The root task type, `Name` or `Name@vX.Y`: one an uploaded module
    /// implements.
    #[schema(min_length = 1)]
    pub task: String,
    /// The root task's input.
    #[schema(value_type = Value)]
    pub input: serde_json::Value,
    /// The cluster to run the root task on; `default` when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9-]{1,100}$")]
    pub cluster: Option<String>,
    /// Retries of the root task.
    #[serde(default)]
    pub max_retries: u32,
    /// Its priority, -10 to 10 (default 0): the ready tasks of jobs with a
    /// higher one start first.
    #[serde(default)]
    #[schema(minimum = -10, maximum = 10)]
    pub priority: i8,
    /// The delay before each retry of the root task; none retries at once.
    #[serde(default)]
    pub backoff: Option<BackoffBody>,
    /// Further root tasks, started with the first (at most 999): the job
    /// ends when all of them and their subtasks have. The job's output is
    /// the first root's.
    #[serde(default)]
    #[schema(max_items = 999)]
    pub more_roots: Vec<RootBody>,
    /// The job starts no earlier than this RFC 3339 time (at most a year
    /// ahead); at once when absent or past.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub not_before: Option<String>,
    /// A repeat with the same key returns the first job (1 to 256 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub idempotency_key: Option<String>,
    /// A W3C `traceparent` the job's trace continues (its spans are exported
    /// under it). A `traceparent` header is used when this is absent.
    #[serde(default)]
    #[schema(pattern = "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")]
    pub traceparent: Option<String>,
}

/// 422 for a cluster that does not exist.
pub fn unknown_cluster(slug: &str) -> ApiError {
    ApiError::unprocessable(
        "unknown_cluster",
        format!("unknown cluster {slug}: create it first (POST /v1/clusters)"),
    )
}

/// The job named by a path segment: 400 for a malformed id, 404 for an unknown one.
pub(super) fn find_job(state: &AppState, raw: &str) -> Result<Job, ApiError> {
    let id: JobId = raw.parse()?;
    state.store.job(id)?.ok_or_else(|| ApiError::not_found(format!("job {id} not found")))
}

/// The checks of a root task, made for every job submitted and every
/// automation created: its type is one a module implements, its cluster
/// exists, its input is within the input bound. Answers the type, the
/// cluster (`default` when none) and the input as JSON text.
pub(super) fn check_root(
    state: &AppState,
    task: &str,
    cluster: Option<String>,
    input: &serde_json::Value,
) -> Result<(TaskType, String, String), ApiError> {
    let task_type =
        TaskType::parse(task).map_err(|e| ApiError::unprocessable("invalid_task_type", e.to_string()))?;
    if !state.scheduler.resolves(&task_type) {
        return Err(ApiError::unprocessable(
            "unknown_task_type",
            format!("unknown task type {task_type}: no uploaded module implements a compatible version"),
        ));
    }
    let cluster = cluster.unwrap_or_else(|| "default".to_owned());
    check_cluster(&cluster).map_err(|e| ApiError::unprocessable("invalid_cluster", e))?;
    if !state.scheduler.has_cluster(&cluster) {
        return Err(unknown_cluster(&cluster));
    }
    let input = input.to_string();
    let limit = state.sandbox.limits().bounds.input_bytes;
    if input.len() > limit {
        return Err(ApiError::unprocessable(
            "input_too_large",
            format!("input of {} bytes exceeds the limit of {limit} bytes", input.len()),
        ));
    }
    Ok((task_type, cluster, input))
}

/// A job's name is 1 to [`MAX_JOB_NAME`] characters (an automation's too:
/// its jobs take its name).
pub(super) fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > MAX_JOB_NAME {
        return Err(ApiError::unprocessable(
            "invalid_name",
            format!("job name must be 1 to {MAX_JOB_NAME} characters"),
        ));
    }
    Ok(())
}

fn validate(state: &AppState, body: SubmitJob, header: Option<TraceParent>) -> Result<JobSpec, ApiError> {
    check_name(&body.name)?;
    let (task_type, cluster, input) = check_root(state, &body.task, body.cluster, &body.input)?;
    if body.idempotency_key.as_ref().is_some_and(|k| k.is_empty() || k.chars().count() > MAX_IDEMPOTENCY_KEY)
    {
        return Err(ApiError::unprocessable(
            "invalid_idempotency_key",
            "idempotency_key must be 1 to 256 characters",
        ));
    }
    let traceparent = match body.traceparent.as_deref() {
        Some(t) => Some(t.parse().map_err(|e: ParseTraceParentError| {
            ApiError::unprocessable("invalid_traceparent", e.to_string())
        })?),
        None => header,
    };
    let backoff = backoff_of(body.backoff)?;
    let more_roots = more_roots(state, body.more_roots, &cluster)?;
    let not_before_ms = body.not_before.as_deref().map(not_before).transpose()?;
    if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&body.priority) {
        return Err(ApiError::unprocessable(
            "invalid_priority",
            format!("priority must be {MIN_PRIORITY} to {MAX_PRIORITY}, got {}", body.priority),
        ));
    }
    Ok(JobSpec {
        priority: body.priority,
        traceparent,
        backoff,
        not_before_ms,
        automation: None,
        more_roots,
        name: body.name,
        task_type,
        input,
        cluster,
        max_retries: body.max_retries,
        idempotency_key: body.idempotency_key,
    })
}

/// Longest a job may be delayed: a year, in ms.
const MAX_DELAY_MS: u64 = 366 * 86_400_000;

/// A `not_before` time as Unix ms: RFC 3339, at most a year ahead.
fn not_before(text: &str) -> Result<u64, ApiError> {
    let invalid = |why: String| ApiError::unprocessable("invalid_not_before", why);
    let at: jiff::Timestamp =
        text.parse().map_err(|e| invalid(format!("not_before `{text}` is not an RFC 3339 time: {e}")))?;
    let ms = u64::try_from(at.as_millisecond()).unwrap_or(0);
    if ms > crate::model::now_ms() + MAX_DELAY_MS {
        return Err(invalid(format!("not_before `{text}` is more than a year ahead")));
    }
    Ok(ms)
}

/// `POST /v1/jobs`: 201 with the new job once it is on disk; 200 with the
/// existing job for a repeated idempotency key.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", request_body = SubmitJob,
    responses((status = 201, description = "the new job, on disk", body = JobView),
        (status = 200, description = "the job an earlier submission with the same idempotency key made", body = JobView), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("admin" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<SubmitJob>,
) -> Result<(StatusCode, axum::Json<JobView>), ApiError> {
    submit_checked(&state, body, header_traceparent(&headers)).await
}

/// Checks a submission and submits it: 201 with the new job once it is on
/// disk, 200 with the existing one for a repeated idempotency key. Every
/// way of making a job (submit, clone) goes through here.
pub(super) async fn submit_checked(
    state: &AppState,
    body: SubmitJob,
    header: Option<TraceParent>,
) -> Result<(StatusCode, axum::Json<JobView>), ApiError> {
    let spec = validate(state, body, header)?;
    let submitted = state.scheduler.submit(spec).await?;
    let status = if submitted.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(JobView::from(&submitted.job))))
}

/// The `traceparent` header's context; an invalid one is ignored, as the
/// W3C specification asks of a receiver (the job starts a trace of its own).
fn header_traceparent(headers: &HeaderMap) -> Option<TraceParent> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    match value.trim().parse() {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::debug!(error = %e, "ignoring an invalid traceparent header");
            None
        }
    }
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(operation_id = "show_job", get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path, format = Uuid, description = "the job id")),
    responses((status = 200, description = "the job", body = JobView), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("admin" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<JobView>, ApiError> {
    let job = find_job(&state, &id)?;
    let mut view = JobView::from(&job);
    view.output = super::outputs::inline(&state, &job);
    Ok(axum::Json(view))
}

/// Filters of `GET /v1/jobs/{id}/logs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogFilter {
    /// Only this task's lines.
    #[param(format = Uuid)]
    pub task: Option<String>,
    /// Only lines at this level or above: trace, debug, info, warn, error.
    #[param(schema_with = super::openapi::log_level)]
    pub level: Option<LogLevel>,
    /// The `cursor` of the previous page: lines after it.
    #[param(pattern = "^([0-9a-f]{2})*$")]
    pub cursor: Option<String>,
    /// Most lines, 1 to 10000 (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// One page of log lines.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LogPageView {
    /// In the order they were recorded (a task's lines are committed with
    /// its attempt's outcome).
    pub logs: Vec<LogView>,
    /// Pass as `cursor` for the lines after these (also to follow a running
    /// job); absent when the job has logged nothing yet.
    pub cursor: Option<String>,
    /// Whether more lines follow now.
    pub more: bool,
}

/// `GET /v1/jobs/{id}/logs`: log lines in the order they were recorded.
#[utoipa::path(get, path = "/v1/jobs/{id}/logs", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "the job id"), LogFilter),
    responses((status = 200, description = "log lines", body = LogPageView), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("admin" = [])))]
pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(filter): Query<LogFilter>,
) -> Result<axum::Json<LogPageView>, ApiError> {
    let job = find_job(&state, &id)?;
    let task = filter.task.as_deref().map(str::parse::<TaskId>).transpose()?;
    let bad = |m: &str| ApiError::bad_request("invalid_query", m.to_owned());
    let after = filter.cursor.as_deref().map(hex::decode).transpose().map_err(|_| bad("malformed cursor"))?;
    let limit = filter.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(bad("limit must be 1 to 10000"));
    }
    let keep = |k: &TaskKey, e: &LogEntry| {
        task.is_none_or(|t| k.task == t) && filter.level.is_none_or(|l| e.level >= l)
    };
    let page = state.store.logs_page(job.id, after.as_deref(), limit, keep)?;
    Ok(axum::Json(LogPageView {
        logs: page.lines.iter().map(|(k, e)| LogView::new(k, e)).collect(),
        cursor: page.position.map(hex::encode),
        more: page.more,
    }))
}

/// The query of `POST /v1/jobs/{id}/cancel`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CancelQuery {
    /// Also interrupt the job's running tasks; they fail with "canceled".
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/jobs/{id}/cancel[?force=true]`: queued tasks of the job no
/// longer start; running ones finish, or with `force` are interrupted within
/// one epoch tick and fail with "canceled". 409 for a completed job.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "the job id"), CancelQuery),
    responses((status = 200, description = "the canceled job", body = JobView), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("admin" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<CancelQuery>,
) -> Result<axum::Json<JobView>, ApiError> {
    let id: JobId = id.parse()?;
    state.scheduler.cancel(id).await?;
    if query.force {
        state.cancels.push(id, true);
        let interrupted = state.sandbox.interrupt_job(id);
        tracing::info!(job = %id, interrupted, "forced cancel");
    }
    Ok(axum::Json(JobView::from(&find_job(&state, &id.to_string())?)))
}

/// `DELETE /v1/jobs/{id}`: deletes a job that has ended, with its tasks,
/// logs, spans and cache; 409 while it has work left.
#[utoipa::path(operation_id = "delete_job", delete, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path, format = Uuid, description = "the job id")),
    responses((status = 204, description = "deleted"), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("admin" = [])))]
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id: JobId = id.parse()?;
    state.scheduler.delete(id).await?;
    // The job is gone; its cache goes next (a start sweeps what a failure
    // or a stop in between left).
    if let Err(e) = state.cache.delete_job(id).await {
        tracing::warn!(job = %id, error = %e, "could not delete the job's cache");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The answer of `POST /v1/jobs/{id}/retry`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Retried {
    /// Failed tasks queued again with a fresh retry budget.
    pub requeued: u64,
    /// Tasks eligible to run again, re-queued ones included.
    pub ready: u64,
    /// The job after the retry.
    pub job: JobView,
}

/// `POST /v1/jobs/{id}/retry`: re-queues the failed tasks of a failed job, or
/// resumes a canceled one. 409 for a job that is neither.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path, format = Uuid, description = "the job id")),
    responses((status = 200, description = "what was re-queued", body = Retried), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("admin" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Retried>, ApiError> {
    let id: JobId = id.parse()?;
    // Before the retry: attempts it starts must not meet the old cancel.
    state.sandbox.forget_interrupt(id);
    state.cancels.push(id, false);
    let retried = state.scheduler.retry(id).await?;
    let job = JobView::from(&find_job(&state, &id.to_string())?);
    Ok(axum::Json(Retried { requeued: retried.requeued, ready: retried.ready, job }))
}
