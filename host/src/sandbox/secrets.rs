//! Secrets as an attempt sees them (`secret(name)` in `sandflow:task/host`):
//! only the names its module was granted, read through the runner's
//! [`SecretReader`] (the host's secrets for an in-process runner, the host's
//! API for a remote one, which checks the grant again). Every value read is
//! remembered, so that what the attempt recorded is redacted before it
//! leaves the sandbox (`model::redact`).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use wasmtime::component::{LinkerInstance, WasmStr};
use wasmtime::{Result, StoreContextMut};

use super::host::HostState;
use crate::model::{TaskKey, check_secret_name, redaction_forms};

/// Reads a secret's value for the attempt `lease` of task `key`.
pub trait SecretReader: Send + Sync {
    fn read(&self, key: TaskKey, lease: u64, name: String) -> BoxFuture<'static, Result<String, String>>;
}

/// One attempt's secrets: what it may read, and what it read.
#[derive(Default)]
pub struct AttemptSecrets {
    pub(super) key: TaskKey,
    pub(super) lease: u64,
    pub(super) granted: Vec<String>,
    pub(super) reader: Option<Arc<dyn SecretReader>>,
    /// (name, value) of each secret read, for redaction.
    pub read: Vec<(String, String)>,
}

impl AttemptSecrets {
    /// The secrets `granted` to the attempt `lease` of `key`, read through
    /// `reader`.
    pub fn new(
        key: TaskKey,
        lease: u64,
        granted: Vec<String>,
        reader: Option<Arc<dyn SecretReader>>,
    ) -> Self {
        AttemptSecrets { key, lease, granted, reader, read: Vec::new() }
    }

    /// Starts reading `name`, if the attempt may.
    fn start(&self, name: &str) -> Result<BoxFuture<'static, Result<String, String>>, String> {
        check_secret_name(name)?;
        if !self.granted.iter().any(|g| g == name) {
            return Err(format!(
                "secret {name} is not granted to this task's module (grant it at upload: POST /v1/modules?secrets={name})"
            ));
        }
        let reader = self.reader.as_ref().ok_or("this runner reads no secrets")?;
        Ok(reader.read(self.key, self.lease, name.to_owned()))
    }
}

type Store<'a> = StoreContextMut<'a, HostState>;

/// Adds `secret` to `inst`.
pub fn add(inst: &mut LinkerInstance<'_, HostState>) -> Result<()> {
    inst.func_wrap_async("secret", |mut store: Store<'_>, (name,): (WasmStr,)| {
        Box::new(async move {
            let name = name.to_str(&store)?;
            let name: String = name.chars().take(129).collect();
            let read = match store.data().secrets.start(&name) {
                Ok(read) => read.await,
                Err(e) => Err(e),
            };
            if let Ok(value) = &read {
                store.data_mut().secrets.read.extend(redaction_forms(&name, value));
            }
            Ok((read,))
        })
    })?;
    Ok(())
}
