//! `GET /v1/jobs`: jobs submitted in a time range, newest first, filtered and
//! cursor-paged. A range scan over time-ordered job ids.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::error::ErrorBody;
use super::extract::Query;
use super::openapi;
use super::views::JobView;
use super::{ApiError, AppState};
use crate::model::{Job, JobId, JobState};

/// Largest page.
const MAX_LIMIT: usize = 1000;

/// The query string of `GET /v1/jobs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    /// Start of the range, inclusive: RFC 3339 (`2025-01-01T00:00:00Z`) or a date (`2025-01-01`).
    #[param(schema_with = openapi::time_or_date)]
    pub from: Option<String>,
    /// End of the range, exclusive (a range that ends before it starts is empty).
    #[param(schema_with = openapi::time_or_date)]
    pub to: Option<String>,
    /// Only jobs in this state: submitted, running, started, completed, failed, canceled.
    #[param(schema_with = openapi::job_state)]
    pub state: Option<JobState>,
    /// Only jobs with exactly this name.
    pub name: Option<String>,
    /// Only jobs whose root runs on this cluster.
    pub cluster: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(format = Uuid)]
    pub cursor: Option<String>,
}

/// One page of jobs.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPage {
    /// Newest first.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Parses an RFC 3339 time (any offset) or a plain date (midnight UTC) into
/// Unix milliseconds; times before 1970 count as 1970.
pub fn parse_time(raw: &str) -> Result<u64, String> {
    let bad = |e: jiff::Error| format!("`{}` is not an RFC 3339 time or a date: {e}", raw.escape_debug());
    let time = if raw.len() == 10 {
        let date: jiff::civil::Date = raw.parse().map_err(bad)?;
        jiff::tz::Offset::UTC.to_timestamp(date.to_datetime(jiff::civil::Time::midnight())).map_err(bad)?
    } else {
        raw.parse::<jiff::Timestamp>().map_err(bad)?
    };
    Ok(u64::try_from(time.as_millisecond()).unwrap_or(0))
}

fn bound(raw: Option<&str>, default: JobId) -> Result<JobId, ApiError> {
    match raw {
        None => Ok(default),
        Some(r) => {
            parse_time(r).map(JobId::lower_bound_at).map_err(|e| ApiError::bad_request("invalid_range", e))
        }
    }
}

/// `GET /v1/jobs`.
#[utoipa::path(operation_id = "list_jobs", get, path = "/v1/jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, description = "one page of jobs, newest first", body = JobPage), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<JobQuery>,
) -> Result<axum::Json<JobPage>, ApiError> {
    let from = bound(q.from.as_deref(), JobId::lower_bound_at(0))?;
    let mut to = bound(q.to.as_deref(), JobId::lower_bound_at((1 << 48) - 1))?;
    if let Some(c) = &q.cursor {
        let cursor: JobId =
            c.parse().map_err(|_| ApiError::bad_request("invalid_cursor", "the cursor is not a job id"))?;
        to = to.min(cursor);
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let keep = |j: &Job| {
        q.state.is_none_or(|s| j.state() == s)
            && q.name.as_ref().is_none_or(|n| &j.name == n)
            && q.cluster.as_ref().is_none_or(|c| &j.cluster == c)
    };
    // An empty range (`from` not before `to`, or a cursor before `from`) has no jobs.
    let jobs = if from < to { state.store.jobs_between(from, to, limit, keep)? } else { Vec::new() };
    let next_cursor = (jobs.len() == limit).then(|| jobs.last().map(|j| j.id.to_string())).flatten();
    Ok(axum::Json(JobPage { jobs: jobs.iter().map(JobView::from).collect(), next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_dates_parse() {
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z").unwrap(), 1500);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2025-13-01").is_err());
        assert_eq!(parse_time("1970-01-01T01:00:01+01:00").unwrap(), 1000);
        assert_eq!(parse_time("1969-12-31T00:00:00Z").unwrap(), 0);
    }
}
