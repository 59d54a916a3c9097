//! The HTTP API: the only code that touches axum. Handlers hold handles to
//! the scheduler, the store's read side and the sandbox; they validate every
//! request and answer errors as JSON.

mod auth;
mod error;
mod extract;
mod jobs;
mod modules;
mod query;
mod runners;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use auth::{Role, TokenFileError, Tokens};
pub use error::ApiError;
pub use jobs::Retried;
pub use query::JobPage;
pub use views::{JobView, LogView, ModuleView, TaskTypeView, TaskView};

use crate::sandbox::Sandbox;
use crate::scheduler::Scheduler;
use crate::store::Store;

/// Largest request body of most routes.
const BODY_LIMIT: usize = 4 << 20;
/// Largest module upload.
const MODULE_LIMIT: usize = 64 << 20;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Changes the job graph.
    pub scheduler: Scheduler,
    /// Reads jobs, tasks, logs and modules.
    pub store: Store,
    /// Validates and compiles uploaded modules.
    pub sandbox: Arc<Sandbox>,
    /// Who may call what.
    pub tokens: Arc<Tokens>,
}

/// The API's routes. Admin routes need an admin token, the runner protocol a
/// runner token, `/healthz` none (see [`auth`]).
pub fn router(state: AppState) -> Router {
    let guard = |role| {
        axum::middleware::from_fn_with_state(
            auth::Guard { tokens: state.tokens.clone(), role },
            auth::require,
        )
    };
    let modules = Router::new()
        .route("/v1/modules", post(modules::upload).get(modules::list))
        .layer(DefaultBodyLimit::max(MODULE_LIMIT));
    let admin = Router::new()
        .route("/v1/task-types", get(modules::task_types))
        .route("/v1/jobs", post(jobs::submit).get(query::list))
        .route("/v1/jobs/{id}", get(jobs::show))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/jobs/{id}/retry", post(jobs::retry))
        .route("/v1/jobs/{id}/tasks", get(jobs::tasks))
        .route("/v1/jobs/{id}/logs", get(jobs::logs))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .merge(modules)
        .route_layer(guard(auth::Role::Admin));
    let runners = Router::new()
        .route("/v1/runners/claim", post(runners::claim))
        .route("/v1/runners/extend", post(runners::extend))
        .route("/v1/runners/report", post(runners::report))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .route_layer(guard(auth::Role::Runner));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(admin)
        .merge(runners)
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            )
        })
        .with_state(state)
}
