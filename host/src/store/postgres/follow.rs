//! How a standby host learns where the leader serves: the address the
//! leader wrote into the lease, read every [`FOLLOW_EVERY`] on a connection
//! of the caller's runtime.

use std::time::Duration;

use tokio_postgres::NoTls;

use super::{QUERY_TIMEOUT, bounded, schema, within};
use crate::store::Error;

/// How often a host that does not lead reads the leader's address.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// Follows the API address of the host leading the store at `url`: a task
/// on the caller's runtime reads the lease every [`FOLLOW_EVERY`] (and
/// reconnects as needed) until every receiver is gone.
pub(in crate::store) fn follow_leader(url: &str) -> tokio::sync::watch::Receiver<Option<String>> {
    let (tx, rx) = tokio::sync::watch::channel(None);
    let url = url.to_owned();
    tokio::spawn(async move {
        while !tx.is_closed() {
            if let Err(e) = follow(&url, &tx).await {
                tracing::debug!(error = %e, "could not read the leading host's address; trying again");
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    });
    rx
}

/// Reads the lease's address into `tx` until the connection fails.
async fn follow(url: &str, tx: &tokio::sync::watch::Sender<Option<String>>) -> Result<(), Error> {
    let (client, connection) =
        within(QUERY_TIMEOUT, async { Ok(tokio_postgres::connect(url, NoTls).await?) }).await?;
    let connection = tokio::spawn(connection);
    let read = async {
        while !tx.is_closed() {
            let address = bounded(schema::leader(&client)).await?;
            tx.send_if_modified(|now| (*now != address).then(|| *now = address).is_some());
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
        Ok(())
    };
    let done = read.await;
    connection.abort();
    done
}
