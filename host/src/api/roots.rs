//! A job's root tasks beyond its first (`more_roots` of `POST /v1/jobs`):
//! each checked as the first is (`check_root`), at most [`MAX_ROOTS`] in all.

use serde::{Deserialize, Serialize};

use super::ApiError;
use super::AppState;
use super::jobs::check_root;
use crate::model::Backoff;
use crate::protocol::BackoffBody;
use crate::scheduler::RootSpec;

/// Most root tasks of one job.
pub const MAX_ROOTS: usize = 1000;

/// A further root task of a job.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RootBody {
    /// Its type, `Name` or `Name@vX.Y`.
    #[schema(min_length = 1)]
    pub task: String,
    /// Its input.
    #[schema(value_type = Value)]
    pub input: serde_json::Value,
    /// Its cluster; the job's when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9-]{1,100}$")]
    pub cluster: Option<String>,
    /// Its retries.
    #[serde(default)]
    pub max_retries: u32,
    /// The delay before each of its retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffBody>,
}

/// A backoff as the scheduler takes it, checked (422 `invalid_backoff`).
pub fn backoff_of(body: Option<BackoffBody>) -> Result<Option<Backoff>, ApiError> {
    let backoff = body.map(Backoff::from);
    if let Some(b) = &backoff {
        b.check().map_err(|e| ApiError::unprocessable("invalid_backoff", e))?;
    }
    Ok(backoff)
}

/// The further roots of a job on `cluster` (the default for them), checked.
pub fn more_roots(state: &AppState, bodies: Vec<RootBody>, cluster: &str) -> Result<Vec<RootSpec>, ApiError> {
    if bodies.len() >= MAX_ROOTS {
        return Err(ApiError::unprocessable(
            "too_many_roots",
            format!("a job has at most {MAX_ROOTS} root tasks, got {}", bodies.len() + 1),
        ));
    }
    bodies
        .into_iter()
        .map(|b| {
            let cluster = b.cluster.or_else(|| Some(cluster.to_owned()));
            let (task_type, cluster, input) = check_root(state, &b.task, cluster, &b.input)?;
            Ok(RootSpec {
                task_type,
                input,
                cluster,
                max_retries: b.max_retries,
                backoff: backoff_of(b.backoff)?,
            })
        })
        .collect()
}
