//! Log segments made ahead of need. A spare (`*.free` in the log's
//! directory) is a file already written through to its full length and
//! synced: once renamed to the next log number, appends to it overwrite
//! allocated blocks, so `fdatasync` has no metadata to commit. Spares come
//! from a background thread that writes zeros (one at a time, paced so its
//! writes never queue far ahead of the log's syncs), or from log files a
//! checkpoint retired. When no spare is ready the log starts a growing file
//! and moves to a spare as soon as one is.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::Error;
use super::wal;

/// Length of a segment made by writing zeros.
pub(super) const SEGMENT: u64 = 16 << 20;
/// Spares kept from retired log files; more are deleted.
const MAX_SPARES: usize = 2;
/// The zeros are synced every this many bytes.
const PACE: usize = 256 << 10;

/// The log file being appended to.
pub(super) struct Segment {
    pub(super) number: u64,
    pub(super) path: PathBuf,
    pub(super) file: Arc<File>,
    /// Its written-through length; `None` for a growing file.
    capacity: Option<u64>,
}

impl Segment {
    /// Whether the log should move to the next segment before appending
    /// `record` bytes at `end`: this one is full (unless it holds nothing
    /// yet: a record longer than a segment grows the file), or it is a
    /// growing file and a spare is ready.
    pub(super) fn wants_switch(&self, end: u64, record: u64, spares: &Spares) -> bool {
        match self.capacity {
            Some(capacity) => end + record > capacity && end > wal::HEADER as u64,
            None => spares.ready(),
        }
    }
}

/// Where spares come from: the log's directory and the thread making one.
pub(super) struct Spares {
    dir: PathBuf,
    making: Option<JoinHandle<Result<(), Error>>>,
    /// Making one failed (a full disk, say): the log grows its files, and
    /// uses only the spares checkpoints retire, until the next start.
    failed: bool,
}

impl Spares {
    /// Spares of `dir`; removes a spare a crash left half made.
    pub(super) fn new(dir: &Path) -> Result<Self, Error> {
        match fs::remove_file(dir.join("segment.partial")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::Io(e)),
            _ => {}
        }
        Ok(Spares { dir: dir.to_owned(), making: None, failed: false })
    }

    /// A spare has been made since the log last took one.
    fn ready(&self) -> bool {
        self.making.as_ref().is_some_and(JoinHandle::is_finished)
    }

    /// The segment for log file `number`: a spare renamed, or a new growing
    /// file when there is none. Starts making a spare when none is left.
    pub(super) fn take(&mut self, number: u64) -> Result<Segment, Error> {
        if self.ready()
            && let Some(Err(e)) = self.making.take().map(|t| t.join().unwrap_or(Ok(())))
        {
            tracing::warn!(error = %e, "could not make a spare log segment; the log grows its files");
            self.failed = true;
        }
        let free = free(&self.dir)?;
        let path = self.dir.join(format!("{number:020}.wal"));
        let capacity = match free.first() {
            Some(spare) => {
                fs::rename(spare, &path).map_err(Error::Io)?;
                Some(fs::metadata(&path).map_err(Error::Io)?.len())
            }
            None => {
                OpenOptions::new().write(true).create_new(true).open(&path).map_err(Error::Io)?;
                None
            }
        };
        // The file's name must be durable before anything in it is
        // acknowledged.
        sync_dir(&self.dir)?;
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(Error::Io)?;
        if free.len() <= 1 && self.making.is_none() && !self.failed {
            let dir = self.dir.clone();
            self.making = Some(
                std::thread::Builder::new()
                    .name("sandflow-segment".into())
                    .spawn(move || make(&dir))
                    .map_err(Error::Io)?,
            );
        }
        Ok(Segment { number, path, file: Arc::new(file), capacity })
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        if let Some(t) = self.making.take() {
            let _ = t.join();
        }
    }
}

/// Writes a spare: zeros, synced as they go, renamed into place when whole.
fn make(dir: &Path) -> Result<(), Error> {
    let partial = dir.join("segment.partial");
    let mut file = File::create(&partial).map_err(Error::Io)?;
    let zeros = vec![0u8; PACE];
    for _ in 0..SEGMENT as usize / PACE {
        file.write_all(&zeros).map_err(Error::Io)?;
        file.sync_data().map_err(Error::Io)?;
    }
    file.sync_all().map_err(Error::Io)?;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    fs::rename(&partial, dir.join(format!("made-{nanos}.free"))).map_err(Error::Io)?;
    sync_dir(dir)
}

/// The spares in `dir`.
fn free(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(Error::Io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "free"))
        .collect();
    out.sort();
    Ok(out)
}

/// Log files whose writes sled holds: full-length ones in this format become
/// spares while fewer than [`MAX_SPARES`] exist, the rest are deleted.
/// Idempotent: a file a failed retirement already moved is skipped, so a
/// checkpoint retried after a failure can finish.
pub(super) fn retire(dir: &Path, paths: &[PathBuf]) -> Result<(), Error> {
    let mut spares = free(dir)?.len();
    for path in paths {
        let len = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        if spares < MAX_SPARES && len >= SEGMENT && wal::has_header(path) {
            fs::rename(path, path.with_extension("free")).map_err(Error::Io)?;
            spares += 1;
        } else {
            fs::remove_file(path).map_err(Error::Io)?;
        }
    }
    // A retired file must not come back after a crash: replaying it over
    // newer checkpoints would bring older values back.
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(Error::Io)
}
