//! Where attempts read their dependencies' outputs: this host's store for
//! the in-process runners, the host's API (`GET /v1/runners/outputs/...`,
//! with the runner's token) for a remote one.

use futures_util::future::BoxFuture;

use super::host_api::{HostApi, refusal};
use crate::model::{OutputError, TaskKey};
use crate::sandbox::OutputReader;
use crate::store::Store;

/// Outputs read from this host's store.
pub struct StoreOutputs(pub Store);

impl OutputReader for StoreOutputs {
    fn read(&self, key: TaskKey) -> BoxFuture<'static, Result<Option<Vec<u8>>, String>> {
        let store = self.0.clone();
        Box::pin(async move {
            match store.read_dependency_output(key).await {
                Ok(Ok(bytes)) => Ok(Some(bytes)),
                Ok(Err(OutputError::None(_))) => Ok(None),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("the host could not read the output of task {}: {e}", key.task)),
            }
        })
    }
}

/// Outputs fetched from the host's API.
pub struct HttpOutputs(pub HostApi);

impl OutputReader for HttpOutputs {
    fn read(&self, key: TaskKey) -> BoxFuture<'static, Result<Option<Vec<u8>>, String>> {
        let req =
            self.0.request(reqwest::Method::GET, &format!("/v1/runners/outputs/{}/{}", key.job, key.task));
        Box::pin(async move {
            let failed = |e: reqwest::Error| format!("could not fetch the output of task {}: {e}", key.task);
            let resp = req.send().await.map_err(failed)?;
            match resp.status() {
                reqwest::StatusCode::NO_CONTENT => Ok(None),
                s if s.is_success() => Ok(Some(resp.bytes().await.map_err(failed)?.to_vec())),
                _ => Err(format!("the host refused the output of task {} {}", key.task, refusal(resp).await)),
            }
        })
    }
}
