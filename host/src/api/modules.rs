//! Module routes: upload, list, and the task-type registry.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use std::time::Duration;

use serde::Deserialize;

use super::error::ErrorBody;
use super::extract::{Query, WasmBody};
use super::uploads::UploadView;
use super::views::{ModuleView, TaskTypeView};
use super::{ApiError, AppState};
use crate::model::{MAX_GRANTS, ModuleInfo, TaskLimits, check_secret_name, now_ms, parse_allow_list};

/// Most hosts one upload may allow.
const MAX_ALLOW_HTTP: usize = 64;
use crate::sandbox::Limits;

/// The query of `POST /v1/modules`: limits for the module's task types,
/// within the host's maxima (`serve --task-timeout`, `--memory-limit-mib`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Wall-clock limit of one attempt, e.g. `30s`, `5m`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Linear memory limit of one instance, in MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Hosts the module's tasks may send HTTP requests to, besides the
    /// host-wide list: comma-separated `host`, `host:port` or `*.domain`.
    #[serde(default)]
    pub allow_http: Option<String>,
    /// Secrets the module's tasks may read with `secret(name)`:
    /// comma-separated names (they need not be set yet).
    #[serde(default)]
    pub secrets: Option<String>,
    /// Lets this module take over task types (`name@version`) another
    /// module implements; without it such an upload is refused (409). A
    /// newer minor version is the usual way to ship a fix.
    #[serde(default)]
    pub replace: bool,
    /// Answers 202 with an upload id at once and compiles in the
    /// background; `GET /v1/modules/uploads/{id}` tells how it ended.
    #[serde(default)]
    pub background: bool,
}

/// Checks asked limits against the host's maxima.
fn asked_limits(query: &UploadQuery, host: &Limits) -> Result<TaskLimits, ApiError> {
    let refuse = |m: String| ApiError::unprocessable("invalid_limits", m);
    let mut asked = TaskLimits::default();
    if let Some(text) = &query.timeout {
        let t = humantime::parse_duration(text).map_err(|e| refuse(format!("timeout {text:?}: {e}")))?;
        if t < Duration::from_millis(10) || t > host.timeout {
            let max = humantime::format_duration(host.timeout);
            return Err(refuse(format!("timeout must be between 10ms and the host's maximum of {max}")));
        }
        asked.timeout_ms = Some(t.as_millis() as u64);
    }
    if let Some(mib) = query.memory_mib {
        let max = (host.memory_bytes >> 20) as u64;
        if mib == 0 || mib > max {
            return Err(refuse(format!("memory_mib must be between 1 and the host's maximum of {max}")));
        }
        asked.memory_bytes = Some(mib << 20);
    }
    if let Some(list) = &query.allow_http {
        let entries: Vec<&str> = list.split(',').filter(|e| !e.trim().is_empty()).collect();
        if entries.len() > MAX_ALLOW_HTTP {
            return Err(refuse(format!("allow_http names more than {MAX_ALLOW_HTTP} hosts")));
        }
        asked.allow_http = parse_allow_list(&entries).map_err(refuse)?;
    }
    if let Some(list) = &query.secrets {
        let names: Vec<String> =
            list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
        if names.len() > MAX_GRANTS {
            return Err(refuse(format!("secrets names more than {MAX_GRANTS} secrets")));
        }
        names.iter().try_for_each(|n| check_secret_name(n)).map_err(refuse)?;
        asked.secrets = names;
    }
    Ok(asked)
}

/// `POST /v1/modules[?timeout=&memory_mib=&allow_http=&secrets=&replace=&background=]`:
/// the body is a component's bytes. 201 when new, 200 when the same bytes
/// were uploaded before (limits given again replace the earlier ones); 422
/// when they are not a task component or the limits are out of range. With
/// `background=true`, 202 once the request is checked, and the rest is
/// told by `GET /v1/modules/uploads/{id}` (`uploads.rs`).
#[utoipa::path(post, path = "/v1/modules", tag = "modules", params(UploadQuery),
    request_body(content = inline(super::openapi::Binary), content_type = "application/wasm", description = "the component's bytes"),
    responses((status = 201, description = "registered", body = ModuleView),
        (status = 200, description = "uploaded before", body = ModuleView),
        (status = 202, description = "accepted (`background=true`): compiling", body = UploadView),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("admin" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    Query(query): Query<UploadQuery>,
    WasmBody(body): WasmBody,
) -> Result<axum::response::Response, ApiError> {
    let limits = asked_limits(&query, state.sandbox.limits())?;
    if body.is_empty() {
        return Err(ApiError::unprocessable(
            "not_a_component",
            "the request body is empty; send the component's bytes",
        ));
    }
    if !query.background {
        let (status, view) = register(&state, &query, limits, &body).await?;
        return Ok((status, axum::Json(view)).into_response());
    }
    let view = state.uploads.start()?;
    let (id, background) = (view.id.clone(), state.clone());
    tokio::spawn(async move {
        let ended = register(&background, &query, limits, &body).await;
        background.uploads.finish(&id, ended);
    });
    let location = format!("/v1/modules/uploads/{}", view.id);
    Ok((StatusCode::ACCEPTED, [(axum::http::header::LOCATION, location)], axum::Json(view)).into_response())
}

/// Compiles, checks and stores an upload: the module's view, and whether
/// it is new (201) or was uploaded before (200).
async fn register(
    state: &AppState,
    query: &UploadQuery,
    limits: TaskLimits,
    body: &Bytes,
) -> Result<(StatusCode, ModuleView), ApiError> {
    let asked = query.timeout.is_some()
        || query.memory_mib.is_some()
        || query.allow_http.is_some()
        || query.secrets.is_some();
    if let Some(existing) = state.store.module(&crate::model::Digest::of(body))? {
        return reuploaded(state, existing, asked.then_some(limits)).await;
    }
    let inspected = state.sandbox.inspect(body.clone()).await?;
    // The same bytes may have been stored while these compiled.
    if let Some(existing) = state.store.module(&inspected.digest)? {
        return reuploaded(state, existing, asked.then_some(limits)).await;
    }
    if !query.replace {
        refuse_takeover(state, &inspected)?;
    }
    let info = ModuleInfo {
        digest: inspected.digest,
        size: body.len() as u64,
        task_types: inspected.task_types,
        uploaded_ms: now_ms(),
        limits,
    };
    state.store.put_module(&info, body).await?;
    state.scheduler.register(&info);
    tracing::info!(digest = %info.digest, task_types = info.task_types.len(), "module registered");
    Ok((StatusCode::CREATED, ModuleView::from(&info)))
}

/// Refuses (409) an upload that would implement a `name@version` another
/// module implements.
fn refuse_takeover(state: &AppState, inspected: &crate::sandbox::Inspected) -> Result<(), ApiError> {
    let held = state.scheduler.task_types();
    for t in &inspected.task_types {
        if let Some((_, module)) = held.iter().find(|(h, d)| h == t && *d != inspected.digest) {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "task_type_taken",
                format!(
                    "task type {t} is implemented by module {module}; upload with ?replace=true to take it over, or ship a newer minor version"
                ),
            ));
        }
    }
    Ok(())
}

/// A module uploaded before: 200, with its limits replaced when new ones
/// were given.
async fn reuploaded(
    state: &AppState,
    mut existing: ModuleInfo,
    limits: Option<TaskLimits>,
) -> Result<(StatusCode, ModuleView), ApiError> {
    if let Some(limits) = limits.filter(|l| *l != existing.limits) {
        existing.limits = limits;
        state.store.update_module(&existing).await?;
        state.scheduler.register(&existing);
    }
    Ok((StatusCode::OK, ModuleView::from(&existing)))
}

/// `GET /v1/modules`.
#[utoipa::path(operation_id = "list_modules", get, path = "/v1/modules", tag = "modules",
    responses((status = 200, description = "uploaded modules", body = Vec<ModuleView>), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("admin" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<axum::Json<Vec<ModuleView>>, ApiError> {
    Ok(axum::Json(state.store.modules()?.iter().map(ModuleView::from).collect()))
}

/// One registry entry.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RegisteredView {
    #[serde(flatten)]
    pub task_type: TaskTypeView,
    pub module: String,
}

/// `GET /v1/task-types`: every registered task type and its module.
#[utoipa::path(get, path = "/v1/task-types", tag = "modules",
    responses((status = 200, description = "registered task types", body = Vec<RegisteredView>), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("admin" = [])))]
pub async fn task_types(State(state): State<AppState>) -> Result<axum::Json<Vec<RegisteredView>>, ApiError> {
    let views = state
        .scheduler
        .task_types()
        .iter()
        .map(|(t, d)| RegisteredView { task_type: t.into(), module: d.to_string() })
        .collect();
    Ok(axum::Json(views))
}
