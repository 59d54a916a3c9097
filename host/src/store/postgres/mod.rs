//! The PostgreSQL backend of the store (`kv.rs`): keys and values in one
//! table, module bytes in another, and the in-memory table of `table.rs`
//! in front of them. A sync commits every group applied since the last one
//! in one transaction (group commit); reads look at the in-memory table,
//! then the database.
//!
//! The backend runs its own small tokio runtime for the database client:
//! the store's reads are synchronous, so a read sends its query there and
//! waits for the answer (bounded by [`QUERY_TIMEOUT`]), which never waits
//! on a thread of the caller's runtime.
//!
//! One host at a time writes a database: opening takes a session advisory
//! lock ([`schema::LOCK_KEY`]) on a connection kept for the backend's life,
//! and raises the lease row's epoch. Every commit checks that epoch in its
//! transaction, so a host that lost its lock can never commit after
//! another took over; losing the lock's connection raises the fault at
//! once (`fault.rs`: no more acknowledgements).
//!
//! Architecture invariant: a key is in the in-memory table or committed in
//! the database from the moment it is applied; the table drops a frozen part
//! only after the transaction holding it committed.

mod cache;
mod commit;
mod follow;
mod scan;
mod schema;
#[cfg(test)]
mod tests;

pub(super) use follow::follow_leader;

use std::future::Future;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use deadpool_postgres::{Pool, Runtime};
use sled::IVec;
use tokio_postgres::NoTls;

use super::Error;
use super::fault::Fault;
use super::kv::{Backend, Entries, KeyRange, Kv, KvWrite, prefix_end};
use super::table::{Table, merged};
use crate::model::Digest;

/// Longest a query may take before it counts as failed.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a commit may take (a group holds up to 64 MiB of writes).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a start waits for the store's lock: a host killed a moment ago
/// holds it until the database notices its connection closed.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Connections in the pool (reads and commits).
const POOL_SIZE: usize = 8;

/// Opens the store in the database at `url`: takes the store's lock
/// (waiting up to [`LOCK_WAIT`] for a host that is stopping to let it go),
/// migrates the schema, raises the lease's epoch.
pub(super) fn open(url: &str) -> Result<Kv, Error> {
    open_waiting(url, Some(LOCK_WAIT))
}

/// [`open`], waiting up to `wait` for the lock (`None`: until another host
/// lets it go, however long that takes).
pub(super) fn open_waiting(url: &str, wait: Option<Duration>) -> Result<Kv, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sandflow-postgres")
        .enable_all()
        .build()
        .map_err(Error::Io)?;
    let handle = runtime.handle().clone();
    match connect(url, &handle, wait) {
        Ok((shared, lock)) => {
            tracing::info!(database = %redact(url), epoch = shared.epoch, "opened the store in PostgreSQL");
            Ok(Kv::new(Arc::new(Postgres { runtime: Some(runtime), handle, shared, lock: Arc::new(lock) })))
        }
        Err(e) => {
            // Not dropped where it stands: this may be a runtime's thread.
            runtime.shutdown_background();
            Err(e)
        }
    }
}

/// Takes the store's lock and opens the pool, on the backend's runtime.
fn connect(
    url: &str,
    handle: &tokio::runtime::Handle,
    wait: Option<Duration>,
) -> Result<(Arc<Shared>, schema::Lock), Error> {
    let fault = Arc::new(Fault::new());
    let take = schema::take(url.to_owned(), fault.clone(), wait);
    let (lock, epoch) = block_for(handle, take, wait.map(|w| w + QUERY_TIMEOUT))?;
    let shared = Arc::new(Shared {
        pool: pool(url, handle)?,
        mem: RwLock::new(Table::default()),
        cache: cache::ReadCache::new(),
        commit: tokio::sync::Mutex::new(()),
        epoch,
        fault,
        applied: tokio::sync::watch::Sender::new(0),
        written: AtomicU64::new(0),
    });
    Ok((shared, lock))
}

/// The pool of connections to `url`, created on the backend's runtime.
fn pool(url: &str, handle: &tokio::runtime::Handle) -> Result<Pool, Error> {
    let mut config = deadpool_postgres::Config::new();
    config.url = Some(url.to_owned());
    let mut limits = deadpool_postgres::PoolConfig::new(POOL_SIZE);
    limits.timeouts.wait = Some(QUERY_TIMEOUT);
    limits.timeouts.create = Some(QUERY_TIMEOUT);
    limits.timeouts.recycle = Some(QUERY_TIMEOUT);
    config.pool = Some(limits);
    let _entered = handle.enter();
    config.create_pool(Some(Runtime::Tokio1), NoTls).map_err(|e| Error::Postgres(e.to_string()))
}

/// `url` with its password replaced by `***`, for logs and errors.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_owned() };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// What the backend's methods and the tasks on its runtime share.
struct Shared {
    pool: Pool,
    mem: RwLock<Table>,
    /// What was committed or read, for point reads.
    cache: cache::ReadCache,
    /// One commit at a time.
    commit: tokio::sync::Mutex<()>,
    /// The lease's epoch this host holds.
    epoch: i64,
    fault: Arc<Fault>,
    applied: tokio::sync::watch::Sender<u64>,
    /// Bytes of keys and values committed since open.
    written: AtomicU64,
}

/// The backend: its runtime, what it shares with it, the lock's connection.
struct Postgres {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    shared: Arc<Shared>,
    /// The connection that holds the store's lock (for its life).
    lock: Arc<schema::Lock>,
}

impl Drop for Postgres {
    /// Stops the runtime without waiting (the store may be dropped on
    /// another runtime's thread); its tasks, the lock's watcher among them,
    /// are dropped, and the lock is released with its connection.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `fut` on the backend's runtime and waits for it on this thread,
/// for at most [`QUERY_TIMEOUT`].
fn block<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    fut: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    block_for(handle, fut, Some(QUERY_TIMEOUT))
}

/// [`block`] for at most `limit` (`None`: as long as it takes).
fn block_for<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    fut: impl Future<Output = Result<T, Error>> + Send + 'static,
    limit: Option<Duration>,
) -> Result<T, Error> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let done = match limit {
            Some(limit) => within(limit, fut).await,
            None => fut.await,
        };
        let _ = tx.send(done);
    });
    rx.recv().unwrap_or_else(|_| Err(Error::Postgres("the database client has stopped".into())))
}

/// `fut`, failed when it takes longer than [`QUERY_TIMEOUT`].
async fn bounded<T>(fut: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    within(QUERY_TIMEOUT, fut).await
}

/// `fut`, failed when it takes longer than `limit`.
async fn within<T>(limit: Duration, fut: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(Error::Postgres(format!("the database did not answer within {} s", limit.as_secs())))
    })
}

fn read(mem: &RwLock<Table>) -> std::sync::RwLockReadGuard<'_, Table> {
    mem.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(mem: &RwLock<Table>) -> std::sync::RwLockWriteGuard<'_, Table> {
    mem.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Commits the table's active part in one transaction, then drops it
    /// from memory; a failure raises the fault (the part stays readable).
    async fn sync(self: Arc<Self>) -> Result<(), Error> {
        let _one = self.commit.lock().await;
        self.fault.check()?;
        let frozen = {
            let mut mem = write(&self.mem);
            if mem.active_bytes() == 0 {
                return Ok(());
            }
            mem.freeze(Vec::new()).0
        };
        match within(COMMIT_TIMEOUT, commit::commit(&self.pool, self.epoch, &frozen)).await {
            Ok(bytes) => {
                // Into the cache before out of the table: a read never
                // finds the key in neither.
                self.cache.committed(&frozen);
                write(&self.mem).release();
                self.written.fetch_add(bytes, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(self.fault.raise(e)),
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    /// The database's own message when it sent one, else the client's
    /// error and its cause.
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            return Error::Postgres(format!("{} ({})", db.message(), db.code().code()));
        }
        match std::error::Error::source(&e) {
            Some(cause) => Error::Postgres(format!("{e}: {cause}")),
            None => Error::Postgres(e.to_string()),
        }
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    Error::Postgres(format!("no connection to the database: {e}"))
}

#[async_trait::async_trait]
impl Backend for Postgres {
    /// Refused once the fault is raised: a host that lost the store's lock
    /// answers nothing from it (another may be writing it by now).
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, Error> {
        self.shared.fault.check()?;
        if let Some(value) = read(&self.shared.mem).get(key) {
            return Ok(value);
        }
        if let Some(value) = self.shared.cache.get(key) {
            return Ok(value);
        }
        // Taken only now, so reads that memory answers never wait for a
        // commit being kept (see `ReadCache::generation`).
        let seen = self.shared.cache.generation();
        let (pool, owned) = (self.shared.pool.clone(), key.to_vec());
        let value = block(&self.handle, async move {
            let client = pool.get().await.map_err(pool_error)?;
            let query = client.prepare_cached("SELECT v FROM sandflow_kv WHERE k = $1").await?;
            let row = client.query_opt(&query, &[&owned]).await?;
            Ok(row.map(|r| IVec::from(r.get::<_, &[u8]>(0))))
        })?;
        self.shared.cache.fill(key, value.clone(), seen);
        Ok(value)
    }

    /// A prefix scan of at most [`cache::SCAN_ROWS`] rows is kept (and
    /// answered from memory until a commit writes under its prefix).
    fn range(&self, range: KeyRange, rev: bool) -> Entries {
        if let Err(e) = self.shared.fault.check() {
            return Box::new(std::iter::once(Err(e)));
        }
        let bounds = (range.0.as_ref().map(Vec::as_slice), range.1.as_ref().map(Vec::as_slice));
        let mem = read(&self.shared.mem).range(bounds, rev);
        let prefix = match &range.0 {
            Bound::Included(p) if !rev && range.1 == prefix_end(p) => Some(p.clone()),
            _ => None,
        };
        let Some(prefix) = prefix else {
            let durable = scan::Scan::new(self.handle.clone(), self.shared.pool.clone(), range, rev);
            return Box::new(merged(mem, durable, rev));
        };
        if let Some(rows) = self.shared.cache.scan(&prefix) {
            let kept = (0..rows.len()).map(move |i| Ok::<_, Error>(rows[i].clone()));
            return Box::new(merged(mem, kept, rev));
        }
        let seen = self.shared.cache.generation();
        let mut durable = scan::Scan::new(self.handle.clone(), self.shared.pool.clone(), range, rev);
        let first: Vec<_> = durable.by_ref().take(cache::SCAN_ROWS + 1).collect();
        if first.len() <= cache::SCAN_ROWS
            && let Some(rows) = first.iter().map(|r| r.as_ref().ok().cloned()).collect::<Option<Vec<_>>>()
        {
            self.shared.cache.fill_scan(&prefix, Arc::new(rows), seen);
        }
        Box::new(merged(mem, first.into_iter().chain(durable), rev))
    }

    fn apply(&self, groups: Vec<Vec<KvWrite>>) -> Result<(), Error> {
        self.shared.fault.check()?;
        let mut mem = write(&self.shared.mem);
        for group in groups.into_iter().filter(|g| !g.is_empty()) {
            mem.put_group(group.into_iter().map(|(k, v)| (IVec::from(k), v.map(IVec::from))));
        }
        drop(mem);
        self.shared.applied.send_modify(|n| *n += 1);
        Ok(())
    }

    async fn sync(&self) -> Result<(), Error> {
        let done = self.handle.spawn(self.shared.clone().sync()).await;
        done.unwrap_or_else(|e| Err(Error::Postgres(format!("the commit did not finish: {e}"))))
    }

    fn sync_blocking(&self) -> Result<(), Error> {
        block_for(&self.handle, self.shared.clone().sync(), None)
    }

    fn watch_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.applied.subscribe()
    }

    fn fault(&self) -> tokio::sync::watch::Receiver<Option<Arc<str>>> {
        self.shared.fault.watch()
    }

    fn written_bytes(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Nothing runs in the background.
    fn resume(&self) {}

    /// Every sync drains the table, so writes never wait for more room.
    async fn room(&self) {}

    /// Commits what the table holds.
    fn checkpoint(&self) -> Result<(), Error> {
        self.sync_blocking()
    }

    /// Writes the address into the lease this host holds (on the lock's
    /// connection).
    fn announce(&self, address: &str) -> Result<(), Error> {
        let (lock, epoch, address) = (self.lock.clone(), self.shared.epoch, address.to_owned());
        block(&self.handle, async move { schema::announce(&lock.client, epoch, &address).await })
    }

    /// Raises the fault, then closes the lock's connection: the database
    /// ends its session and frees the lock.
    fn release(&self) {
        self.shared.fault.raise(Error::Postgres("this host let the store go".into()));
        self.lock.watcher.abort();
    }

    /// Commits on its own, before the module's record is applied.
    fn write_module(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        let (pool, digest, bytes) = (self.shared.pool.clone(), digest.0.to_vec(), bytes.to_vec());
        block(&self.handle, async move {
            let client = pool.get().await.map_err(pool_error)?;
            let insert =
                "INSERT INTO sandflow_modules (digest, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING";
            client.execute(insert, &[&digest, &bytes]).await?;
            Ok(())
        })
    }

    fn read_module(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        let (pool, key) = (self.shared.pool.clone(), digest.0.to_vec());
        let bytes = block(&self.handle, async move {
            let client = pool.get().await.map_err(pool_error)?;
            let row =
                client.query_opt("SELECT bytes FROM sandflow_modules WHERE digest = $1", &[&key]).await?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })?;
        Ok(bytes.filter(|b| {
            let intact = Digest::of(b) == *digest;
            if !intact {
                tracing::error!(%digest, "stored module bytes do not match their digest; ignoring them");
            }
            intact
        }))
    }
}
