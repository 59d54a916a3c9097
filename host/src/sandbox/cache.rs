//! The job cache as an attempt sees it (`sandflow:task/cache`): where the
//! values are is the runner's [`CacheAccess`] (the host's cache for an
//! in-process runner, the host's API for a remote one); what one attempt
//! may do is [`AttemptCache`]'s: keys checked, values and the attempt's
//! writes bounded in bytes, open writers and readers bounded in number
//! (a writer holds up to a part of its value in host memory).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};

use crate::model::{
    Bounds, CACHE_CHUNK_BYTES, CacheKey, JobId, check_attempt_writes, check_prefix, check_value_size,
};

/// Writers, and readers, one attempt may have open at once.
pub const MAX_OPEN: usize = 16;

/// A value being read: its size and its bytes.
pub struct CacheValue {
    pub size: u64,
    pub chunks: BoxStream<'static, Result<Bytes, String>>,
}

/// A value being written.
pub trait CacheUpload: Send {
    /// Appends `chunk`.
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), String>>;
    /// Stores the value under its key.
    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), String>>;
}

/// Where a runner's attempts find their jobs' caches. Errors are messages
/// for the guest.
pub trait CacheAccess: Send + Sync {
    fn get(&self, job: JobId, key: CacheKey) -> BoxFuture<'static, Result<Option<CacheValue>, String>>;
    /// Starts writing a value of at most `max` bytes.
    fn put(
        &self,
        job: JobId,
        key: CacheKey,
        max: usize,
    ) -> BoxFuture<'static, Result<Box<dyn CacheUpload>, String>>;
    fn contains(&self, job: JobId, key: CacheKey) -> BoxFuture<'static, Result<bool, String>>;
    fn delete(&self, job: JobId, key: CacheKey) -> BoxFuture<'static, Result<bool, String>>;
    /// At most [`crate::model::MAX_LIST_KEYS`] keys after `after`.
    fn list(
        &self,
        job: JobId,
        prefix: String,
        after: Option<String>,
    ) -> BoxFuture<'static, Result<Vec<String>, String>>;
}

/// A writer resource: the upload, until it finishes or fails.
pub struct Writer {
    key: CacheKey,
    upload: Result<Box<dyn CacheUpload>, String>,
    written: u64,
}

/// A reader resource.
pub struct Reader {
    size: u64,
    chunks: BoxStream<'static, Result<Bytes, String>>,
    pending: Bytes,
}

/// One attempt's view of its job's cache.
pub struct AttemptCache {
    job: JobId,
    access: Option<Arc<dyn CacheAccess>>,
    bounds: Arc<Bounds>,
    written: u64,
    pub(super) writers: usize,
    pub(super) readers: usize,
}

impl AttemptCache {
    /// The cache of `job` through `access` (`None`: this runner has none).
    pub fn new(job: JobId, access: Option<Arc<dyn CacheAccess>>, bounds: Arc<Bounds>) -> Self {
        AttemptCache { job, access, bounds, written: 0, writers: 0, readers: 0 }
    }

    fn access(&self) -> Result<&Arc<dyn CacheAccess>, String> {
        self.access.as_ref().ok_or_else(|| "this runner has no job cache".to_owned())
    }

    /// Starts a writer for `key`.
    pub fn put(&mut self, key: &str) -> Result<BoxFuture<'static, Result<Writer, String>>, String> {
        let key = CacheKey::parse(key)?;
        if self.writers >= MAX_OPEN {
            return Err(format!("an attempt may have at most {MAX_OPEN} cache writers open at once"));
        }
        let put = self.access()?.put(self.job, key.clone(), self.bounds.cache_value_bytes);
        self.writers += 1;
        Ok(Box::pin(async move { Ok(Writer { key, upload: Ok(put.await?), written: 0 }) }))
    }

    /// Checks a chunk of `len` bytes for `writer` against the bounds, and
    /// counts it.
    pub fn charge(&mut self, writer: &mut Writer, len: usize) -> Result<(), String> {
        if len > CACHE_CHUNK_BYTES {
            return Err(format!("a cache write takes at most {CACHE_CHUNK_BYTES} bytes; this one had {len}"));
        }
        let checked =
            check_value_size(&writer.key, writer.written + len as u64, self.bounds.cache_value_bytes)
                .and_then(|()| {
                    check_attempt_writes(self.written, len as u64, self.bounds.cache_attempt_bytes)
                });
        match checked {
            Ok(total) => {
                self.written = total;
                writer.written += len as u64;
                Ok(())
            }
            Err(e) => {
                writer.upload = Err(e.clone());
                Err(e)
            }
        }
    }

    /// Starts a reader for `key`.
    pub fn get(&mut self, key: &str) -> Result<BoxFuture<'static, Result<Option<Reader>, String>>, String> {
        let key = CacheKey::parse(key)?;
        if self.readers >= MAX_OPEN {
            return Err(format!("an attempt may have at most {MAX_OPEN} cache readers open at once"));
        }
        let get = self.access()?.get(self.job, key);
        Ok(Box::pin(async move {
            Ok(get.await?.map(|v| Reader { size: v.size, chunks: v.chunks, pending: Bytes::new() }))
        }))
    }

    pub fn contains(&self, key: &str) -> Result<BoxFuture<'static, Result<bool, String>>, String> {
        Ok(self.access()?.contains(self.job, CacheKey::parse(key)?))
    }

    pub fn delete(&self, key: &str) -> Result<BoxFuture<'static, Result<bool, String>>, String> {
        Ok(self.access()?.delete(self.job, CacheKey::parse(key)?))
    }

    pub fn list(
        &self,
        prefix: &str,
        after: Option<String>,
    ) -> Result<BoxFuture<'static, Result<Vec<String>, String>>, String> {
        check_prefix(prefix)?;
        Ok(self.access()?.list(self.job, prefix.to_owned(), after))
    }
}

impl Writer {
    /// Appends `chunk` (already charged).
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), String> {
        let upload = self.upload.as_mut().map_err(|e| e.clone())?;
        if let Err(e) = upload.write(chunk).await {
            self.upload = Err(e.clone());
            return Err(e);
        }
        Ok(())
    }

    /// Stores the value.
    pub async fn finish(self) -> Result<(), String> {
        self.upload?.finish().await
    }
}

impl Reader {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next bytes, at most `max` (and at most a chunk).
    pub async fn read(&mut self, max: u32) -> Result<Vec<u8>, String> {
        let max = (max as usize).min(CACHE_CHUNK_BYTES);
        let mut out = Vec::with_capacity(max.min(self.size as usize));
        while out.len() < max {
            if self.pending.is_empty() {
                match self.chunks.next().await {
                    Some(chunk) => self.pending = chunk?,
                    None => break,
                }
            }
            let take = self.pending.len().min(max - out.len());
            out.extend_from_slice(&self.pending.split_to(take));
        }
        Ok(out)
    }
}
