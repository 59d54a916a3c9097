//! API errors: every failure answers `{"error": {"code", "message"}}` with a
//! fitting status; internal details are logged, not sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::{sandbox, scheduler, store};

/// The body of every error answer (for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "describes the JSON that `ApiError` writes")]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "describes the JSON that `ApiError` writes")]
pub struct ErrorDetail {
    /// A stable, machine-readable code, e.g. `not_found`.
    code: String,
    /// What a person should read.
    message: String,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with an explicit status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    /// 400: the request is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 422: well-formed, but refused.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500, with the detail logged rather than sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the host's log")
    }
}

impl ApiError {
    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        // Every 503 is temporary: a client may try again in a second.
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<crate::model::ParseIdError> for ApiError {
    fn from(e: crate::model::ParseIdError) -> Self {
        ApiError::bad_request("invalid_id", e.to_string())
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Unavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string())
            }
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "a request found the store unavailable");
                let message = "the store's database is unavailable; try again shortly";
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", message)
            }
            e => ApiError::internal(e),
        }
    }
}

impl From<scheduler::Error> for ApiError {
    fn from(e: scheduler::Error) -> Self {
        match e {
            scheduler::Error::UnknownJob(_)
            | scheduler::Error::UnknownTask(_)
            | scheduler::Error::UnknownAutomation(_) => ApiError::not_found(e.to_string()),
            scheduler::Error::StaleAttempt { .. } => {
                ApiError::new(StatusCode::CONFLICT, "stale_attempt", e.to_string())
            }
            scheduler::Error::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            scheduler::Error::TooManyAutomations(_) => {
                ApiError::new(StatusCode::CONFLICT, "too_many_automations", e.to_string())
            }
            scheduler::Error::BadDependency(_) => ApiError::unprocessable("bad_dependency", e.to_string()),
            scheduler::Error::Closed => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the host is shutting down")
            }
            scheduler::Error::Busy(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
            }
            scheduler::Error::StoreUnavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string())
            }
            scheduler::Error::Store(_) | scheduler::Error::Unavailable(_) => ApiError::internal(e),
        }
    }
}

impl From<sandbox::Error> for ApiError {
    fn from(e: sandbox::Error) -> Self {
        match e {
            sandbox::Error::NotAComponent(_) => ApiError::unprocessable("not_a_component", e.to_string()),
            sandbox::Error::Incompatible(_) => {
                ApiError::unprocessable("incompatible_component", e.to_string())
            }
            sandbox::Error::TooLarge(_) => ApiError::unprocessable("too_large_for_sandbox", e.to_string()),
            sandbox::Error::TaskTypes(_) => ApiError::unprocessable("invalid_task_types", e.to_string()),
            sandbox::Error::Engine(_) | sandbox::Error::Artifact(_) | sandbox::Error::MissingModule(_) => {
                ApiError::internal(e)
            }
        }
    }
}
