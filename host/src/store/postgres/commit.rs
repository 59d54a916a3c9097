//! A commit: the frozen part of the in-memory table written in one
//! transaction, upserts and deletes in statements of bounded size, after
//! the lease's epoch is checked in the same transaction.

use deadpool_postgres::Pool;

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
/// `epoch`; answers the bytes sent. The statements are prepared once per
/// connection, and sent together (the client pipelines them), so a commit
/// costs three round trips (begin, the statements, commit) whatever its
/// size.
pub(super) async fn commit(pool: &Pool, epoch: i64, map: &Map) -> Result<u64, Error> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let (upsert, delete) = (client.prepare_cached(UPSERT).await?, client.prepare_cached(DELETE).await?);
    let lease = client.prepare_cached(schema::LEASE_CHECK).await?;
    let (puts, deletes, bytes) = split(map);
    let tx = client.transaction().await?;
    let (on, upsert, delete) = (&tx, &upsert, &delete);
    let puts = puts.iter().map(|b| async move { on.execute(upsert, &[&b.keys, &b.values]).await });
    let chunks: Vec<&[&[u8]]> = deletes.chunks(ROWS_PER_STATEMENT).collect();
    let deletes = chunks.into_iter().map(|chunk| async move { on.execute(delete, &[&chunk]).await });
    let puts: Vec<_> = puts.map(futures_util::future::FutureExt::boxed).collect();
    let deletes = deletes.map(futures_util::future::FutureExt::boxed);
    let writes = futures_util::future::try_join_all(puts.into_iter().chain(deletes));
    let check = schema::check_epoch(&tx, &lease, epoch);
    futures_util::future::try_join(check, async { writes.await.map_err(Error::from) }).await?;
    tx.commit().await?;
    Ok(bytes)
}

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
