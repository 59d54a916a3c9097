//! Wires the layers into a running host: store, scheduler, sandbox, the
//! in-process runners, and the HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::api::{self, Handles, Tokens};
use crate::cache::{self, JobCache};
use crate::model::{HostPattern, now_ms};
use crate::otlp;
use crate::runner::{self, LocalSource};
use crate::sandbox::{self, Limits, Sandbox, Settings};
use crate::scheduler::{self, Scheduler};
use crate::secrets::Secrets;
use crate::store::{self, Store};

/// Most in-process runners; the sandbox pool is sized from it.
pub const MAX_RUNNERS: usize = 256;

/// Why the host could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The scheduler could not recover.
    #[error(transparent)]
    Scheduler(#[from] scheduler::Error),
    /// The sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] sandbox::Error),
    /// The job cache could not be opened.
    #[error(transparent)]
    Cache(#[from] cache::Error),
    /// The secrets' key could not be read or created.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::Error),
    /// The OTLP exporter could not be set up.
    #[error(transparent)]
    Otlp(#[from] otlp::Error),
    /// Binding or serving failed.
    #[error("serving on {addr}: {source}")]
    Io {
        /// The listen address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A bad option.
    #[error("{0}")]
    Config(String),
    /// The store stopped taking writes while serving.
    #[error("the store stopped taking writes ({0}); a restart recovers from the write-ahead log")]
    StoreFault(String),
}

/// How to run the host.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the database and artifact cache live.
    pub data_dir: PathBuf,
    /// The API's address.
    pub listen: SocketAddr,
    /// In-process runners.
    pub runners: usize,
    /// The cluster the in-process runners serve.
    pub cluster: String,
    /// Per-task limits.
    pub limits: Limits,
    /// Leases and their re-queue budget.
    pub scheduling: scheduler::Settings,
    /// API tokens; none means an open API, allowed only on loopback.
    pub tokens: Tokens,
    /// Hosts every task may send HTTP requests to.
    pub allow_http: Vec<HostPattern>,
    /// Where to export traces and logs over OTLP/HTTP, if anywhere.
    pub otlp_endpoint: Option<String>,
    /// How long a stop may take: open requests, then the final checkpoint.
    pub shutdown_grace: std::time::Duration,
    /// Task types one module may implement.
    pub max_task_types: usize,
    /// Bounds on the API's connections.
    pub serve: api::ServeLimits,
    /// End the write-ahead log at a corrupt record instead of refusing to
    /// start.
    pub recover_log: bool,
    /// Where the job caches live (a bucket URL); `cache/` under the data
    /// dir when `None`.
    pub cache: Option<String>,
    /// The key that seals secrets (created when missing); `secret.key`
    /// under the data dir when `None`.
    pub secret_key_file: Option<PathBuf>,
    /// Where the durable state lives; `db/` under the data dir when `None`.
    pub store: Option<store::Location>,
}

impl Options {
    /// Where the durable state lives.
    fn store_location(&self) -> store::Location {
        self.store.clone().unwrap_or_else(|| store::Location::Dir(self.data_dir.join("db")))
    }
}

/// Starts the host and serves until SIGINT or SIGTERM. `on_listening` is
/// called with the bound address once the API accepts connections.
pub async fn run(options: Options, on_listening: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    if options.runners > MAX_RUNNERS {
        return Err(Error::Config(format!("--runners must be at most {MAX_RUNNERS}")));
    }
    crate::model::check_cluster(&options.cluster).map_err(Error::Config)?;
    check_exposure(&options)?;
    // The TLS of the cache's bucket clients.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Store::open_at(&options.store_location(), options.recover_log)?;
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
    ensure_cluster(&store, &scheduler, &options.cluster).await?;
    for i in 0..options.runners {
        let source = Arc::new(LocalSource::new(
            scheduler.clone(),
            store.clone(),
            options.cluster.clone(),
            cache.clone(),
            secrets.clone(),
        ));
        runner::spawn_thread(format!("sandflow-runner-{i}"), source, sandbox.clone())
            .map_err(|e| Error::Config(format!("could not start runner {i}: {e}")))?;
    }
    tokio::spawn(sweep_cache(store.clone(), cache.clone()));
    let tokens = Arc::new(options.tokens.clone());
    let fleet = Arc::new(api::Fleet::default());
    if options.runners > 0 {
        fleet.add_local(&options.cluster, options.runners as u32);
    }
    let (stopping_tx, stopping) = tokio::sync::watch::channel(None);
    let app = api::router(Handles {
        scheduler,
        store: store.clone(),
        cache,
        secrets,
        sandbox,
        tokens,
        openapi: Default::default(),
        fleet,
        cancels: Default::default(),
        stopping: stopping.clone(),
        followers: Arc::new(tokio::sync::Semaphore::new(api::MAX_FOLLOWERS)),
        poll_limit: options.serve.poll_limit,
        uploads: Default::default(),
    });
    let mut serve = options.serve;
    serve.max_connections = fit_descriptors(serve.max_connections);
    let io = |source| Error::Io { addr: options.listen, source };
    let listener = tokio::net::TcpListener::bind(options.listen).await.map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    tracing::info!(%addr, runners = options.runners, cluster = %options.cluster, "serving");
    on_listening(addr);
    let grace = options.shutdown_grace;
    let mut fault = store.fault();
    let signal = async move {
        tokio::select! {
            () = shutdown_signal() => {}
            _ = fault.wait_for(Option::is_some) => {
                // Stay up a while refusing writes and failing health
                // checks, so clients and supervisors see why; then exit.
                tracing::error!(exit_in = ?grace, "the store failed; the host exits so a restart recovers from the log");
                tokio::time::sleep(grace).await;
            }
        }
        let _ = stopping_tx.send(Some(tokio::time::Instant::now() + grace));
    };
    let server = api::serve(listener, app, serve, signal);
    within_grace(server, stopping.clone()).await.unwrap_or_else(|| {
        tracing::warn!("requests still open at the end of the shutdown grace are dropped");
    });
    if let Some(exporter) = exporter {
        within_grace(exporter.stop(), stopping.clone()).await;
    }
    if let Some(reason) = store.fault().borrow().clone() {
        // No checkpoint: the table may hold groups that were never durable.
        return Err(Error::StoreFault(reason.to_string()));
    }
    // Write what is held in memory to sled, so the next start replays no
    // log; past the grace the log is replayed instead (a checkpoint cut
    // short loses nothing: the log is only retired after sled's flush).
    match within_grace(tokio::task::spawn_blocking(move || store.checkpoint()), stopping).await {
        Some(Ok(Err(e))) => {
            tracing::warn!(error = %e, "the final checkpoint failed; the next start replays the log")
        }
        None => tracing::warn!("no time left for the final checkpoint; the next start replays the log"),
        _ => {}
    }
    Ok(())
}

/// Descriptors kept for everything but API connections: the store's files,
/// runner threads, outbound HTTP.
const RESERVED_DESCRIPTORS: u64 = 1024;

/// Raises the process's descriptor limit to its hard limit, and answers how
/// many connections fit below it (`wanted` at most), so connections alone
/// never take the store's descriptors.
fn fit_descriptors(wanted: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum;
    if let Err(e) = setrlimit(Resource::Nofile, Rlimit { current: hard, maximum: hard }) {
        tracing::warn!(error = %e, "could not raise the descriptor limit");
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let room = usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS).max(64)).unwrap_or(usize::MAX);
    if room < wanted {
        tracing::warn!(descriptors = soft, connections = room, "the descriptor limit caps API connections");
    }
    wanted.min(room)
}

/// Runs `work` until it ends, or until the deadline a stop signal set
/// (`None` past it).
async fn within_grace<T>(
    work: impl std::future::IntoFuture<Output = T>,
    mut stopping: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
) -> Option<T> {
    let work = work.into_future();
    tokio::pin!(work);
    loop {
        let deadline = *stopping.borrow_and_update();
        tokio::select! {
            done = &mut work => return Some(done),
            () = sleep_until(deadline) => return None,
            changed = stopping.changed(), if deadline.is_none() => if changed.is_err() { return Some(work.await) },
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
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

/// Refuses to serve an open API (no tokens) on anything but loopback.
fn check_exposure(options: &Options) -> Result<(), Error> {
    if !options.tokens.is_empty() {
        return Ok(());
    }
    if !options.listen.ip().is_loopback() {
        return Err(Error::Config(format!(
            "refusing to listen on {} without API tokens: pass --token-file, or listen on a loopback address",
            options.listen
        )));
    }
    tracing::warn!("no API tokens configured: the API is open to every local user (loopback only)");
    Ok(())
}

/// Resolves at SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
