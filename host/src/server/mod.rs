//! Wires the layers into a running host: store, scheduler, sandbox, the
//! in-process runners, and the HTTP API (`leader.rs`: all of them, built
//! on an open store), and a standby's takeover of a shared store.

mod leader;

use std::net::SocketAddr;
use std::path::PathBuf;

use leader::Leader;

use crate::api::{self, Tokens};
use crate::cache;
use crate::model::HostPattern;
use crate::otlp;
use crate::sandbox::{self, Limits};
use crate::scheduler;
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
    /// The API address other hosts of a shared store pass requests to while
    /// this one leads it; `http://` and the bound address when `None`.
    pub advertise: Option<String>,
}

impl Options {
    /// Where the durable state lives.
    fn store_location(&self) -> store::Location {
        self.store.clone().unwrap_or_else(|| store::Location::Dir(self.data_dir.join("db")))
    }
}

/// Starts the host and serves until SIGINT or SIGTERM. `on_listening` is
/// called with the bound address once the API accepts connections.
///
/// A host whose store another host holds (a shared database) starts as a
/// standby: it serves at once, passing every request to the leader
/// (`api::Standby`), and takes the lead when the store's lock comes free,
/// rebuilding everything from the store as a restart would.
pub async fn run(options: Options, on_listening: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    if options.runners > MAX_RUNNERS {
        return Err(Error::Config(format!("--runners must be at most {MAX_RUNNERS}")));
    }
    crate::model::check_cluster(&options.cluster).map_err(Error::Config)?;
    check_exposure(&options)?;
    if let Some(url) = &options.advertise
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(Error::Config(format!("--advertise must be an http:// or https:// URL, not {url:?}")));
    }
    // The TLS of the cache's bucket clients.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let location = options.store_location();
    let store = match Store::open_at(&location, options.recover_log) {
        Ok(store) => Some(store),
        Err(store::Error::Held) => None,
        Err(e) => return Err(e.into()),
    };
    let (stopping_tx, stopping) = tokio::sync::watch::channel(None);
    let leader = match store {
        Some(store) => Some(Leader::start(store, &options, stopping.clone()).await?),
        None => None,
    };
    let io = |source| Error::Io { addr: options.listen, source };
    let listener = tokio::net::TcpListener::bind(options.listen).await.map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let advertise = options.advertise.clone().unwrap_or_else(|| format!("http://{addr}"));
    let (front_tx, front) = tokio::sync::watch::channel(match &leader {
        Some(leader) => api::Front::Leader(leader.router.clone()),
        None => api::Front::Standby(api::Standby::new(standby_view(&location))),
    });
    let (led_tx, led) = tokio::sync::watch::channel(leader);
    if led.borrow().is_some() {
        announce(&led, &advertise).await?;
    } else {
        tracing::info!(%addr, store = %location, "another host leads the store: serving as its standby");
        let takeover = TakeOver { location, options: options.clone(), stopping: stopping.clone(), advertise };
        tokio::spawn(takeover.run(front_tx, led_tx));
    }
    tracing::info!(%addr, runners = options.runners, cluster = %options.cluster, "serving");
    on_listening(addr);
    let grace = options.shutdown_grace;
    let signal = stop_signal(led.clone(), grace, stopping_tx);
    let mut serve = options.serve;
    serve.max_connections = fit_descriptors(serve.max_connections);
    let server = api::serve(listener, api::front(front), serve, signal);
    within_grace(server, stopping.clone()).await.unwrap_or_else(|| {
        tracing::warn!("requests still open at the end of the shutdown grace are dropped");
    });
    let leader = led.borrow().clone();
    match leader {
        Some(leader) => leader.finish(stopping).await,
        None => Ok(()),
    }
}

/// The leader's address as a standby sees it.
fn standby_view(location: &store::Location) -> tokio::sync::watch::Receiver<Option<String>> {
    Store::follow_leader(location).unwrap_or_else(|| tokio::sync::watch::channel(None).1)
}

/// Tells the hosts sharing the store that the one leading in `led` serves
/// at `address`.
async fn announce(led: &tokio::sync::watch::Receiver<Option<Leader>>, address: &str) -> Result<(), Error> {
    let Some(store) = led.borrow().as_ref().map(|l| l.store.clone()) else { return Ok(()) };
    let address = address.to_owned();
    let done = tokio::task::spawn_blocking(move || store.announce(&address)).await;
    done.map_err(|e| Error::Config(format!("announcing the host failed: {e}")))?.map_err(Error::from)
}

/// Resolves at SIGINT or SIGTERM, or `grace` after the leading store's
/// fault (staying up a while refusing writes and failing health checks, so
/// clients and supervisors see why); then sets the stop's deadline.
async fn stop_signal(
    mut led: tokio::sync::watch::Receiver<Option<Leader>>,
    grace: std::time::Duration,
    stopping: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
) {
    let faulted = async {
        let fault = match led.wait_for(Option::is_some).await {
            Ok(leader) => leader.as_ref().map(|l| l.store.fault()),
            Err(_) => None,
        };
        let Some(mut fault) = fault else { return std::future::pending().await };
        let _ = fault.wait_for(Option::is_some).await;
        tracing::error!(exit_in = ?grace, "the store failed; the host exits so a restart recovers from the store");
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = shutdown_signal() => {}
        () = faulted => {}
    }
    let _ = stopping.send(Some(tokio::time::Instant::now() + grace));
}

/// A standby's wait for the store's lock, and its start as the leader.
struct TakeOver {
    location: store::Location,
    options: Options,
    stopping: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
    advertise: String,
}

impl TakeOver {
    /// Waits for the store (on a thread: the wait may last as long as the
    /// leader), starts the leader's stack, announces it, and answers with it
    /// from then on. A failed start stops the host.
    async fn run(
        self,
        front: tokio::sync::watch::Sender<api::Front>,
        led: tokio::sync::watch::Sender<Option<Leader>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let location = self.location.clone();
        std::thread::spawn(move || {
            let _ = tx.send(wait_for_store(&location));
        });
        let Ok(store) = rx.await else { return };
        let started = std::time::Instant::now();
        match Leader::start(store, &self.options, self.stopping.clone()).await {
            Ok(leader) => {
                front.send_replace(api::Front::Leader(leader.router.clone()));
                led.send_replace(Some(leader));
                match announce(&led.subscribe(), &self.advertise).await {
                    Ok(()) => tracing::info!(took = ?started.elapsed(), "took the lead of the store"),
                    Err(e) => tracing::error!(error = %e, "took the lead but could not announce it"),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not take the lead of the store; stopping");
                rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM).ok();
            }
        }
    }
}

/// Opens the store once the leader lets it go, trying again (every
/// second) while the database cannot be reached.
fn wait_for_store(location: &store::Location) -> Store {
    loop {
        match Store::open_when_free(location) {
            Ok(store) => return store,
            Err(e) => {
                tracing::warn!(error = %e, "waiting for the store; trying again");
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
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
