//! The runner protocol's routes (wire types in [`crate::protocol`]): claim a
//! batch (long-poll), extend a lease, report outcomes (alone, or in batches
//! that claim the next tasks in the same request), hand back unstarted
//! attempts, fetch a module's bytes. A report for an attempt that is no longer
//! current is refused with 409 (`stale_attempt`).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::Scope;
use super::error::ErrorBody;
use super::extract::{Json, Path, Query};
use super::fleet::RunnerView;
use super::{ApiError, AppState};
use crate::model::{Digest, JobId, TaskId, TaskKey};
use crate::protocol::{
    AssignmentView, AttemptRef, ClaimRequest, Claimed, CompleteRequest, Completed, Extended, Interrupts,
    InterruptsRequest, ReleaseRequest, ReportBody, ReportResult, RunnerConfig,
};
use crate::scheduler::{MAX_CLAIM_BATCH, Report};

/// How long a long-poll waits when the runner does not say.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Most reports in one completion.
const MAX_REPORTS: usize = 4 * MAX_CLAIM_BATCH;

/// How long a long-poll asking for `wait_ms` waits: [`DEFAULT_WAIT`] when
/// it does not say, never over `serve --poll-limit`.
fn poll_wait(state: &AppState, wait_ms: Option<u64>) -> Duration {
    wait_ms.map_or(DEFAULT_WAIT, Duration::from_millis).min(state.poll_limit)
}

/// Claims for `body`: the tasks taken, empty when none became ready in time.
async fn claim_for(
    state: &AppState,
    scope: &Scope,
    body: &ClaimRequest,
) -> Result<Vec<AssignmentView>, ApiError> {
    crate::model::check_cluster(&body.cluster).map_err(|e| ApiError::unprocessable("invalid_cluster", e))?;
    scope.check(&body.cluster)?;
    if !state.scheduler.has_cluster(&body.cluster) {
        return Err(super::jobs::unknown_cluster(&body.cluster));
    }
    if let Some(hello) = &body.runner {
        state.fleet.heard(hello, &body.cluster);
    }
    let wait = poll_wait(state, body.wait_ms);
    let max = body.max.unwrap_or(1).clamp(1, MAX_CLAIM_BATCH as u32) as usize;
    if wait.is_zero() {
        return Ok(state
            .scheduler
            .try_claim_batch(&body.cluster, max)
            .await?
            .iter()
            .map(AssignmentView::from)
            .collect());
    }
    match tokio::time::timeout(wait, state.scheduler.claim_batch(&body.cluster, max)).await {
        Ok(batch) => Ok(batch?.iter().map(AssignmentView::from).collect()),
        Err(_) => Ok(Vec::new()),
    }
}

/// `POST /v1/runners/claim`: 200 with the claimed tasks, or 204 when none
/// became ready within `wait_ms`.
#[utoipa::path(post, path = "/v1/runners/claim", tag = "runners", request_body = ClaimRequest,
    responses((status = 200, description = "claimed tasks", body = Claimed),
        (status = 204, description = "no task became ready in time"), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("runner" = [])))]
pub async fn claim(
    State(state): State<AppState>,
    scope: Scope,
    Json(body): Json<ClaimRequest>,
) -> Result<Response, ApiError> {
    let tasks = claim_for(&state, &scope, &body).await?;
    if tasks.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(axum::Json(Claimed { tasks, config_version: state.scheduler.config_version() }).into_response())
}

fn task_key(job: &str, task: &str) -> Result<TaskKey, ApiError> {
    Ok(TaskKey { job: job.parse::<JobId>()?, task: task.parse::<TaskId>()? })
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
    let ttl = state.scheduler.extend(key, body.lease).await?;
    let lease_ms = ttl.as_millis() as u64;
    Ok(axum::Json(Extended { lease_ms, renew_after_ms: lease_ms / 3 }))
}

/// Checks a report body and turns it into a report (see
/// [`ReportBody::into_report`]).
fn to_report(state: &AppState, body: ReportBody) -> Result<Report, ApiError> {
    let bounds = state.sandbox.limits().bounds.clone();
    let admit = |t: &crate::model::TaskType, c: Option<&str>| state.scheduler.check_subtask(t, c);
    body.into_report(bounds, &admit).map_err(|e| ApiError::bad_request("invalid_id", e))
}

/// `POST /v1/runners/report`: records an attempt's outcome; 409 when the
/// attempt is no longer current (its lease expired or it was superseded).
#[utoipa::path(post, path = "/v1/runners/report", tag = "runners", request_body = ReportBody,
    responses((status = 200, description = "the outcome is on disk"), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("runner" = [])))]
pub async fn report(
    State(state): State<AppState>,
    Json(body): Json<ReportBody>,
) -> Result<StatusCode, ApiError> {
    let report = to_report(&state, body)?;
    state.scheduler.report(report).await?;
    Ok(StatusCode::OK)
}

fn result_of(outcome: Result<(), ApiError>) -> ReportResult {
    match outcome {
        Ok(()) => ReportResult { ok: true, code: None, message: None },
        Err(e) => {
            ReportResult { ok: false, code: Some(e.code().to_owned()), message: Some(e.message().to_owned()) }
        }
    }
}

/// `POST /v1/runners/complete`: records a batch of outcomes (each answered
/// on its own), then claims the next tasks when `claim` is given.
#[utoipa::path(post, path = "/v1/runners/complete", tag = "runners", request_body = CompleteRequest,
    responses((status = 200, description = "what became of each report, and the next tasks", body = Completed),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("runner" = [])))]
pub async fn complete(
    State(state): State<AppState>,
    scope: Scope,
    Json(body): Json<CompleteRequest>,
) -> Result<axum::Json<Completed>, ApiError> {
    if let Some(claim) = &body.claim {
        scope.check(&claim.cluster)?;
    }
    if body.reports.len() > MAX_REPORTS {
        return Err(ApiError::unprocessable(
            "limit_exceeded",
            format!("at most {MAX_REPORTS} reports per request"),
        ));
    }
    // A malformed id is the runner's bug, not an outcome: the whole request
    // is refused. Other refused reports are answered on their own; the rest
    // go to the scheduler as one batch.
    for r in &body.reports {
        task_key(&r.job, &r.task)?;
    }
    let mut refused: Vec<Option<ApiError>> = Vec::with_capacity(body.reports.len());
    let mut valid = Vec::with_capacity(body.reports.len());
    for r in body.reports {
        match to_report(&state, r) {
            Ok(report) => {
                valid.push(report);
                refused.push(None);
            }
            Err(e) => refused.push(Some(e)),
        }
    }
    let mut answers = state.scheduler.report_batch(valid).await?.into_iter();
    let results = refused
        .into_iter()
        .map(|r| {
            result_of(match r {
                Some(e) => Err(e),
                None => {
                    answers.next().unwrap_or(Err(crate::scheduler::Error::Closed)).map_err(ApiError::from)
                }
            })
        })
        .collect();
    let tasks = match &body.claim {
        Some(claim) => claim_for(&state, &scope, claim).await?,
        None => Vec::new(),
    };
    Ok(axum::Json(Completed { results, tasks }))
}

/// `POST /v1/runners/release`: hands back claimed attempts that never
/// started; their tasks are queued again without using a retry.
#[utoipa::path(post, path = "/v1/runners/release", tag = "runners", request_body = ReleaseRequest,
    responses((status = 200, description = "queued again"), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("runner" = [])))]
pub async fn release(
    State(state): State<AppState>,
    Json(body): Json<ReleaseRequest>,
) -> Result<StatusCode, ApiError> {
    if body.attempts.len() > MAX_REPORTS {
        return Err(ApiError::unprocessable(
            "limit_exceeded",
            format!("at most {MAX_REPORTS} attempts per request"),
        ));
    }
    let attempts = body
        .attempts
        .iter()
        .map(|a| Ok((task_key(&a.job, &a.task)?, a.lease)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    state.scheduler.release(attempts).await?;
    Ok(StatusCode::OK)
}

/// `GET /v1/modules/{digest}`: a module's bytes, for runners that lack it.
#[utoipa::path(get, path = "/v1/modules/{digest}", tag = "runners",
    params(("digest" = String, Path, pattern = "^[0-9a-f]{64}$", description = "the module's sha256, 64 hex digits")),
    responses((status = 200, description = "the component's bytes", content_type = "application/wasm"),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("runner" = [])))]
pub async fn module_bytes(
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    let d = digest_param(&digest)?;
    // A file read and checked by its sha256: off the async threads.
    let store = state.store.clone();
    let bytes = tokio::task::spawn_blocking(move || store.module_bytes(&d))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??
        .ok_or_else(|| ApiError::not_found(format!("module {d} not found")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/wasm")], bytes).into_response())
}

/// A module's digest from its path segment (400 `invalid_digest` otherwise).
fn digest_param(raw: &str) -> Result<Digest, ApiError> {
    Digest::parse(raw).ok_or_else(|| ApiError::bad_request("invalid_digest", "expected 64 hex digits"))
}

/// Which engine a runner asks for an artifact for.
#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct EngineQuery {
    /// The runner engine's tag (16 hex digits): the host's artifacts load
    /// only into an engine with its own tag.
    #[param(pattern = "^[0-9a-f]{16}$")]
    engine: String,
}

/// `GET /v1/runners/artifacts/{digest}?engine=TAG`: the host's precompiled
/// artifact of a module (its sha256 last), for a runner whose engine has
/// the host's tag, so it need not compile the module itself; 404
/// `no_artifact` for another engine or a module the host has not compiled.
#[utoipa::path(get, path = "/v1/runners/artifacts/{digest}", tag = "runners",
    params(("digest" = String, Path, pattern = "^[0-9a-f]{64}$", description = "the module's sha256, 64 hex digits"),
        EngineQuery),
    responses((status = 200, description = "the artifact, then its sha256", content_type = "application/octet-stream"),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("runner" = [])))]
pub async fn module_artifact(
    State(state): State<AppState>,
    Path(digest): Path<String>,
    Query(q): Query<EngineQuery>,
) -> Result<Response, ApiError> {
    let d = digest_param(&digest)?;
    let sandbox = state.sandbox.clone();
    let (file, len) = tokio::task::spawn_blocking(move || sandbox.artifact_file(&d, &q.engine))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "no_artifact", format!("no artifact of {d} for that engine"))
        })?;
    let headers = [
        (axum::http::header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (axum::http::header::CONTENT_LENGTH, len.to_string()),
    ];
    Ok((headers, axum::body::Body::from_stream(file_chunks(tokio::fs::File::from_std(file)))).into_response())
}

/// Bytes read from a file at most this many at a time, so a large artifact
/// is never held whole.
const FILE_CHUNK: usize = 1 << 20;

/// `file`'s bytes from where it stands to its end, a chunk at a time.
fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send {
    futures_util::stream::try_unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut chunk = Vec::with_capacity(FILE_CHUNK);
        let n = (&mut file).take(FILE_CHUNK as u64).read_to_end(&mut chunk).await?;
        Ok((n > 0).then(|| (axum::body::Bytes::from(chunk), file)))
    })
}

/// `GET /v1/runners/config`: the host's bounds, task types and clusters, so a
/// runner answers its guests' submissions as the host would.
#[utoipa::path(get, path = "/v1/runners/config", tag = "runners",
    responses((status = 200, description = "the runner configuration", body = RunnerConfig),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("runner" = [])))]
pub async fn config(State(state): State<AppState>) -> axum::Json<RunnerConfig> {
    let version = state.scheduler.config_version();
    axum::Json(RunnerConfig {
        version,
        bounds: (*state.sandbox.limits().bounds).clone(),
        task_types: state.scheduler.task_types().iter().map(|(t, _)| t.into()).collect(),
        clusters: state.scheduler.cluster_slugs(),
    })
}

/// `POST /v1/runners/interrupts`: forced cancels (and retries that lift
/// them) after `after`; waits up to `wait_ms` for one.
#[utoipa::path(post, path = "/v1/runners/interrupts", tag = "runners", request_body = InterruptsRequest,
    responses((status = 200, description = "forced cancels, in order (empty when none came in time)", body = Interrupts),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("runner" = [])))]
pub async fn interrupts(
    State(state): State<AppState>,
    Json(body): Json<InterruptsRequest>,
) -> axum::Json<Interrupts> {
    let wait = poll_wait(&state, body.wait_ms);
    axum::Json(Interrupts { interrupts: state.cancels.wait_after(body.after, wait).await })
}

/// `GET /v1/runners`: runners heard from in the last two minutes.
#[utoipa::path(operation_id = "list_runners", get, path = "/v1/runners", tag = "runners",
    responses((status = 200, description = "runners seen recently", body = Vec<RunnerView>),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("admin" = [])))]
pub async fn list(State(state): State<AppState>) -> axum::Json<Vec<RunnerView>> {
    axum::Json(state.fleet.recent())
}
