//! Where attempts read their secrets: this host's [`Secrets`] for the
//! in-process runners, the host's API (`GET /v1/runners/secrets/{name}`,
//! naming the attempt by its lease, with the runner's token) for a remote
//! one. The sandbox has checked the module's grant; the host checks it
//! again for a remote runner.

use futures_util::future::BoxFuture;

use super::host_api::{HostApi, refusal};
use crate::model::TaskKey;
use crate::protocol::SecretValue;
use crate::sandbox::SecretReader;
use crate::secrets::Secrets;

/// This host's secrets.
pub struct LocalSecrets(pub Secrets);

fn missing(name: &str) -> String {
    format!("there is no secret named {name} (set it with `sandflow secret set {name}`)")
}

impl SecretReader for LocalSecrets {
    fn read(&self, _key: TaskKey, _lease: u64, name: String) -> BoxFuture<'static, Result<String, String>> {
        let read = self.0.read(&name);
        Box::pin(async move {
            match read {
                Ok(Some(value)) => Ok(value),
                Ok(None) => Err(missing(&name)),
                Err(e) => {
                    tracing::error!(secret = %name, error = %e, "could not read a secret");
                    Err(format!("the host could not read secret {name}"))
                }
            }
        })
    }
}

/// The host's secrets, through its API.
pub struct HttpSecrets(pub HostApi);

impl SecretReader for HttpSecrets {
    fn read(&self, key: TaskKey, lease: u64, name: String) -> BoxFuture<'static, Result<String, String>> {
        let query =
            [("job", key.job.to_string()), ("task", key.task.to_string()), ("lease", lease.to_string())];
        let req = self.0.request(reqwest::Method::GET, &format!("/v1/runners/secrets/{name}")).query(&query);
        Box::pin(async move {
            let failed = |e: reqwest::Error| format!("could not fetch secret {name}: {e}");
            let resp = req.send().await.map_err(failed)?;
            if resp.status().is_success() {
                return Ok(resp.json::<SecretValue>().await.map_err(failed)?.value);
            }
            Err(format!("the host refused secret {name} {}", refusal(resp).await))
        })
    }
}
