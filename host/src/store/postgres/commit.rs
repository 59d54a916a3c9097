//! A commit: the frozen part of the in-memory table written in one
//! transaction, upserts and deletes in statements of bounded size, after
//! the lease's epoch is checked in the same transaction, all of it sent in
//! one round trip.

use deadpool_postgres::Pool;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;

use super::{pool_error, schema};
use crate::store::Error;
use crate::store::table::Map;

/// Rows per statement of a commit.
const ROWS_PER_STATEMENT: usize = 4_096;
/// Bytes per statement of a commit (keys and values).
const BYTES_PER_STATEMENT: usize = 16 << 20;

const UPSERT: &str = "INSERT INTO sandflow_kv (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                      ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v";
const DELETE: &str = "DELETE FROM sandflow_kv WHERE k = ANY($1)";

/// Writes `map` in one transaction, if this host still holds the lease at
/// `epoch`; answers the bytes sent. Every statement is prepared once per
/// connection, and the whole transaction (begin, the lease's check, the
/// writes, commit) is sent at once and answered in one round trip: the
/// client pipelines statements in the order they are first polled, and
/// the database runs them in that order. When any fails (the lease moved,
/// above all) the transaction is aborted there, and the commit that
/// follows it rolls back.
pub(super) async fn commit(pool: &Pool, epoch: i64, map: &Map) -> Result<u64, Error> {
    let client = pool.get().await.map_err(pool_error)?;
    let (upsert, delete) = (client.prepare_cached(UPSERT).await?, client.prepare_cached(DELETE).await?);
    let (begin, commit) = (client.prepare_cached("BEGIN").await?, client.prepare_cached("COMMIT").await?);
    let hold = client.prepare_cached(schema::HOLD_LEASE).await?;
    let (puts, deletes, bytes) = split(map);
    let on: &tokio_postgres::Client = &client;
    let (begin, hold, commit, upsert, delete) = (&begin, &hold, &commit, &upsert, &delete);
    let mut steps: Vec<Step<'_>> = vec![
        async move { on.execute(begin, &[]).await }.boxed(),
        async move { on.execute(hold, &[&epoch]).await }.boxed(),
    ];
    for batch in &puts {
        steps.push(async move { on.execute(upsert, &[&batch.keys, &batch.values]).await }.boxed());
    }
    for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
        steps.push(async move { on.execute(delete, &[&chunk]).await }.boxed());
    }
    steps.push(async move { on.execute(commit, &[]).await }.boxed());
    match in_order(steps).await {
        Ok(()) => Ok(bytes),
        Err(e) => {
            // The connection's transaction state is not known to be clean:
            // it leaves the pool.
            drop(deadpool_postgres::Object::take(client));
            Err(schema::fenced_or(e, epoch))
        }
    }
}

/// Runs `steps`, each polled for the first time in order (which sends its
/// statement, so the database receives them in that order), and waits for
/// every answer; answers the first error.
async fn in_order(mut steps: Vec<Step<'_>>) -> Result<(), tokio_postgres::Error> {
    let mut answers: Vec<Option<Result<u64, tokio_postgres::Error>>> = steps.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (step, answer) in steps.iter_mut().zip(answers.iter_mut()) {
            if answer.is_none()
                && let std::task::Poll::Ready(done) = step.poll_unpin(cx)
            {
                *answer = Some(done);
            }
        }
        if answers.iter().all(Option::is_some) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    answers.into_iter().flatten().find_map(Result::err).map_or(Ok(()), Err)
}

/// One statement of a commit, on its way.
type Step<'a> = BoxFuture<'a, Result<u64, tokio_postgres::Error>>;

/// `map` as upsert batches, the keys to delete, and its bytes.
fn split(map: &Map) -> (Vec<Batch<'_>>, Vec<&[u8]>, u64) {
    let (mut puts, mut deletes, mut bytes) = (vec![Batch::default()], Vec::new(), 0);
    for (key, value) in map {
        bytes += (key.len() + value.as_ref().map_or(0, |v| v.len())) as u64;
        match value {
            Some(value) => {
                if puts.last().is_some_and(Batch::full) {
                    puts.push(Batch::default());
                }
                if let Some(batch) = puts.last_mut() {
                    batch.push(key, value);
                }
            }
            None => deletes.push(key.as_ref()),
        }
    }
    puts.retain(|b| !b.keys.is_empty());
    (puts, deletes, bytes)
}

/// Rows of one upsert statement.
#[derive(Default)]
struct Batch<'a> {
    keys: Vec<&'a [u8]>,
    values: Vec<&'a [u8]>,
    bytes: usize,
}

impl<'a> Batch<'a> {
    fn push(&mut self, key: &'a [u8], value: &'a [u8]) {
        self.bytes += key.len() + value.len();
        self.keys.push(key);
        self.values.push(value);
    }

    fn full(&self) -> bool {
        self.keys.len() >= ROWS_PER_STATEMENT || self.bytes >= BYTES_PER_STATEMENT
    }
}
