//! Secrets as the store keeps them: sealed bytes it cannot read (sealing
//! and opening is `crate::secrets`'s), a name, and two timestamps.

use super::records::{self, SecretRecord};
use super::{Error, Store, corrupt_key, keys};
use crate::model::{SecretInfo, Task, TaskKey, TaskState};

/// A secret's value as stored: sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub nonce: [u8; 24],
    pub sealed: Vec<u8>,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl Store {
    /// Stores (or replaces) the secret `name`, durably.
    pub async fn put_secret(&self, name: &str, s: &SealedSecret) -> Result<(), Error> {
        let record = SecretRecord::V1 {
            nonce: s.nonce,
            sealed: s.sealed.clone(),
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
        };
        self.write(vec![(keys::secret(name), Some(records::encode(&record)))]).await
    }

    /// The secret `name`, sealed, if stored.
    pub fn secret(&self, name: &str) -> Result<Option<SealedSecret>, Error> {
        let Some(bytes) = self.kv.get(keys::secret(name))? else { return Ok(None) };
        let SecretRecord::V1 { nonce, sealed, created_ms, updated_ms } = records::decode("secret", &bytes)?;
        Ok(Some(SealedSecret { nonce, sealed, created_ms, updated_ms }))
    }

    /// Deletes the secret `name`, durably; whether it was stored.
    pub async fn delete_secret(&self, name: &str) -> Result<bool, Error> {
        if self.kv.get(keys::secret(name))?.is_none() {
            return Ok(false);
        }
        self.write(vec![(keys::secret(name), None)]).await?;
        Ok(true)
    }

    /// Task `key` while its attempt `lease` runs. A remote runner asks
    /// right after its claim, which may be answered before the group that
    /// started the attempt is visible, so a task that reads otherwise is
    /// read again after each later group, for a short while (as
    /// [`Store::read_dependency_output`] does).
    pub async fn running_attempt(&self, key: TaskKey, lease: u64) -> Result<Option<Task>, Error> {
        let mut applied = self.kv.watch_applied();
        let deadline = tokio::time::Instant::now() + super::outputs::SETTLE;
        loop {
            applied.borrow_and_update();
            let task = self.task(key)?;
            if task.as_ref().is_some_and(|t| t.status.state == TaskState::Running && t.status.lease == lease)
            {
                return Ok(task);
            }
            let changed = tokio::time::timeout_at(deadline, applied.changed()).await;
            if !changed.is_ok_and(|r| r.is_ok()) {
                return Ok(None);
            }
        }
    }

    /// Every secret, by name (never a value).
    pub fn secrets(&self) -> Result<Vec<SecretInfo>, Error> {
        let mut out = Vec::new();
        for item in self.kv.scan_prefix([keys::SECRET]) {
            let (k, v) = item?;
            let name = std::str::from_utf8(&k[1..]).map_err(|_| corrupt_key("secret"))?.to_owned();
            let SecretRecord::V1 { created_ms, updated_ms, .. } = records::decode("secret", &v)?;
            out.push(SecretInfo { name, created_ms, updated_ms });
        }
        Ok(out)
    }
}
