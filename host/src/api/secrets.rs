//! Secrets over HTTP: set, list and delete them (admin token; the API
//! answers names and times, never a value), and the runner protocol's read
//! of one for a running attempt whose module was granted it (runner token).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::ErrorBody;
use super::extract::{Path, Query};
use super::views::timestamp;
use super::{ApiError, AppState};
use crate::model::{SecretInfo, TaskKey, check_secret_name};
use crate::protocol::SecretValue;
use crate::secrets;

const REFUSED: &str = "refused: `{\"error\": {\"code\", \"message\"}}`";

/// A secret as the API shows it: never its value.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretView {
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&SecretInfo> for SecretView {
    fn from(s: &SecretInfo) -> Self {
        SecretView {
            name: s.name.clone(),
            created_at: timestamp(s.created_ms),
            updated_at: timestamp(s.updated_ms),
        }
    }
}

impl From<secrets::Error> for ApiError {
    fn from(e: secrets::Error) -> Self {
        match e {
            secrets::Error::Invalid(m) => ApiError::unprocessable("invalid_secret", m),
            secrets::Error::Full => ApiError::new(StatusCode::CONFLICT, "too_many_secrets", e.to_string()),
            secrets::Error::Store(e) => e.into(),
            e => {
                tracing::error!(error = %e, "secrets failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "secrets_unavailable",
                    "the host could not read its secrets",
                )
            }
        }
    }
}

fn name(raw: &str) -> Result<&str, ApiError> {
    check_secret_name(raw).map_err(|m| ApiError::bad_request("invalid_name", m))?;
    Ok(raw)
}

/// `PUT /v1/secrets/{name}`: the body (1 byte to 64 KiB of UTF-8) becomes
/// the secret's value; 201 when new, 200 when replaced.
#[utoipa::path(operation_id = "set_secret", put, path = "/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$", description = "the secret's name")),
    request_body(content = inline(super::openapi::SecretText), content_type = "text/plain", description = "the value: 1 byte to 64 KiB of UTF-8"),
    responses((status = 201, description = "created", body = SecretView), (status = 200, description = "replaced", body = SecretView),
        (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn set(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<SecretView>), ApiError> {
    let name = name(&raw)?;
    let created = state.secrets.set(name, &body).await?;
    let listed = state.secrets.list()?;
    let info =
        listed.iter().find(|s| s.name == name).ok_or_else(|| ApiError::not_found("the secret vanished"))?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(SecretView::from(info))))
}

/// `GET /v1/secrets`: every secret's name and times.
#[utoipa::path(operation_id = "list_secrets", get, path = "/v1/secrets", tag = "secrets",
    responses((status = 200, description = "the secrets, by name", body = Vec<SecretView>), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<axum::Json<Vec<SecretView>>, ApiError> {
    Ok(axum::Json(state.secrets.list()?.iter().map(SecretView::from).collect()))
}

/// `DELETE /v1/secrets/{name}`: 204, or 404 when there is none.
#[utoipa::path(operation_id = "delete_secret", delete, path = "/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$", description = "the secret's name")),
    responses((status = 204, description = "deleted"), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn delete(State(state): State<AppState>, Path(raw): Path<String>) -> Result<StatusCode, ApiError> {
    match state.secrets.delete(name(&raw)?).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("no secret named {raw}"))),
    }
}

/// The attempt a remote runner reads a secret for.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttemptQuery {
    #[param(format = Uuid)]
    pub job: String,
    #[param(format = Uuid)]
    pub task: String,
    /// The attempt's lease.
    pub lease: u64,
}

/// `GET /v1/runners/secrets/{name}?job=&task=&lease=`: the value, for the
/// running attempt `lease` of that task, if its module was granted it.
#[utoipa::path(get, path = "/v1/runners/secrets/{name}", tag = "runners",
    params(("name" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$", description = "the secret's name"), AttemptQuery),
    responses((status = 200, description = "the value", body = SecretValue), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("runner" = [])))]
pub async fn runner_read(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<AttemptQuery>,
) -> Result<axum::Json<SecretValue>, ApiError> {
    let name = name(&raw)?;
    let key = TaskKey { job: q.job.parse()?, task: q.task.parse()? };
    let forbidden = |m: String| ApiError::new(StatusCode::FORBIDDEN, "not_granted", m);
    let Some(task) = state.store.running_attempt(key, q.lease).await? else {
        return Err(ApiError::new(StatusCode::CONFLICT, "stale_lease", "that attempt is not running"));
    };
    let ran = task.status.ran_version;
    let digest = state
        .scheduler
        .task_types()
        .into_iter()
        .find(|(t, _)| t.name == task.def.task_type.name && Some(t.version) == ran)
        .map(|(_, d)| d);
    let granted = match digest {
        Some(d) => state.store.module(&d)?.is_some_and(|m| m.limits.secrets.iter().any(|s| s == name)),
        None => false,
    };
    if !granted {
        return Err(forbidden(format!("secret {name} is not granted to the module of that task")));
    }
    match state.secrets.read(name)? {
        Some(value) => Ok(axum::Json(SecretValue { value })),
        None => Err(ApiError::not_found(format!("there is no secret named {name}"))),
    }
}
