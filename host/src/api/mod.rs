//! The HTTP API: the only code that touches axum. Handlers hold handles to
//! the scheduler, the store's read side and the sandbox; they validate every
//! request and answer errors as JSON.

mod auth;
mod automations;
mod cache;
mod cancels;
mod clone;
mod clusters;
mod dashboard;
mod error;
mod events;
mod extract;
mod fleet;
mod framing;
mod graph;
mod jobs;
mod modules;
mod openapi;
mod outputs;
mod query;
mod replica;
mod roots;
mod runners;
mod secrets;
mod serve;
mod spans;
mod stats;
mod uploads;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{Role, TokenFileError, Tokens};
pub use cancels::ForcedCancels;
pub use error::ApiError;
pub use fleet::{Fleet, RunnerView};
pub use jobs::{LogPageView, Retried};
pub use query::JobPage;
pub use replica::{Front, Standby, front};
/// A host's routes, as [`router`] builds them (for the server to hold).
pub type Routes = Router;
pub use serve::{ServeLimits, serve};
pub use uploads::{UploadError, UploadState, UploadView};
pub use views::{CountsView, JobView, LogView, ModuleView, TaskTypeView, TaskView};

use crate::sandbox::Sandbox;
use crate::scheduler::Scheduler;
use crate::store::Store;

/// Largest request body of most routes.
const BODY_LIMIT: usize = 4 << 20;
/// Largest module upload.
const MODULE_LIMIT: usize = 64 << 20;
/// Event streams open at once; one more is refused (503).
pub const MAX_FOLLOWERS: usize = 1024;

/// What handlers share: one allocation, so the state axum clones for every
/// request costs one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Handles>);

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// The handles the API works through.
pub struct Handles {
    /// Changes the job graph.
    pub scheduler: Scheduler,
    /// Reads jobs, tasks, logs and modules.
    pub store: Store,
    /// The jobs' caches.
    pub cache: crate::cache::JobCache,
    /// The host's secrets.
    pub secrets: crate::secrets::Secrets,
    /// Validates and compiles uploaded modules.
    pub sandbox: Arc<Sandbox>,
    /// Who may call what.
    pub tokens: Arc<Tokens>,
    /// The OpenAPI document, as JSON (filled in by [`router`]).
    pub openapi: Arc<String>,
    /// The runners heard from.
    pub fleet: Arc<Fleet>,
    /// Recent forced cancels, for remote runners.
    pub cancels: Arc<ForcedCancels>,
    /// Set (to the end of the grace) once the host stops: event streams end.
    pub stopping: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
    /// Room for event-stream followers ([`MAX_FOLLOWERS`] in all).
    pub followers: Arc<tokio::sync::Semaphore>,
    /// Longest a runner's long-poll waits.
    pub poll_limit: std::time::Duration,
    /// Background uploads (`POST /v1/modules?background=true`).
    pub uploads: Arc<uploads::Uploads>,
}

/// The API's routes, registered together with their OpenAPI description.
/// Admin routes need an admin token, the runner protocol a runner token,
/// `/healthz` and the OpenAPI document none (see [`auth`]).
pub fn router(mut handles: Handles) -> Router {
    // A body over `bytes` is refused from its announced length, or while read.
    let limit = |bytes: usize| {
        (DefaultBodyLimit::max(bytes), axum::middleware::from_fn_with_state(bytes, extract::announced_length))
    };
    let guard = |role| {
        axum::middleware::from_fn_with_state(
            auth::Guard { tokens: handles.tokens.clone(), role },
            auth::require,
        )
    };
    let modules =
        OpenApiRouter::new().routes(routes!(modules::upload, modules::list)).layer(limit(MODULE_LIMIT));
    let modules = modules.routes(routes!(uploads::show));
    let admin = OpenApiRouter::new()
        .routes(routes!(modules::task_types))
        .routes(routes!(jobs::submit, query::list))
        .routes(routes!(jobs::show, jobs::delete))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::retry))
        .routes(routes!(clone::clone_job))
        .routes(routes!(graph::tasks))
        .routes(routes!(graph::task))
        .routes(routes!(outputs::task_output))
        .routes(routes!(outputs::job_output))
        .routes(routes!(cache::list))
        .routes(routes!(cache::get))
        .routes(routes!(jobs::logs))
        .routes(routes!(graph::diagram))
        .routes(routes!(events::events))
        .routes(routes!(spans::spans))
        .routes(routes!(stats::stats))
        .routes(routes!(runners::list))
        .routes(routes!(automations::create, automations::list))
        .routes(routes!(automations::show, automations::update, automations::delete))
        .routes(routes!(clusters::create, clusters::list))
        .routes(routes!(clusters::show, clusters::update, clusters::delete))
        .routes(routes!(secrets::list))
        .routes(routes!(secrets::set, secrets::delete))
        .layer(limit(BODY_LIMIT))
        .merge(modules)
        .route_layer(guard(auth::Role::Admin));
    // Values stream through; `cache_value_bytes` bounds them as they do.
    let cache_values = OpenApiRouter::new()
        .routes(routes!(cache::runner_list))
        .routes(routes!(cache::runner_get, cache::runner_put, cache::runner_delete))
        .layer(limit(crate::model::MAX_CACHE_VALUE_BYTES));
    let runners = OpenApiRouter::new()
        .routes(routes!(runners::claim))
        .routes(routes!(runners::extend))
        .routes(routes!(runners::report))
        .routes(routes!(runners::complete))
        .routes(routes!(runners::release))
        .routes(routes!(runners::module_bytes))
        .routes(routes!(runners::module_artifact))
        .routes(routes!(outputs::runner_output))
        .routes(routes!(secrets::runner_read))
        .routes(routes!(runners::config))
        .routes(routes!(runners::interrupts))
        .layer(limit(BODY_LIMIT))
        .merge(cache_values)
        .route_layer(guard(auth::Role::Runner));
    let (router, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(openapi_json))
        .routes(routes!(dashboard::page))
        .routes(routes!(dashboard::file))
        .merge(admin)
        .merge(runners)
        .split_for_parts();
    handles.openapi = Arc::new(openapi::render(&doc, handles.tokens.is_empty()));
    router
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            )
        })
        .with_state(AppState(Arc::new(handles)))
}

/// `GET /healthz`: the host is up and its store takes writes; 503
/// `store_unavailable` after a store fault (the host then exits).
#[utoipa::path(get, path = "/healthz", tag = "host", responses((status = 200, description = "up", body = String),
    (status = 503, description = "the store stopped taking writes", body = error::ErrorBody)))]
async fn healthz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    match state.store.fault().borrow().as_deref() {
        Some(reason) => Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("the store stopped taking writes: {reason}"),
        )),
        None => Ok("ok"),
    }
}

/// `GET /v1/openapi.json`: this API's OpenAPI 3.1 document (no token needed:
/// it holds nothing but the API's shape).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "host",
    responses((status = 200, description = "the OpenAPI document", content_type = "application/json")))]
async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], state.openapi.as_str().to_owned())
}
