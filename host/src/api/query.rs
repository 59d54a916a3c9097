//! `GET /v1/jobs`: jobs submitted in a time or id range, newest or oldest
//! first, filtered (by states, task states, name, a name fragment,
//! cluster, automation) and cursor-paged. A range scan over time-ordered
//! job ids (an automation's: over its index of fired jobs); the query
//! string is read into a [`Filter`] and a [`Range`] first.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::error::ErrorBody;
use super::extract::Query;
use super::openapi;
use super::views::JobView;
use super::{ApiError, AppState};
use crate::model::{AutomationId, Job, JobId, JobState, TaskState};

/// Largest page.
const MAX_LIMIT: usize = 1000;
/// Longest name fragment, in characters.
const MAX_FRAGMENT: usize = 256;

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
    /// Only jobs in one of these states, comma-separated: submitted, running, started, completed, failed, canceled.
    #[param(
        pattern = "^(submitted|running|started|completed|failed|canceled)(,(submitted|running|started|completed|failed|canceled))*$"
    )]
    pub state: Option<String>,
    /// Only jobs with at least one task in one of these states, comma-separated: queued, running, computed, failed, failed_optional, skipped.
    #[param(
        pattern = "^(queued|running|computed|failed|failed_optional|skipped)(,(queued|running|computed|failed|failed_optional|skipped))*$"
    )]
    pub task_state: Option<String>,
    /// Only jobs with exactly this name.
    pub name: Option<String>,
    /// Only jobs whose name contains this, ignoring case (at most 256 characters).
    #[param(max_length = 256)]
    pub name_contains: Option<String>,
    /// Only jobs with this id or a later one (ids are ordered by submission time).
    #[param(format = Uuid)]
    pub from_id: Option<String>,
    /// Only jobs with an id before this one.
    #[param(format = Uuid)]
    pub to_id: Option<String>,
    /// `desc` (the default): newest first; `asc`: oldest first.
    #[param(pattern = "^(asc|desc)$")]
    pub order: Option<String>,
    /// Only jobs whose root runs on this cluster.
    pub cluster: Option<String>,
    /// Only jobs this automation submitted.
    #[param(format = Uuid)]
    pub automation: Option<String>,
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
    /// Newest first, or oldest first with `order=asc`.
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

fn job_id(raw: &str, what: &str, code: &'static str) -> Result<JobId, ApiError> {
    raw.parse().map_err(|_| ApiError::bad_request(code, format!("the {what} is not a job id")))
}

/// The id right after `id` (the lower bound of the page after it, oldest first).
fn successor(id: JobId) -> JobId {
    JobId::from_bytes(u128::from_be_bytes(*id.as_bytes()).saturating_add(1).to_be_bytes())
}

/// The ids a query scans: from `from` (inclusive) to `to` (exclusive).
#[derive(Debug, PartialEq)]
pub struct Range {
    pub from: JobId,
    pub to: JobId,
    pub newest_first: bool,
}

impl Range {
    fn of(q: &JobQuery) -> Result<Range, ApiError> {
        let mut from = bound(q.from.as_deref(), JobId::lower_bound_at(0))?;
        let mut to = bound(q.to.as_deref(), JobId::lower_bound_at((1 << 48) - 1))?;
        if let Some(id) = &q.from_id {
            from = from.max(job_id(id, "from_id", "invalid_from_id")?);
        }
        if let Some(id) = &q.to_id {
            to = to.min(job_id(id, "to_id", "invalid_to_id")?);
        }
        let newest_first = match q.order.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(other) => {
                return Err(ApiError::bad_request(
                    "invalid_order",
                    format!("order `{}` is neither asc nor desc", other.escape_debug()),
                ));
            }
        };
        if let Some(c) = &q.cursor {
            let cursor = job_id(c, "cursor", "invalid_cursor")?;
            if newest_first { to = to.min(cursor) } else { from = from.max(successor(cursor)) }
        }
        Ok(Range { from, to, newest_first })
    }
}

/// Which jobs of the range a query keeps.
#[derive(Debug, Default)]
pub struct Filter {
    states: Vec<JobState>,
    task_states: Vec<TaskState>,
    name: Option<String>,
    fragment: Option<String>,
    cluster: Option<String>,
}

impl Filter {
    fn of(q: &JobQuery) -> Result<Filter, ApiError> {
        if q.name_contains.as_ref().is_some_and(|f| f.chars().count() > MAX_FRAGMENT) {
            return Err(ApiError::bad_request(
                "invalid_name_contains",
                format!("name_contains has at most {MAX_FRAGMENT} characters"),
            ));
        }
        let fragment = q.name_contains.as_deref().map(str::to_lowercase);
        Ok(Filter {
            states: names(q.state.as_deref(), &JobState::ALL, JobState::as_str, ("state", "invalid_state"))?,
            task_states: names(
                q.task_state.as_deref(),
                &TaskState::ALL,
                TaskState::as_str,
                ("task_state", "invalid_task_state"),
            )?,
            name: q.name.clone(),
            fragment,
            cluster: q.cluster.clone(),
        })
    }

    /// Whether `job` passes every filter given.
    pub fn keeps(&self, job: &Job) -> bool {
        let c = &job.counts;
        let has = |s: &TaskState| c.of(*s) > 0;
        (self.states.is_empty() || self.states.contains(&job.state()))
            && (self.task_states.is_empty() || self.task_states.iter().any(has))
            && self.name.as_ref().is_none_or(|n| &job.name == n)
            && self.fragment.as_ref().is_none_or(|f| job.name.to_lowercase().contains(f.as_str()))
            && self.cluster.as_ref().is_none_or(|c| &job.cluster == c)
    }
}

/// The states a comma-separated list names; a name not among `all` is refused.
pub(super) fn names<S: Copy>(
    raw: Option<&str>,
    all: &[S],
    name: fn(S) -> &'static str,
    (what, code): (&str, &'static str),
) -> Result<Vec<S>, ApiError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    raw.split(',')
        .map(|item| {
            all.iter().copied().find(|s| name(*s) == item).ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|s| name(*s)).collect();
                ApiError::bad_request(
                    code,
                    format!("{what} `{}` is not one of {}", item.escape_debug(), known.join(", ")),
                )
            })
        })
        .collect()
}

/// `GET /v1/jobs`.
#[utoipa::path(operation_id = "list_jobs", get, path = "/v1/jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, description = "one page of jobs, newest first unless `order=asc`", body = JobPage), (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)), security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<JobQuery>,
) -> Result<axum::Json<JobPage>, ApiError> {
    let range = Range::of(&q)?;
    let filter = Filter::of(&q)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", format!("limit must be 1 to {MAX_LIMIT}")));
    }
    // An empty range (`from` not before `to`, or a cursor past an end) has no jobs.
    let automation = match &q.automation {
        Some(raw) => Some(raw.parse::<AutomationId>().map_err(|_| {
            ApiError::bad_request("invalid_automation", "the automation is not an automation id")
        })?),
        None => None,
    };
    let keep = |j: &Job| filter.keeps(j);
    let jobs = match automation {
        _ if range.from >= range.to => Vec::new(),
        Some(a) => {
            state.store.jobs_fired_between(a, (range.from, range.to), range.newest_first, limit, keep)?
        }
        None => state.store.jobs_between(range.from, range.to, range.newest_first, limit, keep)?,
    };
    let next_cursor = (jobs.len() == limit).then(|| jobs.last().map(|j| j.id.to_string())).flatten();
    Ok(axum::Json(JobPage { jobs: jobs.iter().map(JobView::from).collect(), next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query of `key=value&...` pairs (values not escaped).
    fn query(pairs: &str) -> JobQuery {
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).expect("a query")
    }

    #[test]
    fn a_cursor_bounds_the_page_in_the_direction_of_the_scan() {
        let id = JobId::lower_bound_at(5000);
        let newest = Range::of(&query(&format!("cursor={id}"))).unwrap();
        assert_eq!((newest.to, newest.newest_first), (id, true));
        let oldest = Range::of(&query(&format!("cursor={id}&order=asc"))).unwrap();
        assert_eq!((oldest.from, oldest.newest_first), (successor(id), false));
        assert!(oldest.from > id && successor(oldest.from) > oldest.from);
        let ids = Range::of(&query(&format!("from_id={id}&to_id={}", successor(id)))).unwrap();
        assert_eq!((ids.from, ids.to), (id, successor(id)));
        assert!(Range::of(&query("order=sideways")).is_err());
        assert!(Range::of(&query("from_id=x")).is_err());
    }

    #[test]
    fn states_are_comma_lists_of_known_names() {
        let f = Filter::of(&query("state=running,failed&task_state=failed")).unwrap();
        assert_eq!(f.states, [JobState::Running, JobState::Failed]);
        assert_eq!(f.task_states, [TaskState::Failed]);
        for bad in ["state=sleeping", "state=running,", "task_state=done", "state="] {
            assert!(Filter::of(&query(bad)).is_err(), "{bad}");
        }
        let long = format!("name_contains={}", "x".repeat(MAX_FRAGMENT + 1));
        assert!(Filter::of(&query(&long)).is_err());
    }

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
