//! Uploads that answer at once. Compiling a large component (a 19 MB
//! Python one) takes seconds; `POST /v1/modules?background=true` answers
//! 202 with an upload id as soon as the request is checked, compiles and
//! stores in the background, and `GET /v1/modules/uploads/{id}` tells where
//! the upload stands: `compiling`, `registered` (with the module, and the
//! status the synchronous upload would have answered) or `refused` (with
//! the error it would have answered).
//!
//! Kept in memory, the newest [`KEPT`]: an upload still compiling when the
//! host stops is lost, as its request would have been. At most
//! [`MAX_COMPILING`] compile at once.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

use super::views::{ModuleView, timestamp};
use super::{ApiError, AppState};
use crate::model::now_ms;

/// Uploads remembered at most.
pub const KEPT: usize = 1000;

/// Background uploads compiling at once at most; one more is refused with
/// 503 `busy` (each holds its body, up to the upload limit, and a compiler).
pub const MAX_COMPILING: usize = 4;

/// Where one upload stands.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UploadView {
    /// The upload's id.
    #[schema(format = "uuid")]
    pub id: String,
    /// Where it stands.
    pub state: UploadState,
    /// When it was received (RFC 3339).
    pub started_at: String,
    /// Milliseconds from receipt to now, or to its end.
    pub elapsed_ms: u64,
    /// The status the synchronous upload would have answered, once ended.
    pub status: Option<u16>,
    /// The module, once registered.
    pub module: Option<ModuleView>,
    /// Why it was refused: `{"code", "message"}`.
    pub error: Option<UploadError>,
}

/// Where an upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Being compiled and checked.
    Compiling,
    /// Stored: `module` and `status` say which and how.
    Registered,
    /// Refused: `error` and `status` say why.
    Refused,
}

/// A refused upload's error, as the synchronous upload answers it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UploadError {
    pub code: String,
    pub message: String,
}

/// The uploads of this host's run.
#[derive(Default)]
pub struct Uploads(Mutex<VecDeque<(Uuid, u64, UploadView)>>);

impl Uploads {
    /// Records a new upload; its view. Refused (503 `busy`) while
    /// [`MAX_COMPILING`] others compile.
    pub fn start(&self) -> Result<UploadView, ApiError> {
        let (id, started) = (Uuid::now_v7(), now_ms());
        let view = UploadView {
            id: id.to_string(),
            state: UploadState::Compiling,
            started_at: timestamp(started),
            elapsed_ms: 0,
            status: None,
            module: None,
            error: None,
        };
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if all.iter().filter(|(_, _, v)| v.state == UploadState::Compiling).count() >= MAX_COMPILING {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("{MAX_COMPILING} uploads are compiling; try again when one has ended"),
            ));
        }
        if all.len() >= KEPT
            && let Some(ended) = all.iter().position(|(_, _, v)| v.state != UploadState::Compiling)
        {
            all.remove(ended);
        }
        all.push_back((id, started, view.clone()));
        Ok(view)
    }

    /// Records how upload `id` ended.
    pub fn finish(&self, id: &str, ended: Result<(axum::http::StatusCode, ModuleView), ApiError>) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((_, started, view)) = all.iter_mut().find(|(_, _, v)| v.id == id) else { return };
        view.elapsed_ms = now_ms().saturating_sub(*started);
        match ended {
            Ok((status, module)) => {
                (view.state, view.status, view.module) =
                    (UploadState::Registered, Some(status.as_u16()), Some(module));
            }
            Err(e) => {
                let error = UploadError { code: e.code().into(), message: e.message().into() };
                (view.state, view.status, view.error) =
                    (UploadState::Refused, Some(e.status().as_u16()), Some(error));
            }
        }
    }

    /// Upload `id`, if remembered.
    pub fn get(&self, id: Uuid) -> Option<UploadView> {
        let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, started, view) = all.iter().find(|(u, _, _)| *u == id)?;
        let mut view = view.clone();
        if view.state == UploadState::Compiling {
            view.elapsed_ms = now_ms().saturating_sub(*started);
        }
        Some(view)
    }
}

/// `GET /v1/modules/uploads/{id}`: where a background upload stands.
#[utoipa::path(get, path = "/v1/modules/uploads/{id}", tag = "modules",
    params(("id" = String, Path, format = "uuid", description = "the upload's id")),
    responses((status = 200, description = "where the upload stands", body = UploadView),
        (status = "4XX", description = "refused: `{\"error\": {\"code\", \"message\"}}`", body = super::error::ErrorBody)),
    security(("admin" = [])))]
pub async fn show(
    axum::extract::State(state): axum::extract::State<AppState>,
    super::extract::Path(id): super::extract::Path<String>,
) -> Result<axum::Json<UploadView>, ApiError> {
    let id = Uuid::try_parse(&id)
        .map_err(|_| ApiError::bad_request("invalid_id", format!("`{id}` is not a valid upload id")))?;
    let view = state.uploads.get(id).ok_or_else(|| ApiError::not_found(format!("no upload {id}")))?;
    Ok(axum::Json(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_a_few_compile_at_once_and_ended_ones_are_told() {
        let uploads = Uploads::default();
        let started: Vec<UploadView> = (0..MAX_COMPILING).map(|_| uploads.start().unwrap()).collect();
        let refused = uploads.start().unwrap_err();
        assert_eq!((refused.status().as_u16(), refused.code()), (503, "busy"));
        let error = ApiError::unprocessable("not_a_component", "no");
        uploads.finish(&started[0].id, Err(error));
        let ended = uploads.get(Uuid::parse_str(&started[0].id).unwrap()).unwrap();
        assert_eq!((ended.state, ended.status), (UploadState::Refused, Some(422)));
        assert_eq!(ended.error.unwrap().code, "not_a_component");
        assert!(uploads.start().is_ok(), "room again once one ended");
    }
}
