//! The stack of a host that leads its store: job cache, secrets, sandbox,
//! scheduler (rebuilt from the store), in-process runners, OTLP export and
//! the API's routes; and what its stop does.

use std::sync::{Arc, Mutex};

use super::{Error, Options, within_grace};
use crate::api::{self, Handles};
use crate::cache::JobCache;
use crate::model::now_ms;
use crate::otlp;
use crate::runner::{self, LocalSource};
use crate::sandbox::{Sandbox, Settings};
use crate::scheduler::Scheduler;
use crate::secrets::Secrets;
use crate::store::Store;

/// A running leader; cheap to clone.
#[derive(Clone)]
pub(super) struct Leader {
    /// Its API's routes.
    pub(super) router: api::Routes,
    pub(super) store: Store,
    scheduler: Scheduler,
    exporter: Arc<Mutex<Option<otlp::Exporter>>>,
}

impl Leader {
    /// Starts everything on `store`; `stopping` carries the stop's deadline
    /// to the API (its event streams end with it).
    pub(super) async fn start(
        store: Store,
        options: &Options,
        stopping: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
    ) -> Result<Leader, Error> {
        let cache = JobCache::open(options.cache.as_deref(), &options.data_dir.join("cache"))?;
        let key_file = options.secret_key_file.clone().unwrap_or_else(|| options.data_dir.join("secret.key"));
        let secrets = Secrets::open(store.clone(), &key_file)?;
        let settings = Settings {
            cache_dir: options.data_dir.join("artifacts"),
            limits: options.limits.clone(),
            max_instances: (options.runners + 16) as u32,
            allow_http: Arc::new(options.allow_http.clone()),
            max_task_types: options.max_task_types,
            compile_with: std::env::current_exe().ok(),
        };
        let sandbox = Sandbox::new(settings)?;
        let collector = options.otlp_endpoint.as_deref().map(otlp::Collector::new).transpose()?;
        let mut scheduling = options.scheduling.clone();
        let (finished_tx, finished_rx) = tokio::sync::mpsc::channel(otlp::QUEUE);
        scheduling.finished = collector.is_some().then_some(finished_tx);
        let scheduler = Scheduler::start(store.clone(), scheduling).await?;
        store.resume_checkpoints();
        let exporter =
            collector.map(|c| otlp::Exporter::start(c, store.clone(), scheduler.subscribe(), finished_rx));
        // Past this point a failed start closes the scheduler it started.
        let closing = |e: Error| {
            scheduler.close();
            e
        };
        ensure_cluster(&store, &scheduler, &options.cluster).await.map_err(closing)?;
        for i in 0..options.runners {
            let source = Arc::new(LocalSource::new(
                scheduler.clone(),
                store.clone(),
                options.cluster.clone(),
                cache.clone(),
                secrets.clone(),
            ));
            runner::spawn_thread(format!("sandflow-runner-{i}"), source, sandbox.clone())
                .map_err(|e| closing(Error::Config(format!("could not start runner {i}: {e}"))))?;
        }
        tokio::spawn(sweep_cache(store.clone(), cache.clone()));
        let fleet = Arc::new(api::Fleet::default());
        if options.runners > 0 {
            fleet.add_local(&options.cluster, options.runners as u32);
        }
        let router = api::router(Handles {
            scheduler: scheduler.clone(),
            store: store.clone(),
            cache,
            secrets,
            sandbox,
            tokens: Arc::new(options.tokens.clone()),
            openapi: Default::default(),
            fleet,
            cancels: Default::default(),
            stopping,
            followers: Arc::new(tokio::sync::Semaphore::new(api::MAX_FOLLOWERS)),
            poll_limit: options.serve.poll_limit,
            uploads: Default::default(),
        });
        Ok(Leader { router, store, scheduler, exporter: Arc::new(Mutex::new(exporter)) })
    }

    /// Ends a stack whose store failed and was let go: the scheduler
    /// closes (the runners end with their current attempts), the exporter
    /// sends what it can within `grace`. What the API's requests still
    /// hold goes with them.
    pub(super) async fn step_down(self, grace: std::time::Duration) {
        self.scheduler.close();
        let exporter = self.exporter.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(exporter) = exporter {
            let _ = tokio::time::timeout(grace, exporter.stop()).await;
        }
    }

    /// After the API stopped: the exporter's last batch, then the final
    /// checkpoint (none after a fault: the store's memory may hold writes
    /// that were never durable), each within the stop's deadline.
    pub(super) async fn finish(
        self,
        stopping: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
    ) -> Result<(), Error> {
        let exporter = self.exporter.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(exporter) = exporter {
            within_grace(exporter.stop(), stopping.clone()).await;
        }
        let store = self.store;
        if let Some(reason) = store.fault().borrow().clone() {
            return Err(Error::StoreFault(reason.to_string()));
        }
        // Write what is held in memory to its final place, so the next start
        // of a local store replays no log; past the grace the log is
        // replayed instead (a checkpoint cut short loses nothing: the log is
        // only retired after sled's flush).
        match within_grace(tokio::task::spawn_blocking(move || store.checkpoint()), stopping).await {
            Some(Ok(Err(e))) => {
                tracing::warn!(error = %e, "the final checkpoint failed; the next start replays the log")
            }
            None => tracing::warn!("no time left for the final checkpoint; the next start replays the log"),
            _ => {}
        }
        Ok(())
    }
}

/// Deletes the caches of jobs that no longer exist: a job's cache is
/// deleted after the job, so a stop in between leaves it behind.
async fn sweep_cache(store: Store, cache: JobCache) {
    let jobs = match cache.jobs().await {
        Ok(jobs) => jobs,
        Err(e) => return tracing::warn!(error = %e, "could not list the job caches"),
    };
    for job in jobs {
        if matches!(store.job(job), Ok(None)) {
            match cache.delete_job(job).await {
                Ok(n) => tracing::info!(%job, values = n, "deleted the cache of a deleted job"),
                Err(e) => tracing::warn!(%job, error = %e, "could not delete the cache of a deleted job"),
            }
        }
    }
}

/// Creates the in-process runners' cluster if it does not exist yet.
async fn ensure_cluster(store: &Store, scheduler: &Scheduler, slug: &str) -> Result<(), Error> {
    if scheduler.has_cluster(slug) {
        return Ok(());
    }
    let description = "Created by `serve --cluster`.".to_owned();
    let cluster = crate::model::Cluster {
        slug: slug.into(),
        name: slug.into(),
        description,
        created_ms: now_ms(),
        limits: Vec::new(),
    };
    store.put_cluster(&cluster).await?;
    scheduler.add_cluster(&cluster);
    tracing::info!(cluster = slug, "created the in-process runners' cluster");
    Ok(())
}
