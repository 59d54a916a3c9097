//! The job caches over HTTP: remote runners' attempts read and write their
//! job's values (`/v1/runners/cache/{job}`, runner token), users list and
//! read them (`/v1/jobs/{id}/cache`, admin token). Values stream through in
//! chunks both ways; what a key is and how big a value may be are the
//! model's rules ([`CacheKey`], [`check_value_size`](crate::model::check_value_size)).

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

use super::error::ErrorBody;
use super::extract::{Path, Query};
use super::jobs::find_job;
use super::{ApiError, AppState};
use crate::cache;
use crate::model::{CacheKey, JobId, MAX_LIST_KEYS, check_prefix};
use crate::protocol::{CacheEntryView, CacheListing};

const REFUSED: &str = "refused: `{\"error\": {\"code\", \"message\"}}`";

/// Which value.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeyQuery {
    /// The key: 1 to 1024 bytes, `/`-separated segments.
    #[param(min_length = 1, max_length = 1024)]
    pub key: String,
}

/// Which keys.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only keys that start with this (a group such as `pages/`).
    #[serde(default)]
    #[param(max_length = 1024)]
    pub prefix: String,
    /// Only keys after this one (the `next` of the previous page).
    #[param(max_length = 1024)]
    pub after: Option<String>,
    /// At most this many keys (1000 unless less).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

impl From<cache::Error> for ApiError {
    fn from(e: cache::Error) -> Self {
        match e {
            cache::Error::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
            e => {
                tracing::error!(error = %e, "the job cache failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cache_unavailable",
                    "the job cache's storage failed",
                )
            }
        }
    }
}

fn key(raw: &str) -> Result<CacheKey, ApiError> {
    CacheKey::parse(raw).map_err(|m| ApiError::bad_request("invalid_key", m))
}

fn job_of(state: &AppState, raw: &str) -> Result<JobId, ApiError> {
    Ok(find_job(state, raw)?.id)
}

fn no_value(key: &CacheKey) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_value", format!("the cache has no value under `{key}`"))
}

/// One page of `job`'s keys.
async fn listing(state: &AppState, job: JobId, q: ListQuery) -> Result<axum::Json<CacheListing>, ApiError> {
    check_prefix(&q.prefix).map_err(|m| ApiError::bad_request("invalid_key", m))?;
    let limit = q.limit.unwrap_or(MAX_LIST_KEYS);
    if !(1..=MAX_LIST_KEYS).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", format!("limit must be 1 to {MAX_LIST_KEYS}")));
    }
    let found = state.cache.list(job, &q.prefix, q.after.as_deref(), limit + 1).await?;
    let mut keys: Vec<_> = found.into_iter().map(|e| CacheEntryView { key: e.key, size: e.size }).collect();
    let next = (keys.len() > limit).then(|| {
        keys.truncate(limit);
        keys[limit - 1].key.clone()
    });
    Ok(axum::Json(CacheListing { keys, next }))
}

/// The value's bytes, streamed, with its length.
async fn value(state: &AppState, job: JobId, key: &CacheKey, method: &Method) -> Result<Response, ApiError> {
    if method == Method::HEAD {
        let size = state.cache.size(job, key).await?.ok_or_else(|| no_value(key))?;
        return Ok(([(CONTENT_LENGTH, size.to_string())], ()).into_response());
    }
    let value = state.cache.get(job, key).await?.ok_or_else(|| no_value(key))?;
    let body = Body::from_stream(value.chunks);
    let headers =
        [(CONTENT_TYPE, "application/octet-stream".to_owned()), (CONTENT_LENGTH, value.size.to_string())];
    Ok((headers, body).into_response())
}

/// `GET /v1/jobs/{id}/cache`: a page of the job cache's keys.
#[utoipa::path(operation_id = "list_job_cache", get, path = "/v1/jobs/{id}/cache", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "the job id"), ListQuery),
    responses((status = 200, description = "keys and sizes", body = CacheListing),
        (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<CacheListing>, ApiError> {
    let job = job_of(&state, &id)?;
    listing(&state, job, q).await
}

/// `GET /v1/jobs/{id}/cache/value?key=K`: a value's bytes.
#[utoipa::path(operation_id = "get_job_cache_value", get, path = "/v1/jobs/{id}/cache/value", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "the job id"), KeyQuery),
    responses((status = 200, description = "the value's bytes", content_type = "application/octet-stream", body = super::openapi::Binary),
        (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn get(
    State(state): State<AppState>,
    method: Method,
    Path(id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<Response, ApiError> {
    let job = job_of(&state, &id)?;
    value(&state, job, &key(&q.key)?, &method).await
}

/// `GET /v1/runners/cache/{job}`: a page of the job cache's keys, for a
/// remote runner's attempt.
#[utoipa::path(get, path = "/v1/runners/cache/{job}", tag = "runners",
    params(("job" = String, Path, format = Uuid, description = "the job id"), ListQuery),
    responses((status = 200, description = "keys and sizes", body = CacheListing),
        (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("runner" = [])))]
pub async fn runner_list(
    State(state): State<AppState>,
    Path(job): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<CacheListing>, ApiError> {
    let job = job_of(&state, &job)?;
    listing(&state, job, q).await
}

/// `GET /v1/runners/cache/{job}/value?key=K`: a value (`HEAD`: whether
/// there is one); 404 `no_value` when there is none.
#[utoipa::path(get, path = "/v1/runners/cache/{job}/value", tag = "runners",
    params(("job" = String, Path, format = Uuid, description = "the job id"), KeyQuery),
    responses((status = 200, description = "the value's bytes", content_type = "application/octet-stream", body = super::openapi::Binary),
        (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("runner" = [])))]
pub async fn runner_get(
    State(state): State<AppState>,
    method: Method,
    Path(job): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<Response, ApiError> {
    let job = job_of(&state, &job)?;
    value(&state, job, &key(&q.key)?, &method).await
}

/// `PUT /v1/runners/cache/{job}/value?key=K`: stores the body as the value
/// (streamed; 413 `too_large` past `cache_value_bytes`, and the old value
/// stays).
#[utoipa::path(put, path = "/v1/runners/cache/{job}/value", tag = "runners",
    params(("job" = String, Path, format = Uuid, description = "the job id"), KeyQuery),
    request_body(content = super::openapi::Binary, content_type = "application/octet-stream"),
    responses((status = 204, description = "stored"),
        (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("runner" = [])))]
pub async fn runner_put(
    State(state): State<AppState>,
    Path(job): Path<String>,
    Query(q): Query<KeyQuery>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let job = job_of(&state, &job)?;
    let key = key(&q.key)?;
    let max = state.sandbox.limits().bounds.cache_value_bytes;
    let mut upload = state.cache.put(job, &key, max);
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let written = match chunk {
            Ok(chunk) => upload.write(chunk).await.map_err(ApiError::from),
            Err(e) => Err(ApiError::bad_request("bad_body", format!("the body could not be read: {e}"))),
        };
        if let Err(e) = written {
            upload.abort().await;
            return Err(e);
        }
    }
    upload.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/runners/cache/{job}/value?key=K`: deletes the value; 404
/// `no_value` when there was none.
#[utoipa::path(delete, path = "/v1/runners/cache/{job}/value", tag = "runners",
    params(("job" = String, Path, format = Uuid, description = "the job id"), KeyQuery),
    responses((status = 204, description = "deleted"),
        (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("runner" = [])))]
pub async fn runner_delete(
    State(state): State<AppState>,
    Path(job): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<StatusCode, ApiError> {
    let job = job_of(&state, &job)?;
    let key = key(&q.key)?;
    match state.cache.delete(job, &key).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(no_value(&key)),
    }
}
