//! Automation routes: create, list, show (with `next_scheduled_at`), pause
//! and resume, delete (canceling the jobs it submitted, if asked). The
//! scheduler's writer owns automations; these routes check requests and
//! read the store.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::ErrorBody;
use super::extract::{Json, Path, Query};
use super::jobs::{check_name, check_root};
use super::views::timestamp;
use super::{ApiError, AppState};
use crate::model::{Automation, AutomationId, Schedule, check_automation_input, rfc3339};
use crate::scheduler::AutomationOp;

const REFUSED: &str = "refused: `{\"error\": {\"code\", \"message\"}}`";

/// The body of `POST /v1/automations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAutomation {
    /// Its name, 1 to 256 characters: also the name of the jobs it submits.
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// The root task type of its jobs, `Name` or `Name@vX.Y`.
    #[schema(min_length = 1)]
    pub task: String,
    /// The root task's input, a JSON object; each firing adds
    /// `trigger_time` (RFC 3339, UTC). `{}` when absent.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub input: Option<serde_json::Value>,
    /// The cluster of its root tasks; `default` when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9-]{1,100}$")]
    pub cluster: Option<String>,
    /// Retries of each root task.
    #[serde(default)]
    pub max_retries: u32,
    /// 1 to 32 cron triggers: `minute hour day-of-month month day-of-week`,
    /// `@daily`-style shorthands, an optional `CRON_TZ=Zone ` prefix (UTC
    /// otherwise).
    #[schema(min_items = 1, max_items = 32)]
    pub triggers: Vec<String>,
    /// Created paused.
    #[serde(default)]
    pub paused: bool,
}

/// The body of `PATCH /v1/automations/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAutomation {
    /// Pause (true) or resume (false); resuming drops the firings the pause covered.
    pub paused: bool,
}

/// The query of `DELETE /v1/automations/{id}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Also cancel the jobs it submitted that have not ended.
    #[serde(default)]
    pub cancel_jobs: bool,
}

/// An automation.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AutomationView {
    pub id: String,
    pub name: String,
    pub task: String,
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    pub cluster: String,
    pub max_retries: u32,
    pub triggers: Vec<String>,
    pub paused: bool,
    pub created_at: String,
    /// Its next firing (RFC 3339, UTC); absent while paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled_at: Option<String>,
    /// Its last firing, if it has fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<String>,
    /// Jobs it has submitted.
    pub fired: u64,
}

impl From<&Automation> for AutomationView {
    fn from(a: &Automation) -> Self {
        let schedule = Schedule::parse_stored(&a.triggers);
        AutomationView {
            id: a.id.to_string(),
            name: a.name.clone(),
            task: a.task_type.to_string(),
            input: serde_json::from_str(&a.input).unwrap_or_default(),
            cluster: a.cluster.clone(),
            max_retries: a.max_retries,
            triggers: a.triggers.clone(),
            paused: a.paused,
            created_at: timestamp(a.created_ms),
            next_scheduled_at: a.next_at(&schedule).map(rfc3339),
            last_fired_at: a.last_fired_ms.map(rfc3339),
            fired: a.fired,
        }
    }
}

/// What a deletion did.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deleted {
    /// The automation as it was.
    pub automation: AutomationView,
    /// Jobs canceled with it.
    pub canceled_jobs: u64,
}

/// `POST /v1/automations`: 201 with the new automation.
#[utoipa::path(operation_id = "create_automation", post, path = "/v1/automations", tag = "automations", request_body = CreateAutomation,
    responses((status = 201, description = "created", body = AutomationView), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateAutomation>,
) -> Result<(StatusCode, axum::Json<AutomationView>), ApiError> {
    let invalid = |m: String| ApiError::unprocessable("invalid_automation", m);
    let input = body.input.unwrap_or_else(|| serde_json::json!({}));
    check_name(&body.name)?;
    check_automation_input(&input).map_err(invalid)?;
    Schedule::parse(&body.triggers, state.scheduler.now_ms()).map_err(invalid)?;
    let (task_type, cluster, input) = check_root(&state, &body.task, body.cluster, &input)?;
    let automation = Automation {
        id: AutomationId::new(),
        name: body.name,
        task_type,
        input,
        cluster,
        max_retries: body.max_retries,
        triggers: body.triggers,
        paused: body.paused,
        created_ms: 0,
        fired_until_ms: 0,
        fired: 0,
        last_fired_ms: None,
    };
    let changed = state.scheduler.automation(AutomationOp::Create(automation)).await?;
    Ok((StatusCode::CREATED, axum::Json(AutomationView::from(&changed.automation))))
}

/// `GET /v1/automations`: every automation, oldest first.
#[utoipa::path(operation_id = "list_automations", get, path = "/v1/automations", tag = "automations",
    responses((status = 200, description = "automations", body = Vec<AutomationView>), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<axum::Json<Vec<AutomationView>>, ApiError> {
    Ok(axum::Json(state.store.automations()?.iter().map(AutomationView::from).collect()))
}

/// `GET /v1/automations/{id}`.
#[utoipa::path(operation_id = "show_automation", get, path = "/v1/automations/{id}", tag = "automations",
    params(("id" = String, Path, format = Uuid, description = "the automation id")),
    responses((status = 200, description = "the automation", body = AutomationView), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<AutomationView>, ApiError> {
    let id = parse_id(&id)?;
    let automation = state
        .store
        .automation(id)?
        .ok_or_else(|| ApiError::not_found(format!("automation {id} not found")))?;
    Ok(axum::Json(AutomationView::from(&automation)))
}

/// `PATCH /v1/automations/{id}`: pauses or resumes it.
#[utoipa::path(operation_id = "update_automation", patch, path = "/v1/automations/{id}", tag = "automations",
    request_body = UpdateAutomation,
    params(("id" = String, Path, format = Uuid, description = "the automation id")),
    responses((status = 200, description = "the automation", body = AutomationView), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<UpdateAutomation>,
) -> Result<axum::Json<AutomationView>, ApiError> {
    let id = parse_id(&id)?;
    let changed = state.scheduler.automation(AutomationOp::Pause(id, body.paused)).await?;
    Ok(axum::Json(AutomationView::from(&changed.automation)))
}

/// `DELETE /v1/automations/{id}[?cancel_jobs=true]`: its jobs stay (and
/// stay findable by it) unless `cancel_jobs` cancels those not ended.
#[utoipa::path(operation_id = "delete_automation", delete, path = "/v1/automations/{id}", tag = "automations",
    params(("id" = String, Path, format = Uuid, description = "the automation id"), DeleteQuery),
    responses((status = 200, description = "deleted", body = Deleted), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DeleteQuery>,
) -> Result<axum::Json<Deleted>, ApiError> {
    let id = parse_id(&id)?;
    let changed = state.scheduler.automation(AutomationOp::Delete(id, query.cancel_jobs)).await?;
    let automation = AutomationView::from(&changed.automation);
    Ok(axum::Json(Deleted { automation, canceled_jobs: changed.canceled_jobs }))
}

fn parse_id(raw: &str) -> Result<AutomationId, ApiError> {
    Ok(raw.parse()?)
}
