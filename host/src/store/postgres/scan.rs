//! A range of the database's keys read in pages, lazily: each page is one
//! query from the key after the last one read (keyset paging), so a long
//! scan holds no transaction or cursor open and costs one round trip per
//! [`PAGE`] rows.

use std::collections::VecDeque;
use std::ops::Bound;

use deadpool_postgres::Pool;
use sled::IVec;

use super::{block, pool_error};
use crate::store::Error;
use crate::store::kv::KeyRange;

/// Rows per query.
const PAGE: i64 = 512;

/// The rows of a range not yet yielded.
pub(super) struct Scan {
    handle: tokio::runtime::Handle,
    pool: Pool,
    range: KeyRange,
    rev: bool,
    page: VecDeque<(IVec, IVec)>,
    done: bool,
}

impl Scan {
    pub(super) fn new(handle: tokio::runtime::Handle, pool: Pool, range: KeyRange, rev: bool) -> Self {
        Scan { handle, pool, range, rev, page: VecDeque::new(), done: false }
    }

    /// Reads the next page and moves the range past it.
    fn fetch(&mut self) -> Result<(), Error> {
        let (sql, params) = query(&self.range, self.rev);
        let pool = self.pool.clone();
        let rows = block(&self.handle, async move {
            let client = pool.get().await.map_err(pool_error)?;
            let statement = client.prepare_cached(&sql).await?;
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
            let rows = client.query(&statement, &params).await?;
            Ok(rows
                .iter()
                .map(|r| (IVec::from(r.get::<_, &[u8]>(0)), IVec::from(r.get::<_, &[u8]>(1))))
                .collect())
        });
        let rows: Vec<(IVec, IVec)> = rows?;
        self.done = (rows.len() as i64) < PAGE;
        if let Some((last, _)) = rows.last() {
            let past = Bound::Excluded(last.to_vec());
            if self.rev { self.range.1 = past } else { self.range.0 = past }
        }
        self.page = rows.into();
        Ok(())
    }
}

impl Iterator for Scan {
    type Item = Result<(IVec, IVec), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty()
            && !self.done
            && let Err(e) = self.fetch()
        {
            self.done = true;
            return Some(Err(e));
        }
        self.page.pop_front().map(Ok)
    }
}

/// The query of one page of `range` and its parameters.
fn query(range: &KeyRange, rev: bool) -> (String, Vec<Vec<u8>>) {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    for (bound, included, excluded) in [(&range.0, ">=", ">"), (&range.1, "<=", "<")] {
        let (op, key) = match bound {
            Bound::Included(k) => (included, k),
            Bound::Excluded(k) => (excluded, k),
            Bound::Unbounded => continue,
        };
        params.push(key.clone());
        conditions.push(format!("k {op} ${}", params.len()));
    }
    let filter =
        if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    let order = if rev { "DESC" } else { "ASC" };
    (format!("SELECT k, v FROM sandflow_kv {filter} ORDER BY k {order} LIMIT {PAGE}"), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_asked_by_their_bounds() {
        let range = (Bound::Included(b"a".to_vec()), Bound::Excluded(b"b".to_vec()));
        let (sql, params) = query(&range, false);
        assert_eq!(sql, "SELECT k, v FROM sandflow_kv WHERE k >= $1 AND k < $2 ORDER BY k ASC LIMIT 512");
        assert_eq!(params, [b"a".to_vec(), b"b".to_vec()]);
        let (sql, params) = query(&(Bound::Unbounded, Bound::Included(b"z".to_vec())), true);
        assert_eq!(sql, "SELECT k, v FROM sandflow_kv WHERE k <= $1 ORDER BY k DESC LIMIT 512");
        assert_eq!(params.len(), 1);
        let (sql, _) = query(&(Bound::Unbounded, Bound::Unbounded), false);
        assert_eq!(sql, "SELECT k, v FROM sandflow_kv  ORDER BY k ASC LIMIT 512");
    }
}
