//! The write-ahead log: every applied group of writes is appended to a file
//! as one record (`length`, `crc32`, postcard payload) and made durable with
//! `fdatasync`. sled is written later, coalesced, by a checkpoint (see
//! `kv.rs`); at open the records left are replayed. Files are numbered in
//! the order they were started; a checkpoint starts a new file and deletes
//! the older ones once sled holds their writes.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Error;

/// One write: a key and its new value, or `None` to delete it.
pub type KvWrite = (Vec<u8>, Option<Vec<u8>>);

/// Longest record accepted when reading (a larger length is a torn tail).
const MAX_RECORD: usize = 1 << 30;

/// A file written through a buffer and synced through a shared handle.
struct Shared(Arc<File>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        (&*self.0).flush()
    }
}

/// The log's directory and the file being appended to.
pub struct Wal {
    dir: PathBuf,
    file: Arc<File>,
    out: BufWriter<Shared>,
    path: PathBuf,
    /// Bytes appended since the last rotation.
    pub bytes: u64,
}

impl Wal {
    /// A new file in `dir`, named after every file already there (replay
    /// reads them in name order), never an existing one: a group appended
    /// after a torn tail would be unreadable.
    pub fn create(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(io)?;
        let last = files(dir)?.iter().filter_map(|p| p.file_stem()?.to_str()?.parse::<u64>().ok()).max();
        let path = dir.join(format!("{:020}.wal", last.map_or(1, |n| n + 1)));
        let file = Arc::new(OpenOptions::new().create_new(true).append(true).open(&path).map_err(io)?);
        let out = BufWriter::with_capacity(1 << 20, Shared(file.clone()));
        Ok(Wal { dir: dir.to_owned(), file, out, path, bytes: 0 })
    }

    /// Appends one group (buffered; durable after [`Wal::sync_handle`]'s sync).
    pub fn append(&mut self, group: &[KvWrite]) -> Result<(), Error> {
        let payload = postcard::to_stdvec(group).expect("writes always serialize");
        let len = u32::try_from(payload.len()).map_err(|_| Error::Corrupt {
            what: "log group",
            reason: format!("{} bytes is over 4 GiB", payload.len()),
        })?;
        self.out.write_all(&len.to_le_bytes()).map_err(io)?;
        self.out.write_all(&crc32fast::hash(&payload).to_le_bytes()).map_err(io)?;
        self.out.write_all(&payload).map_err(io)?;
        self.bytes += 8 + u64::from(len);
        Ok(())
    }

    /// Writes the buffer out and answers the file to `sync_data` (outside
    /// any lock): that makes everything appended so far durable.
    pub fn sync_handle(&mut self) -> Result<Arc<File>, Error> {
        self.out.flush().map_err(io)?;
        Ok(self.file.clone())
    }

    /// Makes the current file durable and continues in a new one; answers
    /// the files before it.
    pub fn rotate(&mut self) -> Result<Vec<PathBuf>, Error> {
        self.sync_handle()?.sync_data().map_err(io)?;
        let next = Wal::create(&self.dir)?;
        *self = next;
        Ok(files(&self.dir)?.into_iter().filter(|p| *p != self.path).collect())
    }
}

/// The log files in `dir`, oldest first.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    out.sort();
    Ok(out)
}

/// One write of a group as read back, borrowing the file's bytes.
pub type ReadWrite<'a> = (&'a [u8], Option<&'a [u8]>);

/// Calls `each` with every complete group in `path`, in order; answers how
/// many there were. A torn or corrupt tail (a group whose append never
/// finished) ends the file.
pub fn read(path: &Path, mut each: impl FnMut(Vec<ReadWrite<'_>>)) -> Result<u64, Error> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io)?;
    let mut groups = 0;
    let mut rest = bytes.as_slice();
    while rest.len() >= 8 {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let Some(payload) = rest.get(8..8 + len).filter(|_| len <= MAX_RECORD) else { break };
        if crc32fast::hash(payload) != crc {
            break;
        }
        // `Vec<u8>` and `&[u8]` have the same postcard encoding.
        let Ok(group) = postcard::from_bytes::<Vec<ReadWrite<'_>>>(payload) else { break };
        each(group);
        groups += 1;
        rest = &rest[8 + len..];
    }
    if !rest.is_empty() {
        tracing::warn!(file = %path.display(), bytes = rest.len(), "ignoring a torn write at the end of the log");
    }
    Ok(groups)
}

/// Deletes log files (their writes are in sled).
pub fn remove(paths: &[PathBuf]) -> Result<(), Error> {
    for p in paths {
        fs::remove_file(p).map_err(io)?;
    }
    Ok(())
}

fn io(e: std::io::Error) -> Error {
    Error::Io(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path) -> Vec<Vec<KvWrite>> {
        let mut out = Vec::new();
        read(path, |g| out.push(g.into_iter().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect()))
            .unwrap();
        out
    }

    #[test]
    fn groups_read_back_until_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path()).unwrap();
        let a: Vec<KvWrite> = vec![(b"k1".to_vec(), Some(b"v1".to_vec())), (b"k2".to_vec(), None)];
        let b: Vec<KvWrite> = vec![(b"k3".to_vec(), Some(vec![7; 1000]))];
        wal.append(&a).unwrap();
        wal.append(&b).unwrap();
        wal.sync_handle().unwrap().sync_data().unwrap();
        let path = files(dir.path()).unwrap().remove(0);
        assert_eq!(read_all(&path), vec![a.clone(), b]);

        // A crash in the middle of the second append.
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..full.len() - 10]).unwrap();
        assert_eq!(read_all(&path), vec![a.clone()]);
        // A flipped bit in it.
        let mut flipped = full.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert_eq!(read_all(&path), vec![a]);
    }

    #[test]
    fn rotation_names_the_files_a_checkpoint_may_delete() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path()).unwrap();
        wal.append(&[(b"k".to_vec(), None)]).unwrap();
        let old = wal.rotate().unwrap();
        assert_eq!(old.len(), 1);
        assert_eq!(files(dir.path()).unwrap().len(), 2);
        remove(&old).unwrap();
        assert_eq!(files(dir.path()).unwrap().len(), 1);
        // A new log after a restart never appends to an old file.
        let again = Wal::create(dir.path()).unwrap();
        assert!(again.path > wal.path);
    }
}
