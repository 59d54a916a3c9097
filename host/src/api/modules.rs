//! Module routes: upload, list, and the task-type registry.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;

use super::views::{ModuleView, TaskTypeView};
use super::{ApiError, AppState};
use crate::model::{ModuleInfo, now_ms};

/// `POST /v1/modules`: the body is a component's bytes. 201 when new, 200
/// when the same bytes were uploaded before; 422 when they are not a task
/// component.
pub async fn upload(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<ModuleView>), ApiError> {
    if body.is_empty() {
        return Err(ApiError::unprocessable(
            "not_a_component",
            "the request body is empty; send the component's bytes",
        ));
    }
    if let Some(existing) = state.store.module(&crate::sandbox::digest_of(&body))? {
        return Ok((StatusCode::OK, axum::Json(ModuleView::from(&existing))));
    }
    let sandbox = state.sandbox.clone();
    let bytes = body.clone();
    let inspected =
        tokio::task::spawn_blocking(move || sandbox.inspect(&bytes)).await.map_err(ApiError::internal)??;
    if let Some(existing) = state.store.module(&inspected.digest)? {
        return Ok((StatusCode::OK, axum::Json(ModuleView::from(&existing))));
    }
    let info = ModuleInfo {
        digest: inspected.digest,
        size: body.len() as u64,
        task_types: inspected.task_types,
        uploaded_ms: now_ms(),
    };
    state.store.put_module(&info, &body).await?;
    let mut registry =
        state.scheduler.registry().write().map_err(|_| ApiError::internal("registry lock poisoned"))?;
    for t in &info.task_types {
        registry.register(t, info.digest);
    }
    tracing::info!(digest = %info.digest, task_types = info.task_types.len(), "module registered");
    Ok((StatusCode::CREATED, axum::Json(ModuleView::from(&info))))
}

/// `GET /v1/modules`.
pub async fn list(State(state): State<AppState>) -> Result<axum::Json<Vec<ModuleView>>, ApiError> {
    Ok(axum::Json(state.store.modules()?.iter().map(ModuleView::from).collect()))
}

/// One registry entry.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct RegisteredView {
    #[serde(flatten)]
    pub task_type: TaskTypeView,
    pub module: String,
}

/// `GET /v1/task-types`: every registered task type and its module.
pub async fn task_types(State(state): State<AppState>) -> Result<axum::Json<Vec<RegisteredView>>, ApiError> {
    let registry =
        state.scheduler.registry().read().map_err(|_| ApiError::internal("registry lock poisoned"))?;
    let views = registry
        .entries()
        .iter()
        .map(|(t, d)| RegisteredView { task_type: t.into(), module: d.to_string() })
        .collect();
    Ok(axum::Json(views))
}
