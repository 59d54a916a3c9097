//! The database's schema, its versioned migrations, and the store's lock
//! and lease: which host writes the database, and since which epoch.
//!
//! Architecture invariant: only the host holding the advisory lock
//! [`LOCK_KEY`] migrates the schema or raises the lease's epoch, and a
//! commit succeeds only while the lease still holds the epoch its host
//! raised it to ([`HOLD_LEASE`], inside the commit's transaction).

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::store::Error;
use crate::store::fault::Fault;

/// The session advisory lock of a Sandflow store (the bytes of "sandflow").
pub(super) const LOCK_KEY: i64 = i64::from_be_bytes(*b"sandflow");

/// Each migration: its version, what it does, its statements. Applied in
/// order, each in its own transaction, recorded in `sandflow_migrations`.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "keys and values, module bytes, the lease",
        "CREATE TABLE sandflow_kv (k bytea PRIMARY KEY, v bytea NOT NULL);
         CREATE TABLE sandflow_modules (digest bytea PRIMARY KEY, bytes bytea NOT NULL);
         CREATE TABLE sandflow_lease (id integer PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL);",
    ),
    (2, "the leading host's API address", "ALTER TABLE sandflow_lease ADD COLUMN address text;"),
    (
        3,
        "the lease checked inside a commit",
        "CREATE FUNCTION sandflow_hold_lease(held bigint) RETURNS bigint LANGUAGE plpgsql AS $$
         DECLARE now bigint;
         BEGIN
             SELECT epoch INTO now FROM sandflow_lease WHERE id = 1 FOR SHARE;
             IF now IS DISTINCT FROM held THEN
                 RAISE EXCEPTION USING ERRCODE = 'SFL01', MESSAGE = 'the lease moved to another host',
                     DETAIL = coalesce(now, -1)::text;
             END IF;
             RETURN now;
         END $$;",
    ),
];

/// What `sandflow_hold_lease` raises when the lease holds another epoch
/// (its detail is that epoch).
const FENCED: &str = "SFL01";

/// The connection that holds the store's lock: the lock lasts as long as
/// it does, and aborting `watcher` (which drives it) closes it.
pub(super) struct Lock {
    pub client: Client,
    pub watcher: tokio::task::AbortHandle,
}

/// Connects to `url`, takes the store's lock, migrates, and raises the
/// lease's epoch; answers the lock's connection and the epoch. Losing that
/// connection later raises `fault`.
pub(super) async fn take(
    url: String,
    fault: Arc<Fault>,
    wait: Option<Duration>,
) -> Result<(Lock, i64), Error> {
    let connect = async { Ok(tokio_postgres::connect(&url, NoTls).await?) };
    let (mut client, connection) = super::within(super::QUERY_TIMEOUT, connect).await?;
    let watcher = tokio::spawn(async move {
        let why = match connection.await {
            Ok(()) => "the database closed the connection".to_owned(),
            Err(e) => e.to_string(),
        };
        fault.raise(Error::Postgres(format!("lost the connection that holds the store's lock: {why}")));
    });
    match hold(&mut client, wait).await {
        Ok(epoch) => Ok((Lock { client, watcher: watcher.abort_handle() }, epoch)),
        Err(e) => {
            // No store was opened: its connection's end is no fault.
            watcher.abort();
            Err(e)
        }
    }
}

/// Takes the lock on `client`'s session, migrates, and raises the lease's
/// epoch; answers the epoch.
async fn hold(client: &mut Client, wait: Option<Duration>) -> Result<i64, Error> {
    lock(client, wait).await?;
    migrate(client).await?;
    // The address is the new leader's to announce once it serves.
    let raise = "INSERT INTO sandflow_lease (id, epoch) VALUES (1, 1) \
                 ON CONFLICT (id) DO UPDATE SET epoch = sandflow_lease.epoch + 1, address = NULL RETURNING epoch";
    Ok(client.query_one(raise, &[]).await?.get(0))
}

/// Takes the store's lock on `client`'s session, waiting up to `wait`
/// (`None`: as long as it takes).
async fn lock(client: &Client, wait: Option<Duration>) -> Result<(), Error> {
    let Some(wait) = wait else {
        client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await?;
        return Ok(());
    };
    if wait.is_zero() {
        let locked: bool = client.query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY]).await?.get(0);
        return if locked { Ok(()) } else { Err(Error::Held) };
    }
    client.batch_execute(&format!("SET lock_timeout = {}", wait.as_millis())).await?;
    match client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await {
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => return Err(Error::Held),
        other => other?,
    };
    client.batch_execute("RESET lock_timeout").await?;
    Ok(())
}

/// Applies the migrations the database lacks; refuses a database migrated
/// by a newer build.
async fn migrate(client: &mut Client) -> Result<(), Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS sandflow_migrations (version integer PRIMARY KEY, \
             name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let applied: Option<i32> =
        client.query_one("SELECT max(version) FROM sandflow_migrations", &[]).await?.get(0);
    let applied = applied.unwrap_or(0);
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if applied > latest {
        return Err(Error::DatabaseSchema { found: applied, reads: latest });
    }
    for (version, name, statements) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
        let tx = client.transaction().await?;
        tx.batch_execute(statements).await?;
        tx.execute("INSERT INTO sandflow_migrations (version, name) VALUES ($1, $2)", &[version, name])
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "migrated the database");
    }
    Ok(())
}

/// Fails, aborting the transaction it runs in, unless the lease still
/// holds epoch `$1`; the lease's row stays share-locked until the
/// transaction ends, so a host taking over waits for this commit before it
/// raises the epoch. The check runs in the database, so a commit can send
/// it with its writes without waiting for its answer.
pub(super) const HOLD_LEASE: &str = "SELECT sandflow_hold_lease($1)";

/// `e` as the store's error: [`Error::Fenced`] when it is
/// [`HOLD_LEASE`]'s refusal of epoch `held`.
pub(super) fn fenced_or(e: tokio_postgres::Error, held: i64) -> Error {
    match e.as_db_error().filter(|db| db.code().code() == FENCED) {
        Some(db) => Error::Fenced { now: db.detail().and_then(|d| d.parse().ok()).unwrap_or(-1), held },
        None => e.into(),
    }
}

/// Records `address` as the API address of the host holding `epoch`.
pub(super) async fn announce(client: &Client, epoch: i64, address: &str) -> Result<(), Error> {
    let set = "UPDATE sandflow_lease SET address = $1 WHERE id = 1 AND epoch = $2";
    match client.execute(set, &[&address, &epoch]).await? {
        1 => Ok(()),
        _ => Err(Error::Fenced { now: -1, held: epoch }),
    }
}

/// The API address the leading host announced, if any.
pub(super) async fn leader(client: &Client) -> Result<Option<String>, Error> {
    let row = client.query_opt("SELECT address FROM sandflow_lease WHERE id = 1", &[]).await;
    match row {
        Ok(row) => Ok(row.and_then(|r| r.get(0))),
        // A database no host has opened yet.
        Err(e)
            if e.code() == Some(&SqlState::UNDEFINED_TABLE)
                || e.code() == Some(&SqlState::UNDEFINED_COLUMN) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
