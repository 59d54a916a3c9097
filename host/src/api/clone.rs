//! `POST /v1/jobs/{id}/clone`: a new job with the root tasks of an
//! existing one (each one's task type as submitted, its input with optional
//! overrides, its cluster and retries), under a new name. It is submitted as any job is:
//! the same checks, the same acknowledgement once it is on disk.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::ErrorBody;
use super::extract::{Json, Path};
use super::jobs::{SubmitJob, find_job, submit_checked};
use super::roots::RootBody;
use super::views::JobView;
use super::{ApiError, AppState};
use crate::model::TaskKey;

/// The body of `POST /v1/jobs/{id}/clone`; every field may be left out.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneJob {
    /// The new job's name (1 to 256 characters); the original's when absent.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub name: Option<String>,
    /// Replaces fields of each root task's input: when both it and the
    /// original input are JSON objects, its keys replace the original's and
    /// the other keys stay; otherwise it replaces the whole input.
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    pub input: Option<serde_json::Value>,
    /// Retries of each root task; the originals' when absent.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Its priority, -10 to 10; the original's when absent.
    #[serde(default)]
    #[schema(minimum = -10, maximum = 10)]
    pub priority: Option<i8>,
    /// A repeat with the same key returns the first job (1 to 256 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub idempotency_key: Option<String>,
}

/// The original input with `overrides` applied (see [`CloneJob::input`]).
fn overridden(original: serde_json::Value, overrides: Option<serde_json::Value>) -> serde_json::Value {
    match (original, overrides) {
        (original, None) => original,
        (serde_json::Value::Object(mut fields), Some(serde_json::Value::Object(new))) => {
            fields.extend(new);
            serde_json::Value::Object(fields)
        }
        (_, Some(replacement)) => replacement,
    }
}

/// `POST /v1/jobs/{id}/clone`: 201 with the new job once it is on disk.
#[utoipa::path(post, path = "/v1/jobs/{id}/clone", tag = "jobs", request_body = CloneJob,
    params(("id" = String, Path, format = Uuid, description = "the job to clone")),
    responses((status = 201, description = "the new job, on disk", body = JobView),
        (status = 200, description = "the job an earlier submission with the same idempotency key made", body = JobView), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("admin" = [])))]
pub async fn clone_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<CloneJob>,
) -> Result<(StatusCode, axum::Json<JobView>), ApiError> {
    let job = find_job(&state, &id)?;
    let mut roots = Vec::with_capacity(1 + job.other_roots.len());
    for task in std::iter::once(job.root).chain(job.other_roots.iter().copied()) {
        let root = state
            .store
            .task(TaskKey { job: job.id, task })?
            .ok_or_else(|| ApiError::not_found(format!("job {} has lost root task {task}", job.id)))?;
        let original = serde_json::from_str(&root.def.input).unwrap_or(serde_json::Value::Null);
        roots.push(RootBody {
            task: root.def.task_type.to_string(),
            input: overridden(original, body.input.clone()),
            cluster: Some(root.status.cluster.clone()),
            max_retries: body.max_retries.unwrap_or(root.status.max_retries),
            backoff: root.status.backoff.map(Into::into),
        });
    }
    let first = roots.remove(0);
    let submit = SubmitJob {
        name: body.name.unwrap_or(job.name),
        task: first.task,
        input: first.input,
        cluster: first.cluster,
        max_retries: first.max_retries,
        priority: body.priority.unwrap_or(job.priority),
        backoff: first.backoff,
        more_roots: roots,
        not_before: None,
        idempotency_key: body.idempotency_key,
        traceparent: None,
    };
    submit_checked(&state, submit, None).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::overridden;

    #[test]
    fn overrides_replace_fields_of_an_object_and_anything_else_whole() {
        let original = json!({"titles": ["a"], "year": 1999});
        assert_eq!(overridden(original.clone(), None), original);
        assert_eq!(
            overridden(original.clone(), Some(json!({"year": 2001, "new": true}))),
            json!({"titles": ["a"], "year": 2001, "new": true})
        );
        assert_eq!(overridden(original, Some(json!([1, 2]))), json!([1, 2]));
        assert_eq!(overridden(json!(5), Some(json!({"a": 1}))), json!({"a": 1}));
    }
}
