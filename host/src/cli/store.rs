//! `sandflow store`: commands that open a store directly, without a host.

use std::process::ExitCode;

use super::client::Error;
use crate::store::{Location, Store};

/// Copies the store at `from` into the new, empty store at `to`.
pub async fn copy(from: Location, to: Location) -> Result<ExitCode, Error> {
    if from == to {
        return Err(Error::Usage("--from and --to name the same store".into()));
    }
    let copied = tokio::task::spawn_blocking(move || {
        let open = |at: &Location| {
            Store::open_at(at, false).map_err(|source| Error::Store { location: at.to_string(), source })
        };
        let (source, destination) = (open(&from)?, open(&to)?);
        let copied =
            source.copy_to(&destination).map_err(|source| Error::Store { location: to.to_string(), source });
        copied.map(|c| (c, from, to))
    })
    .await
    .map_err(|e| Error::Usage(format!("the copy stopped: {e}")))?;
    let (copied, from, to) = copied?;
    println!(
        "copied {} keys ({} bytes) and {} modules from {from} to {to}",
        copied.keys, copied.bytes, copied.modules
    );
    Ok(ExitCode::SUCCESS)
}
