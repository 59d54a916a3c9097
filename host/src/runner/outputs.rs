//! Where attempts read their dependencies' outputs: this host's store for
//! the in-process runners, the host's API (`GET /v1/runners/outputs/...`,
//! with the runner's token) for a remote one.

use futures_util::future::BoxFuture;

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
pub struct HttpOutputs {
    pub http: reqwest::Client,
    pub server: String,
    pub token: Option<String>,
}

impl OutputReader for HttpOutputs {
    fn read(&self, key: TaskKey) -> BoxFuture<'static, Result<Option<Vec<u8>>, String>> {
        let url = format!("{}/v1/runners/outputs/{}/{}", self.server, key.job, key.task);
        let mut req = self.http.get(url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        Box::pin(async move {
            let failed = |e: reqwest::Error| format!("could not fetch the output of task {}: {e}", key.task);
            let resp = req.send().await.map_err(failed)?;
            match resp.status() {
                reqwest::StatusCode::NO_CONTENT => Ok(None),
                s if s.is_success() => Ok(Some(resp.bytes().await.map_err(failed)?.to_vec())),
                s => {
                    let body: serde_json::Value = resp.json().await.unwrap_or_default();
                    let message = body["error"]["message"].as_str().unwrap_or("no message").to_owned();
                    Err(format!("the host refused the output of task {} ({s}): {message}", key.task))
                }
            }
        })
    }
}
