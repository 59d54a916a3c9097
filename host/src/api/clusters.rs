//! Cluster routes: create, list, show, update (name, description,
//! concurrency limits), delete.
//! `default` always exists and cannot be deleted; a cluster with ready or
//! running tasks cannot either. A slug never changes: jobs and tasks name
//! their cluster by it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::ErrorBody;
use super::extract::{Json, Path};
use super::{ApiError, AppState};
use crate::model::{
    Cluster, ConcurrencyLimit, DEFAULT_CLUSTER, MAX_CLUSTER_TEXT, check_cluster, check_limits, now_ms,
    slug_from,
};

/// The body of `POST /v1/clusters`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    /// Its name for people (1 to 1000 characters).
    #[schema(min_length = 1, max_length = 1000)]
    pub name: String,
    /// What it is for (at most 1000 characters).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// Its slug; derived from the name plus a short random suffix when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9-]{1,100}$")]
    pub slug: Option<String>,
    /// Its concurrency limits (at most 32).
    #[serde(default)]
    #[schema(max_items = 32)]
    pub concurrency: Vec<LimitBody>,
}

/// A concurrency limit: at most `max` running tasks of type `task` on the
/// cluster, or, with `key`, per value of that field of their input.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitBody {
    /// A task type's name (any version).
    #[schema(min_length = 1, max_length = 256)]
    pub task: String,
    /// A JSON pointer into the input (`/host`): the limit holds per value found there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^/", max_length = 256)]
    pub key: Option<String>,
    /// Most running at once.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max: u32,
}

impl From<&LimitBody> for ConcurrencyLimit {
    fn from(l: &LimitBody) -> Self {
        ConcurrencyLimit { task: l.task.clone(), key: l.key.clone(), max: l.max }
    }
}

impl From<&ConcurrencyLimit> for LimitBody {
    fn from(l: &ConcurrencyLimit) -> Self {
        LimitBody { task: l.task.clone(), key: l.key.clone(), max: l.max }
    }
}

/// The limits of a request, checked.
fn limits_of(bodies: &[LimitBody]) -> Result<Vec<ConcurrencyLimit>, ApiError> {
    let limits: Vec<ConcurrencyLimit> = bodies.iter().map(ConcurrencyLimit::from).collect();
    check_limits(&limits).map_err(|e| ApiError::unprocessable("invalid_concurrency", e))?;
    Ok(limits)
}

/// The body of `PATCH /v1/clusters/{slug}`: what to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCluster {
    /// A new name for people (1 to 1000 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    pub name: Option<String>,
    /// A new description (at most 1000 characters).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// New concurrency limits, replacing all of the old ones (`[]` removes them).
    #[serde(default)]
    #[schema(max_items = 32)]
    pub concurrency: Option<Vec<LimitBody>>,
}

/// A cluster.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterView {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    /// Its concurrency limits.
    pub concurrency: Vec<LimitBody>,
}

impl From<&Cluster> for ClusterView {
    fn from(c: &Cluster) -> Self {
        ClusterView {
            slug: c.slug.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            created_at: super::views::timestamp(c.created_ms),
            concurrency: c.limits.iter().map(LimitBody::from).collect(),
        }
    }
}

const REFUSED: &str = "refused: `{\"error\": {\"code\", \"message\"}}`";

/// `POST /v1/clusters`: 201 with the new cluster; 409 when the slug exists.
#[utoipa::path(post, path = "/v1/clusters", tag = "clusters", request_body = CreateCluster,
    responses((status = 201, description = "created", body = ClusterView), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateCluster>,
) -> Result<(StatusCode, axum::Json<ClusterView>), ApiError> {
    let invalid = |m: String| ApiError::unprocessable("invalid_cluster", m);
    let description = body.description.unwrap_or_default();
    check_text(&body.name, &description)?;
    let limits = limits_of(&body.concurrency)?;
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[26..];
    let slug = body.slug.unwrap_or_else(|| slug_from(&body.name, suffix));
    check_cluster(&slug).map_err(invalid)?;
    if state.scheduler.has_cluster(&slug) {
        return Err(ApiError::new(StatusCode::CONFLICT, "conflict", format!("cluster {slug} exists")));
    }
    let cluster = Cluster { slug, name: body.name, description, created_ms: now_ms(), limits };
    state.store.put_cluster(&cluster).await?;
    state.scheduler.add_cluster(&cluster);
    Ok((StatusCode::CREATED, axum::Json(ClusterView::from(&cluster))))
}

/// A cluster's name (1 to 1000 characters) and description (at most 1000):
/// the check every route that writes them makes.
fn check_text(name: &str, description: &str) -> Result<(), ApiError> {
    let invalid = |m: String| ApiError::unprocessable("invalid_cluster", m);
    if name.is_empty() || name.chars().count() > MAX_CLUSTER_TEXT {
        return Err(invalid(format!("name must be 1 to {MAX_CLUSTER_TEXT} characters")));
    }
    if description.chars().count() > MAX_CLUSTER_TEXT {
        return Err(invalid(format!("description must be at most {MAX_CLUSTER_TEXT} characters")));
    }
    Ok(())
}

/// `PATCH /v1/clusters/{slug}`: the cluster with a new name or description
/// (`default` included); its slug stays.
#[utoipa::path(operation_id = "update_cluster", patch, path = "/v1/clusters/{slug}", tag = "clusters", request_body = UpdateCluster,
    params(("slug" = String, Path, pattern = "^[A-Za-z0-9-]{1,100}$", description = "the cluster's slug")),
    responses((status = 200, description = "the updated cluster", body = ClusterView), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Json(body): Json<UpdateCluster>,
) -> Result<axum::Json<ClusterView>, ApiError> {
    let mut cluster = find(&state, &slug)?;
    cluster.name = body.name.unwrap_or(cluster.name);
    cluster.description = body.description.unwrap_or(cluster.description);
    check_text(&cluster.name, &cluster.description)?;
    if let Some(bodies) = &body.concurrency {
        cluster.limits = limits_of(bodies)?;
    }
    state.store.put_cluster(&cluster).await?;
    state.scheduler.add_cluster(&cluster);
    Ok(axum::Json(ClusterView::from(&cluster)))
}

/// `GET /v1/clusters`: every cluster, `default` first.
#[utoipa::path(operation_id = "list_clusters", get, path = "/v1/clusters", tag = "clusters",
    responses((status = 200, description = "clusters", body = Vec<ClusterView>), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<axum::Json<Vec<ClusterView>>, ApiError> {
    let mut clusters = vec![find(&state, DEFAULT_CLUSTER)?];
    clusters.extend(state.store.clusters()?.into_iter().filter(|c| c.slug != DEFAULT_CLUSTER));
    Ok(axum::Json(clusters.iter().map(ClusterView::from).collect()))
}

/// The cluster `slug`: `default` as stored once updated, else as built in.
fn find(state: &AppState, slug: &str) -> Result<Cluster, ApiError> {
    match state.store.cluster(slug)? {
        Some(cluster) => Ok(cluster),
        None if slug == DEFAULT_CLUSTER => Ok(Cluster::default_cluster()),
        None => Err(ApiError::not_found(format!("cluster {slug} not found"))),
    }
}

/// `GET /v1/clusters/{slug}`.
#[utoipa::path(operation_id = "show_cluster", get, path = "/v1/clusters/{slug}", tag = "clusters", params(("slug" = String, Path, pattern = "^[A-Za-z0-9-]{1,100}$", description = "the cluster's slug")),
    responses((status = 200, description = "the cluster", body = ClusterView), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<axum::Json<ClusterView>, ApiError> {
    Ok(axum::Json(ClusterView::from(&find(&state, &slug)?)))
}

/// `DELETE /v1/clusters/{slug}`: 204; 409 for `default`, a cluster whose
/// tasks are unfinished (waiting, ready or running) or one an automation
/// submits to.
#[utoipa::path(operation_id = "delete_cluster", delete, path = "/v1/clusters/{slug}", tag = "clusters", params(("slug" = String, Path, pattern = "^[A-Za-z0-9-]{1,100}$", description = "the cluster's slug")),
    responses((status = 204, description = "deleted"), (status = "4XX", description = REFUSED, body = ErrorBody)),
    security(("admin" = [])))]
pub async fn delete(State(state): State<AppState>, Path(slug): Path<String>) -> Result<StatusCode, ApiError> {
    let conflict = |m: String| ApiError::new(StatusCode::CONFLICT, "conflict", m);
    if slug == DEFAULT_CLUSTER {
        return Err(conflict("the default cluster cannot be deleted".into()));
    }
    let cluster = find(&state, &slug)?;
    if let Some(a) = state.store.automations()?.into_iter().find(|a| a.cluster == cluster.slug) {
        return Err(conflict(format!(
            "cluster {slug} is used by automation {} ({}): delete it first",
            a.id, a.name
        )));
    }
    state.scheduler.remove_cluster(&cluster.slug);
    if state.store.cluster_has_live_tasks(&cluster.slug)? {
        state.scheduler.add_cluster(&cluster);
        return Err(conflict(format!("cluster {slug} has unfinished tasks (waiting, ready or running)")));
    }
    state.store.delete_cluster(&cluster.slug).await?;
    Ok(StatusCode::NO_CONTENT)
}
