//! The in-process work source: claims from and reports to the scheduler of
//! this host, reads module bytes from its store.

use std::sync::Arc;
use std::time::Duration;

use super::WorkSource;
use super::cache::LocalCache;
use super::outputs::StoreOutputs;
use super::secrets::LocalSecrets;
use crate::cache::JobCache;
use crate::model::{Digest, TaskKey};
use crate::sandbox::{CacheAccess, OutputReader, SecretReader, SubtaskCheck};
use crate::scheduler::{self, Assignment, Report, Reported, Scheduler};
use crate::secrets::Secrets;
use crate::store::Store;

/// Work from this host's own scheduler, for one cluster.
pub struct LocalSource {
    scheduler: Scheduler,
    store: Store,
    cluster: String,
    outputs: Arc<dyn OutputReader>,
    cache: Arc<dyn CacheAccess>,
    secrets: Arc<dyn SecretReader>,
}

impl LocalSource {
    /// A source of `cluster`'s tasks, whose attempts use `cache` and
    /// `secrets`.
    pub fn new(
        scheduler: Scheduler,
        store: Store,
        cluster: String,
        cache: JobCache,
        secrets: Secrets,
    ) -> Self {
        let outputs = Arc::new(StoreOutputs(store.clone()));
        let (cache, secrets) = (Arc::new(LocalCache(cache)), Arc::new(LocalSecrets(secrets)));
        LocalSource { scheduler, store, cluster, outputs, cache, secrets }
    }
}

/// Accepts subtasks whose type has a compatible registered implementation,
/// on a cluster that exists.
pub fn registry_check(scheduler: &Scheduler) -> SubtaskCheck {
    let scheduler = scheduler.clone();
    Arc::new(move |task_type, cluster| scheduler.check_subtask(task_type, cluster))
}

impl WorkSource for LocalSource {
    async fn claim(&self, max: usize) -> Result<Vec<Assignment>, scheduler::Error> {
        self.scheduler.claim_batch(&self.cluster, max).await
    }

    /// Hands the reports to the scheduler without waiting for them to be
    /// durable: the runner's thread is not woken again for the answer.
    async fn report(&self, reports: Vec<Report>) -> Result<Reported, scheduler::Error> {
        self.scheduler.report_detached(reports)?;
        Ok(Vec::new())
    }

    async fn release(&self, attempts: Vec<(TaskKey, u64)>) -> Result<(), scheduler::Error> {
        self.scheduler.release(attempts).await
    }

    async fn extend(&self, key: TaskKey, lease: u64) -> Result<Duration, scheduler::Error> {
        self.scheduler.extend(key, lease).await
    }

    async fn module_bytes(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.store.module_bytes(digest).ok().flatten()
    }

    /// In-process runners share the host's sandbox and its artifacts.
    async fn module_artifact(&self, _digest: &Digest, _engine: &str) -> Option<Vec<u8>> {
        None
    }

    fn subtask_check(&self) -> SubtaskCheck {
        registry_check(&self.scheduler)
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
}
