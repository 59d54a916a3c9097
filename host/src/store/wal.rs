//! The write-ahead log: every applied group of writes is appended as one
//! record (`length`, `crc32`, postcard payload) and made durable with
//! `fdatasync`. sled is written later, coalesced, by a checkpoint (see
//! `local.rs`); at open the records left are replayed.
//!
//! Files are numbered in the order they were started and begin with a
//! header naming their number; a record's checksum covers that number, so
//! what a reused file held before does not read as records. The log writes
//! into segments made ahead of need (`segment.rs`): files already written
//! through to their full length, so an append changes no file size and
//! `fdatasync` has no file-system metadata to commit (a commit would also
//! wait for whatever else the file system has pending, such as sled's
//! writes during a checkpoint). A checkpoint starts a new file and retires
//! the older ones once sled holds their writes: full-length ones become
//! spare segments again, the rest are deleted.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Error;
use super::segment::{self, Segment, Spares};

use super::kv::KvWrite;

/// Longest record accepted when reading (a larger length is a torn tail).
const MAX_RECORD: usize = 1 << 30;
/// The first bytes of a log file in this format.
const MAGIC: &[u8; 8] = b"SFLOG\x00v2";
/// Header: the magic and the file's number.
pub(super) const HEADER: usize = 16;
/// Buffered bytes written out before the next append.
const BUFFER: usize = 1 << 20;

/// What a sync makes durable: the file, its number and the end written.
pub struct SyncHandle {
    pub file: Arc<File>,
    number: u64,
    end: u64,
}

/// The log's directory and the file being appended to.
pub struct Wal {
    dir: PathBuf,
    seg: Segment,
    /// Appended bytes not yet written to the file, and where they go.
    buf: Vec<u8>,
    buf_at: u64,
    /// The end of the current file's bytes known durable.
    synced_end: u64,
    spares: Spares,
    /// Bytes appended since the last rotation.
    pub bytes: u64,
    /// Bytes appended since the log was opened.
    pub total: u64,
}

impl Wal {
    /// A new file in `dir`, numbered after every file already there (replay
    /// reads them in number order), never an existing one: a group appended
    /// after a torn tail would be unreadable.
    pub fn create(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(io)?;
        let mut spares = Spares::new(dir)?;
        let seg = spares.take(next_number(dir)?)?;
        let mut wal = Wal {
            dir: dir.to_owned(),
            buf: Vec::new(),
            buf_at: 0,
            synced_end: 0,
            seg,
            spares,
            bytes: 0,
            total: 0,
        };
        wal.start_file();
        Ok(wal)
    }

    /// Appends one group (buffered; durable after [`Wal::sync_handle`]'s sync).
    /// The record is encoded straight into the buffer behind room for its
    /// length and checksum, which are filled in after.
    pub fn append(&mut self, group: &[KvWrite]) -> Result<(), Error> {
        // Byte strings, so each key and value is one copy; postcard encodes
        // them as it encodes a sequence of bytes (what `read` expects).
        let group: Vec<(&serde_bytes::Bytes, Option<&serde_bytes::Bytes>)> = group
            .iter()
            .map(|(k, v)| (serde_bytes::Bytes::new(k), v.as_deref().map(serde_bytes::Bytes::new)))
            .collect();
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 8]);
        self.buf =
            postcard::to_extend(&group, std::mem::take(&mut self.buf)).expect("writes always serialize");
        let len = self.buf.len() - start - 8;
        let Ok(len32) = u32::try_from(len) else {
            self.buf.truncate(start);
            return Err(Error::Corrupt { what: "log group", reason: format!("{len} bytes is over 4 GiB") });
        };
        let record = 8 + u64::from(len32);
        if self.seg.wants_switch(self.buf_at + start as u64, record, &self.spares) {
            // Rare: the record moves to the next segment.
            let tail = self.buf.split_off(start);
            self.switch()?;
            self.buf.extend_from_slice(&tail);
        }
        let at = self.buf.len() - len - 8;
        let crc = checksum(self.seg.number, &self.buf[at + 8..]);
        self.buf[at..at + 4].copy_from_slice(&len32.to_le_bytes());
        self.buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        self.bytes += record;
        self.total += record;
        if self.buf.len() >= BUFFER {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes the buffer out and answers the file to `sync_data` (outside
    /// any lock): that makes everything appended so far durable; then
    /// [`Wal::synced`].
    pub fn sync_handle(&mut self) -> Result<SyncHandle, Error> {
        self.write_out()?;
        Ok(SyncHandle { file: self.seg.file.clone(), number: self.seg.number, end: self.buf_at })
    }

    /// Notes that `handle`'s sync succeeded.
    pub fn synced(&mut self, handle: &SyncHandle) {
        if handle.number == self.seg.number {
            self.synced_end = self.synced_end.max(handle.end);
        }
    }

    /// After a failed sync: overwrites what the current file holds past its
    /// last durable byte with zeros (where replay stops) and syncs that, so
    /// a group that was never acknowledged is not replayed if the kernel
    /// writes its pages later after all.
    pub fn erase_unsynced(&mut self) -> Result<(), Error> {
        self.buf.clear();
        let from = self.synced_end.max(HEADER as u64);
        if self.buf_at > from {
            let zeros = vec![0u8; (self.buf_at - from) as usize];
            self.seg.file.write_all_at(&zeros, from).map_err(io)?;
        }
        self.buf_at = from;
        self.seg.file.sync_data().map_err(io)
    }

    /// Makes the current file durable and continues in a new one; answers
    /// the files before it.
    pub fn rotate(&mut self) -> Result<Vec<PathBuf>, Error> {
        self.switch()?;
        self.bytes = 0;
        Ok(files(&self.dir)?.into_iter().filter(|p| *p != self.seg.path).collect())
    }

    /// Syncs the current file and moves to the next number's segment.
    fn switch(&mut self) -> Result<(), Error> {
        self.sync_handle()?.file.sync_data().map_err(io)?;
        self.seg = self.spares.take(self.seg.number + 1)?;
        self.synced_end = 0;
        self.start_file();
        Ok(())
    }

    /// Buffers the header of a fresh file (the first sync writes it).
    fn start_file(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(MAGIC);
        self.buf.extend_from_slice(&self.seg.number.to_le_bytes());
        self.buf_at = 0;
    }

    fn write_out(&mut self) -> Result<(), Error> {
        if !self.buf.is_empty() {
            self.seg.file.write_all_at(&self.buf, self.buf_at).map_err(io)?;
            self.buf_at += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

/// The checksum of a record of file `number`.
fn checksum(number: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&number.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The number of a log file, from its name.
pub(super) fn number(path: &Path) -> Option<u64> {
    path.file_stem()?.to_str()?.parse().ok()
}

fn next_number(dir: &Path) -> Result<u64, Error> {
    Ok(files(dir)?.iter().filter_map(|p| number(p)).max().map_or(1, |n| n + 1))
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

/// How far forward of a bad record replay looks for a valid one.
const SCAN_AFTER_BAD: usize = 64 << 10;

/// Calls `each` with every complete group in `path`, in order; answers how
/// many there were. The log in the file ends at the first record that is
/// not complete and whole: a zero length (unused space of a segment), a
/// torn append, or what a reused file held before. A bad record followed by
/// a valid record of this file is no torn tail but corruption: that is
/// [`Error::CorruptLog`], after `each` saw the groups before it.
pub fn read(path: &Path, mut each: impl FnMut(Vec<ReadWrite<'_>>)) -> Result<u64, Error> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut bytes)).map_err(io)?;
    let Some(records) = records(path, &bytes) else { return Ok(0) };
    let salt = number(path).unwrap_or(0);
    let (mut at, mut groups) = (0, 0);
    while let Some((group, len)) = record(&records[at..], salt) {
        each(group);
        groups += 1;
        at += 8 + len;
    }
    let rest = &records[at..];
    if rest.iter().take(4096).any(|b| *b != 0) {
        if let Some(found) = valid_record_after(rest, salt) {
            let file = path.display().to_string();
            return Err(Error::CorruptLog {
                file,
                offset: (HEADER + at) as u64,
                next: (HEADER + at + found) as u64,
            });
        }
        tracing::debug!(file = %path.display(), bytes = rest.len(), "the log ends before the end of its file");
    }
    Ok(groups)
}

/// The group at the start of `bytes` and its payload's length, if a whole
/// record of file `salt` is there.
fn record(bytes: &[u8], salt: u64) -> Option<(Vec<ReadWrite<'_>>, usize)> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let payload = bytes.get(8..8 + len).filter(|_| len > 0 && len <= MAX_RECORD)?;
    if checksum(salt, payload) != crc {
        return None;
    }
    // `Vec<u8>` and `&[u8]` have the same postcard encoding.
    Some((postcard::from_bytes::<Vec<ReadWrite<'_>>>(payload).ok()?, len))
}

/// Where a valid record of file `salt` starts after the bad one at the
/// start of `bytes`: where the bad record's own length says the next one
/// is, or anywhere in the [`SCAN_AFTER_BAD`] bytes after it.
fn valid_record_after(bytes: &[u8], salt: u64) -> Option<usize> {
    let claimed = bytes.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize + 8);
    let claimed = claimed.filter(|at| *at < bytes.len() && record(&bytes[*at..], salt).is_some());
    claimed.or_else(|| (1..bytes.len().min(SCAN_AFTER_BAD)).find(|at| record(&bytes[*at..], salt).is_some()))
}

/// Ends the log of `path` at byte `offset` (zeros from there on, synced):
/// what `serve --recover-log` does to a corrupt record.
pub fn truncate_at(path: &Path, offset: u64) -> Result<(), Error> {
    let file = fs::OpenOptions::new().write(true).open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let zeros = vec![0u8; 1 << 20];
    let mut at = offset;
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at).map_err(io)?;
        at += n as u64;
    }
    file.sync_data().map_err(io)
}

/// The bytes after a file's header; `None` when the file has no header of
/// its own number (a segment not used yet, or one whose header was not
/// rewritten before a crash).
fn records<'a>(path: &Path, bytes: &'a [u8]) -> Option<&'a [u8]> {
    let (magic, rest) = bytes.split_at_checked(MAGIC.len())?;
    let (own, rest) = rest.split_at_checked(8)?;
    (magic == MAGIC && number(path) == Some(u64::from_le_bytes(own.try_into().ok()?))).then_some(rest)
}

/// Whether `path` is a log file in this format (only those are reused).
pub(super) fn has_header(path: &Path) -> bool {
    let mut head = [0u8; HEADER];
    File::open(path).and_then(|f| f.read_exact_at(&mut head, 0)).is_ok() && records(path, &head).is_some()
}

/// Retires log files whose writes sled holds: full-length ones become
/// spare segments (up to a few), the rest are deleted.
pub fn retire(paths: &[PathBuf]) -> Result<(), Error> {
    match paths.first().and_then(|p| p.parent()) {
        Some(dir) => segment::retire(dir, paths),
        None => Ok(()),
    }
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
        wal.sync_handle().unwrap().file.sync_data().unwrap();
        let path = wal.seg.path.clone();
        assert_eq!(read_all(&path), vec![a.clone(), b]);

        // A crash in the middle of the second append (the file may be a
        // segment: zeros after the records).
        let full = fs::read(&path).unwrap();
        let end = full.iter().rposition(|b| *b != 0).unwrap() + 1;
        fs::write(&path, &full[..end - 10]).unwrap();
        assert_eq!(read_all(&path), vec![a.clone()]);
        // A flipped bit in it.
        let mut flipped = full.clone();
        flipped[end - 1] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert_eq!(read_all(&path), vec![a.clone()]);
        // The same bytes under another number: what a reused file held.
        let other = dir.path().join(format!("{:020}.wal", 99));
        fs::write(&other, &full).unwrap();
        assert!(read_all(&other).is_empty());
    }

    #[test]
    fn a_bad_record_with_valid_ones_after_it_is_corruption_until_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path()).unwrap();
        let groups: Vec<Vec<KvWrite>> = (0..3u8).map(|i| vec![(vec![b'k', i], Some(vec![i; 100]))]).collect();
        for g in &groups {
            wal.append(g).unwrap();
        }
        wal.sync_handle().unwrap().file.sync_data().unwrap();
        let path = wal.seg.path.clone();
        let mut bytes = fs::read(&path).unwrap();
        let second = HEADER + 8 + u32::from_le_bytes(bytes[HEADER..HEADER + 4].try_into().unwrap()) as usize;
        bytes[second + 20] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let mut seen = Vec::new();
        let e = read(&path, |g| seen.push(g.len())).unwrap_err();
        assert_eq!(seen.len(), 1, "the groups before it are read");
        let Error::CorruptLog { offset, .. } = e else { panic!("{e}") };
        assert_eq!(offset, second as u64);
        assert!(e.to_string().contains("--recover-log"), "{e}");
        // Its length field broken too: found by the scan.
        bytes[second] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(&path, |_| {}), Err(Error::CorruptLog { .. })));
        truncate_at(&path, offset).unwrap();
        assert_eq!(read_all(&path), vec![groups[0].clone()]);
    }

    #[test]
    fn records_are_encoded_as_earlier_versions_wrote_them() {
        // Earlier versions serialized the writes themselves; a log they
        // left must replay.
        let group: Vec<KvWrite> = vec![(b"key".to_vec(), Some(vec![0, 1, 255])), (b"gone".to_vec(), None)];
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path()).unwrap();
        wal.append(&group).unwrap();
        let written = wal.buf[HEADER + 8..].to_vec();
        assert_eq!(written, postcard::to_stdvec(&group).unwrap());
    }

    #[test]
    fn rotation_names_the_files_a_checkpoint_may_retire() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path()).unwrap();
        wal.append(&[(b"k".to_vec(), None)]).unwrap();
        let old = wal.rotate().unwrap();
        assert_eq!(old.len(), 1);
        assert_eq!(files(dir.path()).unwrap().len(), 2);
        retire(&old).unwrap();
        assert_eq!(files(dir.path()).unwrap().len(), 1);
        // A new log after a restart never appends to an old file.
        let again = Wal::create(dir.path()).unwrap();
        assert!(again.seg.number > wal.seg.number);
    }

    #[test]
    fn reused_segments_read_back_only_what_was_appended_since() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path()).unwrap();
        let group = |i: u32| vec![(i.to_le_bytes().to_vec(), Some(vec![i as u8; 1 << 20]))];
        for i in 0..40 {
            wal.append(&group(i)).unwrap();
        }
        let old = wal.rotate().unwrap();
        retire(&old).unwrap();
        // The next file reuses a retired one, full of records of its old
        // number.
        wal.rotate().unwrap();
        let reused = fs::read(&wal.seg.path).unwrap();
        assert!(reused.len() as u64 >= super::segment::SEGMENT, "a full-length file, {} bytes", reused.len());
        assert!(reused[1 << 20..].iter().any(|b| *b != 0), "a retired log file, its old records still in it");
        let small: Vec<Vec<KvWrite>> =
            (100..103u32).map(|i| vec![(i.to_le_bytes().to_vec(), None)]).collect();
        for g in &small {
            wal.append(g).unwrap();
        }
        wal.sync_handle().unwrap().file.sync_data().unwrap();
        let read: Vec<Vec<KvWrite>> = files(dir.path()).unwrap().iter().flat_map(|p| read_all(p)).collect();
        assert_eq!(read, small);
    }
}
