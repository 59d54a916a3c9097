//! Computed tasks' outputs over HTTP: a task's (`GET
//! /v1/jobs/{id}/tasks/{task}/output`), the job's, which is its root task's
//! (`GET /v1/jobs/{id}/output`, and inline on `GET /v1/jobs/{id}` once the
//! job completed), and the runner protocol's read of a dependency's (`GET
//! /v1/runners/outputs/{job}/{task}`). An output left as "my subtask's" is
//! followed to the bytes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::error::ErrorBody;
use super::extract::Path;
use super::jobs::find_job;
use super::{ApiError, AppState};
use crate::model::{JobId, OutputError, TaskId, TaskKey};

/// Largest output shown inline on the job.
const INLINE_BYTES: usize = 64 << 10;

/// `read`, with 404 for a task that does not exist.
fn found(key: TaskKey, read: Result<Vec<u8>, OutputError>) -> Result<Result<Vec<u8>, OutputError>, ApiError> {
    match read {
        Err(OutputError::NotFound(task)) if task == key.task => {
            Err(ApiError::not_found(format!("task {} of job {} not found", key.task, key.job)))
        }
        read => Ok(read),
    }
}

/// The bytes `key` leaves, or why not.
fn read(state: &AppState, key: TaskKey) -> Result<Result<Vec<u8>, OutputError>, ApiError> {
    found(key, state.store.read_output(key)?)
}

/// 200 with the bytes (`application/json` when they are JSON), or 404
/// `no_output` / 409 `not_computed`.
fn answer(read: Result<Vec<u8>, OutputError>) -> Result<Response, ApiError> {
    match read {
        Ok(bytes) => {
            let json = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok();
            let kind = if json { "application/json" } else { "application/octet-stream" };
            Ok(([(CONTENT_TYPE, kind)], bytes).into_response())
        }
        Err(e @ OutputError::None(_)) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "no_output", e.to_string()))
        }
        // A link to a task that is not there yet reads as not computed.
        Err(e @ (OutputError::NotComputed(_) | OutputError::NotFound(_))) => {
            Err(ApiError::new(StatusCode::CONFLICT, "not_computed", e.to_string()))
        }
    }
}

/// The job's output as JSON, for its view: present once it completed, when
/// its root left JSON of at most [`INLINE_BYTES`].
pub fn inline(state: &AppState, job: &crate::model::Job) -> Option<serde_json::Value> {
    if job.state() != crate::model::JobState::Completed {
        return None;
    }
    let bytes =
        state.store.read_small_output(TaskKey { job: job.id, task: job.root }, INLINE_BYTES).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// A computed task's output for its view: its size, and the output itself
/// when it is JSON of at most [`INLINE_BYTES`]; nothing when it left none.
pub fn summary(state: &AppState, key: TaskKey) -> Result<(Option<u64>, Option<serde_json::Value>), ApiError> {
    let Ok(bytes) = state.store.read_output(key)? else { return Ok((None, None)) };
    let json = (bytes.len() <= INLINE_BYTES).then(|| serde_json::from_slice(&bytes).ok()).flatten();
    Ok((Some(bytes.len() as u64), json))
}

const REFUSED: &str = "refused: `{\"error\": {\"code\", \"message\"}}`";

/// `GET /v1/jobs/{id}/tasks/{task}/output`: what the task left.
#[utoipa::path(get, path = "/v1/jobs/{id}/tasks/{task}/output", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "the job id"),
        ("task" = String, Path, format = Uuid, description = "the task id")),
    responses((status = 200, description = "the output's bytes", content((Value = "application/json"), (super::openapi::Binary = "application/octet-stream"))),
        (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn task_output(
    State(state): State<AppState>,
    Path((id, task)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let job = find_job(&state, &id)?;
    let task: TaskId = task.parse()?;
    answer(read(&state, TaskKey { job: job.id, task })?)
}

/// `GET /v1/jobs/{id}/output`: what the job's root task left.
#[utoipa::path(get, path = "/v1/jobs/{id}/output", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "the job id")),
    responses((status = 200, description = "the output's bytes", content((Value = "application/json"), (super::openapi::Binary = "application/octet-stream"))),
        (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn job_output(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let job = find_job(&state, &id)?;
    answer(read(&state, TaskKey { job: job.id, task: job.root })?)
}

/// `GET /v1/runners/outputs/{job}/{task}`: a dependency's output for a
/// remote runner's attempt; 204 when it left none.
#[utoipa::path(get, path = "/v1/runners/outputs/{job}/{task}", tag = "runners",
    params(("job" = String, Path, format = Uuid, description = "the job id"),
        ("task" = String, Path, format = Uuid, description = "the task id")),
    responses((status = 200, description = "the output's bytes", content_type = "application/octet-stream", body = super::openapi::Binary),
        (status = 204, description = "the task left no output"),
        (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("runner" = [])))]
pub async fn runner_output(
    State(state): State<AppState>,
    Path((job, task)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = TaskKey { job: job.parse::<JobId>()?, task: task.parse::<TaskId>()? };
    // A runner asks right after its claim, which may be answered before
    // the group that computed the dependency is visible.
    match found(key, state.store.read_dependency_output(key).await?)? {
        Ok(bytes) => Ok(([(CONTENT_TYPE, "application/octet-stream")], bytes).into_response()),
        Err(OutputError::None(_)) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => answer(Err(e)),
    }
}
