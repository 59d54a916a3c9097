//! Module bytes, as files named by their digest (`modules/<sha256>.wasm`
//! in the store's directory): each module's bytes are written once, never
//! through the write-ahead log or sled (which rewrote large values at
//! checkpoints: five uploads of 61 MB once left 263 MB of sled blobs).
//!
//! A file is made durable (written, synced, renamed into place, the
//! directory synced) before the module's record is committed, so a record
//! always has its file; a crash in between leaves a file without a record,
//! which the next upload of those bytes reuses.
//!
//! Architecture invariant: a module file's name is the sha256 of its
//! contents; a file whose contents do not match is treated as absent.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::kv::Kv;
use super::kv::KvWrite;
use super::{Error, keys};
use crate::model::Digest;

/// The module files of one store.
#[derive(Debug)]
pub struct ModuleFiles {
    dir: PathBuf,
}

impl ModuleFiles {
    /// The files under `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<ModuleFiles, Error> {
        fs::create_dir_all(dir).map_err(Error::Io)?;
        Ok(ModuleFiles { dir: dir.to_path_buf() })
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{digest}.wasm"))
    }

    /// Stores `bytes` (whose sha256 is `digest`) durably; nothing is
    /// written when the file is already there.
    pub fn write(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        let path = self.path(digest);
        if self.read(digest)?.is_some() {
            return Ok(());
        }
        // Two uploads of the same bytes may write at once: each writes a
        // file of its own, and the renames replace one another atomically.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        let mut file = fs::File::create(&tmp).map_err(Error::Io)?;
        file.write_all(bytes).and_then(|()| file.sync_all()).map_err(Error::Io)?;
        fs::rename(&tmp, &path).map_err(Error::Io)?;
        fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(Error::Io)
    }

    /// The bytes of module `digest`, if its file is there and intact.
    pub fn read(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        match fs::read(self.path(digest)) {
            Ok(bytes) if Digest::of(&bytes) == *digest => Ok(Some(bytes)),
            Ok(_) => {
                tracing::error!(%digest, "a module file does not match its digest; ignoring it");
                Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Moves module bytes an older layout kept in sled into files, and
    /// deletes them from sled; answers how many moved. Idempotent: a move
    /// interrupted by a crash is finished by the next start.
    pub fn adopt_from(&self, kv: &Kv) -> Result<usize, Error> {
        let mut moved = 0;
        for item in kv.scan_prefix([keys::MODULE_BYTES]) {
            let (key, bytes) = item?;
            let digest = Digest::of(&bytes);
            if key.as_ref() != keys::module_bytes(&digest).as_slice() {
                tracing::error!("stored module bytes do not match their digest; left in place");
                continue;
            }
            self.write(&digest, &bytes)?;
            let delete: KvWrite = (key.to_vec(), None);
            kv.apply(vec![vec![delete]])?;
            moved += 1;
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_by_digest_and_checked_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let files = ModuleFiles::open(&dir.path().join("modules")).unwrap();
        let bytes = b"\0asm component bytes".to_vec();
        let digest = Digest::of(&bytes);
        assert_eq!(files.read(&digest).unwrap(), None);
        files.write(&digest, &bytes).unwrap();
        files.write(&digest, &bytes).unwrap();
        assert_eq!(files.read(&digest).unwrap(), Some(bytes.clone()));
        let entries: Vec<_> = fs::read_dir(dir.path().join("modules")).unwrap().collect();
        assert_eq!(entries.len(), 1, "written once, no temporary file left");
        fs::write(files.path(&digest), b"tampered").unwrap();
        assert_eq!(files.read(&digest).unwrap(), None, "contents that do not match are absent");
        files.write(&digest, &bytes).unwrap();
        assert_eq!(files.read(&digest).unwrap(), Some(bytes), "and are written again");
    }
}
