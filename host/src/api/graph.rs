//! A job's tasks: `GET /v1/jobs/{id}/tasks` (all of them, or a page),
//! `GET /v1/jobs/{id}/tasks/{task}` (one) and
//! `GET /v1/jobs/{id}/diagram.svg` (a box per task, or per group of tasks
//! for jobs over 200).

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::error::ErrorBody;
use super::extract::{Path, Query};
use super::jobs::find_job;
use super::views::TaskView;
use super::{ApiError, AppState};
use crate::diagram::Theme;
use crate::model::{Task, TaskId, TaskKey, TaskState};

/// Most tasks on one page of `GET /v1/jobs/{id}/tasks`.
const MAX_PAGE: usize = 10_000;

/// The query of `GET /v1/jobs/{id}/tasks`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskPage {
    /// Skip this many tasks (in creation order; of those the filters keep) first.
    #[serde(default)]
    pub offset: u32,
    /// At most this many tasks, 1 to 10000 (default: every task).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
    /// Only tasks in one of these states, comma-separated: queued, running, computed, failed, failed_optional, skipped.
    #[param(
        pattern = "^(queued|running|computed|failed|failed_optional|skipped)(,(queued|running|computed|failed|failed_optional|skipped))*$"
    )]
    pub state: Option<String>,
    /// Only tasks of this task type (any version).
    pub task_type: Option<String>,
    /// Only subtasks of this task.
    #[param(format = Uuid)]
    pub parent: Option<String>,
}

impl TaskPage {
    /// What the filters keep; `None` when there is none.
    fn filter(&self) -> Result<Option<impl Fn(&Task) -> bool + use<>>, ApiError> {
        let states = super::query::names(
            self.state.as_deref(),
            &TaskState::ALL,
            TaskState::as_str,
            ("state", "invalid_task_state"),
        )?;
        let parent = self.parent.as_deref().map(str::parse::<TaskId>).transpose()?;
        let task_type = self.task_type.clone();
        if states.is_empty() && parent.is_none() && task_type.is_none() {
            return Ok(None);
        }
        Ok(Some(move |t: &Task| {
            (states.is_empty() || states.contains(&t.status.state))
                && parent.is_none_or(|p| t.status.parent == Some(p))
                && task_type.as_ref().is_none_or(|name| &t.def.task_type.name == name)
        }))
    }
}

/// `GET /v1/jobs/{id}/tasks[?offset=&limit=&state=&task_type=&parent=]`:
/// the job's tasks in creation order (those the filters keep): all of them,
/// or `limit` after the first `offset`.
#[utoipa::path(get, path = "/v1/jobs/{id}/tasks", tag = "jobs", params(("id" = String, Path, format = Uuid, description = "the job id"), TaskPage),
    responses((status = 200, description = "the job's tasks, or one page of them", body = Vec<TaskView>), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("admin" = [])))]
pub async fn tasks(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(page): Query<TaskPage>,
) -> Result<axum::Json<Vec<TaskView>>, ApiError> {
    if page.limit.is_some_and(|l| !(1..=MAX_PAGE).contains(&l)) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to {MAX_PAGE}")));
    }
    let keep = page.filter()?;
    let keep = keep.as_ref().map(|k| k as &dyn Fn(&Task) -> bool);
    let job = find_job(&state, &id)?;
    let (offset, limit) = (page.offset as usize, page.limit.unwrap_or(usize::MAX));
    let tasks = state.store.tasks_page(job.id, offset, limit, keep)?;
    Ok(axum::Json(tasks.iter().map(TaskView::from).collect()))
}

/// `GET /v1/jobs/{id}/tasks/{task}`: one task, with its output's size (and
/// the output, when small JSON) once computed.
#[utoipa::path(operation_id = "show_task", get, path = "/v1/jobs/{id}/tasks/{task}", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "the job id"), ("task" = String, Path, format = Uuid, description = "the task id")),
    responses((status = 200, description = "the task", body = TaskView), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("admin" = [])))]
pub async fn task(
    State(state): State<AppState>,
    Path((id, task)): Path<(String, String)>,
) -> Result<axum::Json<TaskView>, ApiError> {
    let job = find_job(&state, &id)?;
    let task: TaskId = task.parse()?;
    let found = state.store.task(TaskKey { job: job.id, task })?;
    let task =
        found.ok_or_else(|| ApiError::not_found(format!("task {task} not found in job {}", job.id)))?;
    let mut view = TaskView::from(&task);
    if task.status.state == TaskState::Computed {
        (view.output_bytes, view.output) = super::outputs::summary(&state, task.key)?;
    }
    Ok(axum::Json(view))
}

/// The query of `GET /v1/jobs/{id}/diagram.svg`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiagramQuery {
    /// `light` (default) or `dark`.
    #[serde(default)]
    #[param(schema_with = super::openapi::theme)]
    pub theme: Option<String>,
}

/// `GET /v1/jobs/{id}/diagram.svg`: the job as an SVG graph, its tasks in
/// groups when over 200; 422 when even the groups are over 200.
#[utoipa::path(get, path = "/v1/jobs/{id}/diagram.svg", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "the job id"), DiagramQuery),
    responses((status = 200, description = "the diagram", content_type = "image/svg+xml", body = String),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("admin" = [])))]
pub async fn diagram(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DiagramQuery>,
) -> Result<axum::response::Response, ApiError> {
    let theme = match query.theme.as_deref() {
        None | Some("light") => Theme::Light,
        Some("dark") => Theme::Dark,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("theme {other:?} is not `light` or `dark`"),
            ));
        }
    };
    let job = find_job(&state, &id)?;
    let tasks = state.store.tasks_of(job.id)?;
    let svg = crate::diagram::render(&job, &tasks, theme)
        .map_err(|e| ApiError::unprocessable("too_many_tasks", e.to_string()))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}
