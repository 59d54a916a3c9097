//! Wires the layers into a running host: store, scheduler, sandbox, the
//! in-process runners, and the HTTP API (`leader.rs`: all of them, built
//! on an open store), and who of the hosts sharing a store writes it
//! (`seat.rs`: a standby's takeover, a failed leader's step-down).

mod leader;
mod seat;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use leader::Leader;
use seat::Seat;

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
    #[error("the store stopped taking writes ({0}); a restart recovers what was acknowledged")]
    StoreFault(String),
}

impl Error {
    /// Whether the store could not be reached (worth trying again), as
    /// opposed to a refusal that will not change by itself.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Store(e) | Error::Secrets(crate::secrets::Error::Store(e)) => e.is_unavailable(),
            Error::Scheduler(scheduler::Error::StoreUnavailable(_)) => true,
            _ => false,
        }
    }
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
/// rebuilding everything from the store as a restart would (`seat.rs`).
pub async fn run(options: Options, on_listening: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    check_options(&options)?;
    // The TLS of the cache's bucket clients.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let location = options.store_location();
    let store = match Store::open_unless_held(&location, options.recover_log) {
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
        None => seat::standby(&location, &advertise),
    });
    let quit = Arc::new(tokio::sync::Notify::new());
    let (led, stopping_seat) = (tokio::sync::watch::Sender::new(leader), stopping.clone());
    let seat = Seat {
        location,
        options: options.clone(),
        stopping: stopping_seat,
        advertise,
        front: front_tx,
        led,
        quit: quit.clone(),
    };
    let led = seat.led.subscribe();
    if led.borrow().is_some() {
        seat.announce().await?;
    }
    tokio::spawn(seat.run());
    tracing::info!(%addr, runners = options.runners, cluster = %options.cluster, "serving");
    on_listening(addr);
    let signal = stop_signal(quit, options.shutdown_grace, stopping_tx);
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

/// Refuses options the host cannot run with.
fn check_options(options: &Options) -> Result<(), Error> {
    if options.runners > MAX_RUNNERS {
        return Err(Error::Config(format!("--runners must be at most {MAX_RUNNERS}")));
    }
    crate::model::check_cluster(&options.cluster).map_err(Error::Config)?;
    check_exposure(options)?;
    if let Some(url) = &options.advertise
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(Error::Config(format!("--advertise must be an http:// or https:// URL, not {url:?}")));
    }
    Ok(())
}

/// Resolves at SIGINT or SIGTERM, or when the host must stop (`quit`: a
/// local store failed and its grace passed, or a takeover could not
/// start); then sets the stop's deadline.
async fn stop_signal(
    quit: Arc<tokio::sync::Notify>,
    grace: std::time::Duration,
    stopping: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
) {
    tokio::select! {
        () = shutdown_signal() => {}
        () = quit.notified() => {}
    }
    let _ = stopping.send(Some(tokio::time::Instant::now() + grace));
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
