//! Uploaded task components ("modules") and the task types they provide.

use std::fmt;

use super::{HostPattern, TaskType};

/// The sha256 of a module's bytes: its content address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The content address of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest(sha2::Sha256::digest(bytes).into())
    }

    /// The content address of the first `len` bytes `reader` gives, read
    /// in pieces (a large file is never held whole).
    pub fn of_reader(reader: impl std::io::Read, len: u64) -> std::io::Result<Digest> {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        let copied = std::io::copy(&mut reader.take(len), &mut hasher)?;
        if copied != len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(Digest(hasher.finalize().into()))
    }

    /// Parses 64 hex digits.
    pub fn parse(hex_digits: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut bytes).ok()?;
        Some(Digest(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// What the host knows of an uploaded module.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleInfo {
    /// Its content address.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The task types it provides.
    pub task_types: Vec<TaskType>,
    /// When it was first uploaded (Unix ms).
    pub uploaded_ms: u64,
    /// Limits its task types run under, within the host's maxima.
    pub limits: TaskLimits,
}

/// Limits and grants an upload asks for its task types; a limit not set is
/// the host's default, and never above the host's maxima (checked at
/// upload).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskLimits {
    /// Wall-clock time of one attempt, in ms.
    pub timeout_ms: Option<u64>,
    /// Linear memory of one instance, in bytes.
    pub memory_bytes: Option<u64>,
    /// Hosts its tasks may send HTTP requests to, besides the host-wide list.
    pub allow_http: Vec<HostPattern>,
    /// The secrets its tasks may read.
    pub secrets: Vec<String>,
}
