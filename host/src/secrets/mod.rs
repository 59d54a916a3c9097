//! Secrets: named values tasks read with `secret(name)` when their module
//! was granted them. Values are sealed at rest with XChaCha20-Poly1305
//! under the host's key (32 random bytes in a file the host creates with
//! mode 0600, `serve --secret-key-file`), a fresh nonce per write and the
//! name as associated data, so a sealed value cannot be moved to another
//! name. The store only ever sees sealed bytes.
//!
//! Architecture invariant: a secret's value leaves this module only to an
//! attempt that was granted it; the API answers names and times, never
//! values.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::model::{MAX_SECRETS, SecretInfo, check_secret_name, check_secret_value, now_ms};
use crate::store::{self, SealedSecret, Store};

/// Why a secret could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key file could not be read or created.
    #[error("secret key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    /// A bad name or value.
    #[error("{0}")]
    Invalid(String),
    /// The host holds as many secrets as it may.
    #[error("the host holds {MAX_SECRETS} secrets, the most it may; delete one first")]
    Full,
    /// The sealed value does not open with this host's key.
    #[error("secret {0} cannot be opened with this host's key (was the key file replaced?)")]
    Unsealable(String),
    /// The key does not open the secrets the store already holds: another
    /// host sealed them with a key of its own, or the file was replaced.
    #[error(
        "secret key file {path} does not open the secrets this store holds ({name} among them): \
         every host of a store must use the same key file (copy it from the host that sealed them)"
    )]
    KeyMismatch { path: PathBuf, name: String },
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// The host's secrets.
#[derive(Clone)]
pub struct Secrets {
    store: Store,
    cipher: std::sync::Arc<XChaCha20Poly1305>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets")
    }
}

impl Secrets {
    /// The secrets in `store`, sealed with the key in `key_file` (created
    /// when missing). A key that does not open a secret the store already
    /// holds is refused, so a host (a replica taking over, above all) never
    /// runs with secrets it cannot read.
    pub fn open(store: Store, key_file: &Path) -> Result<Secrets, Error> {
        let key = load_or_create(key_file)
            .map_err(|reason| Error::KeyFile { path: key_file.to_owned(), reason })?;
        let cipher = XChaCha20Poly1305::new_from_slice(&key)
            .map_err(|e| Error::KeyFile { path: key_file.to_owned(), reason: e.to_string() })?;
        let secrets = Secrets { store, cipher: std::sync::Arc::new(cipher) };
        if let Some(name) = secrets.store.secrets()?.into_iter().next().map(|s| s.name)
            && matches!(secrets.read(&name), Err(Error::Unsealable(_)))
        {
            return Err(Error::KeyMismatch { path: key_file.to_owned(), name });
        }
        Ok(secrets)
    }

    /// Stores `value` as the secret `name`; whether it is new.
    pub async fn set(&self, name: &str, value: &[u8]) -> Result<bool, Error> {
        check_secret_name(name).map_err(Error::Invalid)?;
        check_secret_value(value).map_err(Error::Invalid)?;
        let old = self.store.secret(name)?;
        if old.is_none() && self.store.secrets()?.len() >= MAX_SECRETS {
            return Err(Error::Full);
        }
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: value, aad: name.as_bytes() })
            .map_err(|_| Error::Invalid("the value could not be sealed".into()))?;
        let now = now_ms();
        let created_ms = old.as_ref().map_or(now, |o| o.created_ms);
        let secret = SealedSecret { nonce: nonce.into(), sealed, created_ms, updated_ms: now };
        self.store.put_secret(name, &secret).await?;
        Ok(old.is_none())
    }

    /// Every secret's name and times.
    pub fn list(&self) -> Result<Vec<SecretInfo>, Error> {
        Ok(self.store.secrets()?)
    }

    /// Deletes the secret `name`; whether there was one.
    pub async fn delete(&self, name: &str) -> Result<bool, Error> {
        check_secret_name(name).map_err(Error::Invalid)?;
        Ok(self.store.delete_secret(name).await?)
    }

    /// The value of `name`, if there is such a secret.
    pub fn read(&self, name: &str) -> Result<Option<String>, Error> {
        let Some(s) = self.store.secret(name)? else { return Ok(None) };
        let opened = self
            .cipher
            .decrypt(XNonce::from_slice(&s.nonce), Payload { msg: &s.sealed, aad: name.as_bytes() })
            .map_err(|_| Error::Unsealable(name.to_owned()))?;
        String::from_utf8(opened).map(Some).map_err(|_| Error::Unsealable(name.to_owned()))
    }
}

/// The 32 bytes of `path`, or new random ones written there (mode 0600).
fn load_or_create(path: &Path) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(key) if key.len() == 32 => return Ok(key),
        Ok(key) => return Err(format!("holds {} bytes; a key is 32", key.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.to_string()),
    }
    let key = XChaCha20Poly1305::generate_key(&mut OsRng);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| e.to_string())?;
    file.write_all(&key).and_then(|()| file.sync_all()).map_err(|e| e.to_string())?;
    tracing::info!(path = %path.display(), "created the secret key file");
    Ok(key.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_are_sealed_under_the_key_and_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let key = dir.path().join("keys/secret.key");
        let secrets = Secrets::open(store.clone(), &key).unwrap();
        assert_eq!(std::fs::read(&key).unwrap().len(), 32);
        assert!(secrets.set("API_KEY", b"hunter2-value").await.unwrap());
        assert!(!secrets.set("API_KEY", b"hunter2-value").await.unwrap());
        assert_eq!(secrets.read("API_KEY").unwrap().as_deref(), Some("hunter2-value"));
        assert_eq!(secrets.read("OTHER").unwrap(), None);
        let sealed = store.secret("API_KEY").unwrap().unwrap();
        assert!(!sealed.sealed.windows(7).any(|w| w == b"hunter2"), "stored sealed");
        // Moved under another name, it does not open.
        store.put_secret("MOVED", &sealed).await.unwrap();
        assert!(matches!(secrets.read("MOVED"), Err(Error::Unsealable(_))));
        // The same key file opens them again; another key is refused at once.
        let again = Secrets::open(store.clone(), &key).unwrap();
        assert_eq!(again.read("API_KEY").unwrap().as_deref(), Some("hunter2-value"));
        let refused = Secrets::open(store, &dir.path().join("other.key")).unwrap_err();
        assert!(matches!(refused, Error::KeyMismatch { ref name, .. } if name == "API_KEY"), "{refused}");
        assert!(
            refused.to_string().contains("every host of a store must use the same key file"),
            "{refused}"
        );
        assert!(matches!(secrets.set("bad-name", b"x").await, Err(Error::Invalid(_))));
        assert!(secrets.delete("API_KEY").await.unwrap());
        assert!(!secrets.delete("API_KEY").await.unwrap());
    }

    #[test]
    fn a_key_file_of_the_wrong_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("short.key");
        std::fs::write(&key, b"short").unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let e = Secrets::open(store, &key).unwrap_err().to_string();
        assert!(e.contains("holds 5 bytes; a key is 32"), "{e}");
    }
}
