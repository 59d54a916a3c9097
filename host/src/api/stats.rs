//! `GET /v1/stats`: what the host has done since it started, for operators
//! and the benchmark suite: the scheduler's groups and the longest one, the
//! bytes written to the write-ahead log, and how many modules were compiled.

use axum::extract::State;

use super::AppState;
use super::error::ErrorBody;

/// The host's counters since it started.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct StatsView {
    /// The scheduler's single writer.
    pub writer: WriterStats,
    /// Bytes written to durable storage since the host started: appended
    /// to the write-ahead log, or (a PostgreSQL store) keys and values
    /// committed.
    pub log_bytes: u64,
    /// Modules compiled (at upload, or when no precompiled artifact was
    /// found); a module loaded from its artifact does not count.
    pub modules_compiled: u64,
}

/// What the scheduler's writer has done.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WriterStats {
    /// Groups of commands applied.
    pub groups: u64,
    /// Time spent applying them, in µs (not counting the log's syncs).
    pub apply_us: u64,
    /// The longest single group, in µs.
    pub longest_group_us: u64,
}

/// `GET /v1/stats`.
#[utoipa::path(get, path = "/v1/stats", tag = "host",
    responses((status = 200, description = "the host's counters", body = StatsView),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("admin" = [])))]
pub async fn stats(State(state): State<AppState>) -> axum::Json<StatsView> {
    let w = state.scheduler.stats();
    axum::Json(StatsView {
        writer: WriterStats { groups: w.groups, apply_us: w.apply_us, longest_group_us: w.longest_us },
        log_bytes: state.store.log_bytes(),
        modules_compiled: state.sandbox.compiled(),
    })
}
