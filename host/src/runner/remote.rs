//! The remote work source: a runner process on another machine takes the
//! tasks of one cluster from a host over HTTP (the runner protocol, wire types
//! in [`crate::protocol`]), fetches the modules it lacks by digest (checked
//! against their sha256; the sandbox keeps their precompiled artifacts in the
//! runner's cache directory), and reports in batches. It keeps a copy of the
//! host's task types and clusters (refreshed when a claim says they changed),
//! so its guests' submissions get the answers an in-process guest gets, and
//! follows the host's forced cancels.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::WorkSource;
use super::cache::HttpCache;
use super::host_api::HostApi;
use super::outputs::HttpOutputs;
use super::secrets::HttpSecrets;
use crate::model::{Digest, TaskKey, TaskType, check_cluster};
use crate::protocol::{
    AttemptRef, ClaimRequest, Claimed, CompleteRequest, Completed, Extended, Interrupts, InterruptsRequest,
    ReleaseRequest, ReportBody, RunnerConfig, RunnerHello,
};
use crate::sandbox::{CacheAccess, OutputReader, Sandbox, SecretReader, SubtaskCheck};
use crate::scheduler::{Assignment, Error, Registry, Report, Reported};

/// How long one claim long-polls (also the longest a stop waits for a claim
/// in flight).
const CLAIM_WAIT_MS: u64 = 10_000;

/// Work from a remote host, for one cluster.
pub struct RemoteSource {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
    /// The host's job caches, through its API.
    cache: Arc<dyn CacheAccess>,
    /// The host's secrets, through its API.
    secrets: Arc<dyn SecretReader>,
    /// Dependencies' outputs, through its API.
    outputs: Arc<dyn OutputReader>,
    cluster: String,
    hello: RunnerHello,
    /// Claimed attempts not yet reported or handed back.
    claimed: Mutex<HashMap<TaskKey, u64>>,
    /// The host's task types and clusters, as last fetched.
    known: Arc<RwLock<Known>>,
    stopping: AtomicBool,
    stop: Notify,
    /// Whether modules are loaded from the host's precompiled artifacts
    /// (else always compiled here).
    host_artifacts: bool,
}

/// A copy of what the host knows of task types and clusters.
#[derive(Default)]
struct Known {
    version: u64,
    registry: Registry,
    clusters: HashSet<String>,
}

impl Known {
    fn of(config: &RunnerConfig) -> Known {
        let mut registry = Registry::default();
        for t in &config.task_types {
            if let Ok(t) = TaskType::new(&t.name, &t.version) {
                registry.register(&t, Digest([0; 32]));
            }
        }
        Known { version: config.version, registry, clusters: config.clusters.iter().cloned().collect() }
    }
}

impl RemoteSource {
    /// A source of `cluster`'s tasks from the host at `server`.
    pub fn new(server: &str, token: Option<String>, cluster: String, id: String, capacity: u32) -> Self {
        let http = reqwest::Client::new();
        let server = server.trim_end_matches('/').to_owned();
        let api = HostApi { http: http.clone(), server: server.clone(), token: token.clone() };
        let cache = Arc::new(HttpCache(api.clone()));
        let secrets = Arc::new(HttpSecrets(api.clone()));
        let outputs = Arc::new(HttpOutputs(api));
        RemoteSource {
            http,
            server,
            token,
            cache,
            secrets,
            outputs,
            cluster,
            hello: RunnerHello { id, capacity, in_flight: 0 },
            claimed: Mutex::new(HashMap::new()),
            known: Arc::default(),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
            host_artifacts: true,
        }
    }

    /// With `false`, every module is compiled here from its bytes, never
    /// loaded from the host's precompiled artifact (`runner --compile-locally`).
    pub fn with_host_artifacts(mut self, on: bool) -> Self {
        self.host_artifacts = on;
        self
    }

    /// Fetches the host's runner configuration (bounds, task types,
    /// clusters) and keeps its task types and clusters.
    pub async fn fetch_config(&self) -> Result<RunnerConfig, Error> {
        let resp =
            self.request(reqwest::Method::GET, "/v1/runners/config").send().await.map_err(unavailable)?;
        let resp = resp.error_for_status().map_err(unavailable)?;
        let config: RunnerConfig = resp.json().await.map_err(unavailable)?;
        *self.known.write().unwrap_or_else(PoisonError::into_inner) = Known::of(&config);
        Ok(config)
    }

    /// Follows the host's forced cancels until the source stops: each one
    /// interrupts this runner's attempts of the job (and those that start
    /// within the cancel's window), a retry lifts it.
    pub async fn follow_interrupts(&self, sandbox: &Sandbox) {
        let mut after = 0;
        while !self.stopping() {
            let body = InterruptsRequest { after, wait_ms: Some(CLAIM_WAIT_MS) };
            let answer = tokio::select! {
                answer = self.post::<_, Interrupts>("/v1/runners/interrupts", &body) => answer,
                () = self.stop.notified() => return,
            };
            match answer {
                Ok(Some(found)) => {
                    for i in found.interrupts {
                        after = after.max(i.seq);
                        let Ok(job) = i.job.parse() else { continue };
                        if i.canceled {
                            let n = sandbox.interrupt_job(job);
                            tracing::info!(%job, interrupted = n, "forced cancel");
                        } else {
                            sandbox.forget_interrupt(job);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "following forced cancels failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Stops claiming: pending and later claims end with `Closed`.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_waiters();
    }

    /// Hands back every attempt claimed and not yet reported.
    pub async fn release_all(&self) -> Result<usize, Error> {
        let attempts: Vec<(TaskKey, u64)> = self.claimed().drain().collect();
        let n = attempts.len();
        if n > 0 {
            self.release(attempts).await?;
        }
        Ok(n)
    }

    fn claimed(&self) -> std::sync::MutexGuard<'_, HashMap<TaskKey, u64>> {
        self.claimed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.server));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// POSTs `body`; `None` for a 204.
    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Option<T>, Error> {
        let resp = self.request(reqwest::Method::POST, path).json(body).send().await.map_err(unavailable)?;
        match resp.status() {
            reqwest::StatusCode::NO_CONTENT => Ok(None),
            s if s.is_success() => resp.json().await.map(Some).map_err(unavailable),
            reqwest::StatusCode::CONFLICT => Err(Error::Conflict(resp.text().await.unwrap_or_default())),
            s => Err(Error::Unavailable(format!(
                "{path} answered {s}: {}",
                resp.text().await.unwrap_or_default()
            ))),
        }
    }

    async fn claim_once(&self, max: usize) -> Result<Vec<Assignment>, Error> {
        let in_flight = self.claimed().len() as u32;
        let hello = RunnerHello { in_flight, ..self.hello.clone() };
        let body = ClaimRequest {
            cluster: self.cluster.clone(),
            max: Some(max as u32),
            wait_ms: Some(CLAIM_WAIT_MS),
            runner: Some(hello),
        };
        let Some(claimed) = self.post::<_, Claimed>("/v1/runners/claim", &body).await? else {
            return Ok(Vec::new());
        };
        let stale =
            self.known.read().unwrap_or_else(PoisonError::into_inner).version < claimed.config_version;
        if stale && let Err(e) = self.fetch_config().await {
            tracing::warn!(error = %e, "could not refresh the host's task types");
        }
        let mut batch = Vec::with_capacity(claimed.tasks.len());
        for view in claimed.tasks {
            let assignment = view.into_assignment(&self.cluster).map_err(Error::Unavailable)?;
            self.claimed().insert(assignment.key, assignment.lease);
            batch.push(assignment);
        }
        Ok(batch)
    }
}

fn unavailable(e: reqwest::Error) -> Error {
    Error::Unavailable(e.to_string())
}

impl WorkSource for RemoteSource {
    async fn claim(&self, max: usize) -> Result<Vec<Assignment>, Error> {
        loop {
            if self.stopping.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let in_flight = self.claim_once(max);
            tokio::pin!(in_flight);
            let claimed = tokio::select! {
                claimed = &mut in_flight => claimed,
                () = self.stop.notified() => {
                    // Tasks the host handed out for this claim must not be
                    // stranded: let it finish and hand them back.
                    if let Ok(batch) = in_flight.await
                        && !batch.is_empty()
                    {
                        let _ = self.release(batch.iter().map(|a| (a.key, a.lease)).collect()).await;
                    }
                    return Err(Error::Closed);
                }
            };
            match claimed {
                Ok(batch) if batch.is_empty() => {}
                Ok(batch) => return Ok(batch),
                Err(e) => {
                    tracing::warn!(error = %e, "claim failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn extend(&self, key: TaskKey, lease: u64) -> Result<Duration, Error> {
        let extended: Option<Extended> =
            self.post("/v1/runners/extend", &AttemptRef::new(key, lease)).await?;
        Ok(Duration::from_millis(extended.map_or(0, |e| e.lease_ms)))
    }

    async fn report(&self, reports: Vec<Report>) -> Result<Reported, Error> {
        let keys: Vec<TaskKey> = reports.iter().map(|r| r.key).collect();
        let body =
            CompleteRequest { reports: reports.into_iter().map(ReportBody::from).collect(), claim: None };
        let completed: Completed = self.post("/v1/runners/complete", &body).await?.ok_or(Error::Closed)?;
        let mut claimed = self.claimed();
        for key in &keys {
            claimed.remove(key);
        }
        Ok(completed
            .results
            .into_iter()
            .map(|r| if r.ok { Ok(()) } else { Err(Error::Conflict(r.message.unwrap_or_default())) })
            .collect())
    }

    async fn release(&self, attempts: Vec<(TaskKey, u64)>) -> Result<(), Error> {
        {
            let mut claimed = self.claimed();
            for (key, _) in &attempts {
                claimed.remove(key);
            }
        }
        let body =
            ReleaseRequest { attempts: attempts.into_iter().map(|(k, a)| AttemptRef::new(k, a)).collect() };
        self.post::<_, serde_json::Value>("/v1/runners/release", &body).await.map(|_| ())
    }

    fn outputs(&self) -> Arc<dyn OutputReader> {
        self.outputs.clone()
    }

    fn cache(&self) -> Option<Arc<dyn CacheAccess>> {
        Some(self.cache.clone())
    }

    fn secrets(&self) -> Option<Arc<dyn SecretReader>> {
        Some(self.secrets.clone())
    }

    async fn module_artifact(&self, digest: &Digest, engine: &str) -> Option<Vec<u8>> {
        if !self.host_artifacts {
            return None;
        }
        let path = format!("/v1/runners/artifacts/{digest}?engine={engine}");
        let resp = self.request(reqwest::Method::GET, &path).send().await.ok()?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            tracing::info!(%digest, "the host has no artifact for this runner's engine; compiling");
            return None;
        }
        let bytes = resp.error_for_status().ok()?.bytes().await.ok()?;
        tracing::info!(%digest, bytes = bytes.len(), "fetched the host's precompiled artifact");
        Some(bytes.to_vec())
    }

    async fn module_bytes(&self, digest: &Digest) -> Option<Vec<u8>> {
        let resp = self.request(reqwest::Method::GET, &format!("/v1/modules/{digest}")).send().await.ok()?;
        let bytes = resp.error_for_status().ok()?.bytes().await.ok()?;
        if Digest::of(&bytes) != *digest {
            tracing::error!(%digest, "fetched module bytes do not match their digest; refusing them");
            return None;
        }
        tracing::info!(%digest, bytes = bytes.len(), "fetched a module");
        Some(bytes.to_vec())
    }

    /// The host's own check, on the copy of its task types and clusters
    /// (the host checks again when the report arrives).
    fn subtask_check(&self) -> SubtaskCheck {
        let known = self.known.clone();
        Arc::new(move |task_type, cluster| {
            let known = known.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = cluster {
                check_cluster(c)?;
                if !known.clusters.contains(c) {
                    return Err(format!("unknown cluster {c}: create it first (POST /v1/clusters)"));
                }
            }
            match known.registry.resolve(task_type) {
                Some(_) => Ok(()),
                None => {
                    Err(format!("unknown task type {task_type}: no registered implementation can run it"))
                }
            }
        })
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}
