//! `GET /v1/jobs/{id}/events`: server-sent events of a job's state, so
//! clients do not poll. The first event is the job as it is; another follows
//! each change; the stream ends once the job has ended (completed, or halted
//! with nothing running), when the host stops, or when it stops leading its
//! store (its scheduler closed). At most `MAX_FOLLOWERS`
//! streams are open at once.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;

use super::extract::Path;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::error::ErrorBody;
use super::views::JobView;
use super::{ApiError, AppState};
use crate::model::JobId;

/// Where a job's event stream stands.
struct Follow {
    state: AppState,
    job: JobId,
    changes: tokio::sync::broadcast::Receiver<JobId>,
    last: Option<String>,
    ended: bool,
    /// Held while the stream is open.
    _seat: tokio::sync::OwnedSemaphorePermit,
}

impl Follow {
    /// Waits for a change of the job (or a missed one), then reads it.
    async fn next_view(&mut self) -> Option<(String, bool)> {
        loop {
            if self.last.is_some() {
                match self.changes.recv().await {
                    Ok(id) if id != self.job => continue,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
            }
            let job = self.state.store.job(self.job).ok().flatten()?;
            let json = serde_json::to_string(&JobView::from(&job)).ok()?;
            if self.last.as_ref() != Some(&json) {
                self.last = Some(json.clone());
                return Some((json, job.has_ended()));
            }
        }
    }
}

/// `GET /v1/jobs/{id}/events`: `event: job` with the job as `data`.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs", params(("id" = String, Path, format = Uuid, description = "the job id")),
    responses((status = 200, description = "a stream of `event: job` server-sent events, the job's JSON as data", content_type = "text/event-stream"),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = ErrorBody)),
    security(("admin" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let job: JobId = id.parse()?;
    state.store.job(job)?.ok_or_else(|| ApiError::not_found(format!("job {job} not found")))?;
    let Ok(seat) = state.followers.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_followers",
            format!(
                "{} event streams are open, the most this host serves; try again later",
                super::MAX_FOLLOWERS
            ),
        ));
    };
    let changes = state.scheduler.subscribe();
    let stopping = state.stopping.clone();
    let follow = Follow { state, job, changes, last: None, ended: false, _seat: seat };
    let stream = futures_util::stream::unfold(follow, move |mut f| {
        let mut stopping = stopping.clone();
        async move {
            if f.ended {
                return None;
            }
            let (json, ended) = tokio::select! {
                next = f.next_view() => next?,
                _ = stopping.wait_for(Option::is_some) => return None,
            };
            f.ended = ended;
            Some((Ok(Event::default().event("job").data(json)), f))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
