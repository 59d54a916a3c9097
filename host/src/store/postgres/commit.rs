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

/// Writes `map` in one transaction, if this host still holds the lease at
/// `epoch`; answers the bytes sent.
pub(super) async fn commit(pool: &Pool, epoch: i64, map: &Map) -> Result<u64, Error> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await?;
    schema::check_epoch(&tx, epoch).await?;
    let (mut puts, mut deletes) = (Batch::default(), Vec::new());
    let mut bytes = 0;
    for (key, value) in map {
        bytes += (key.len() + value.as_ref().map_or(0, |v| v.len())) as u64;
        match value {
            Some(value) => {
                puts.push(key, value);
                if puts.full() {
                    puts.flush(&tx).await?;
                }
            }
            None => deletes.push(key.as_ref()),
        }
    }
    puts.flush(&tx).await?;
    for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
        tx.execute("DELETE FROM sandflow_kv WHERE k = ANY($1)", &[&chunk]).await?;
    }
    tx.commit().await?;
    Ok(bytes)
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

    async fn flush(&mut self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), Error> {
        if self.keys.is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO sandflow_kv (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
             ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
            &[&self.keys, &self.values],
        )
        .await?;
        *self = Batch::default();
        Ok(())
    }
}
