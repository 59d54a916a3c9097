//! The job cache's storage: the only code touching `object_store`. Values
//! live under `jobs/{job id}/` in a directory under the data dir by default,
//! or in an S3-compatible or GCS bucket (`serve --cache s3://bucket/prefix`,
//! `gs://bucket/prefix`, credentials from the usual environment variables).
//!
//! A key's group segments are stored with a `~` after them and its last
//! segment as is (both percent-encoded where object stores or file systems
//! would misread them): a key `a` and a key `a/b` can then both exist on a
//! file system too, since a file name never ends in `~` (`~` is encoded).
//!
//! Architecture invariant: a put is durable once it returned (files are
//! synced), and visible to every task of the job from then on.

mod upload;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt};

pub use upload::Upload;

use crate::model::{CACHE_CHUNK_BYTES, CacheKey, JobId};

/// Why the cache could not do something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--cache` names nothing this host can open.
    #[error("cache location `{location}`: {reason}")]
    Config {
        /// What was given.
        location: String,
        /// Why it does not work.
        reason: String,
    },
    /// The object store failed.
    #[error("the job cache's storage failed: {0}")]
    Storage(#[from] object_store::Error),
    /// A value grew past its bound while being written.
    #[error("{0}")]
    TooLarge(String),
}

/// A value being read: its size, then its bytes in chunks.
pub struct Value {
    pub size: u64,
    pub chunks: BoxStream<'static, Result<Bytes, Error>>,
}

/// A key and the size of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub size: u64,
}

/// The job caches of this host.
#[derive(Clone)]
pub struct JobCache {
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for JobCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobCache({})", self.store)
    }
}

impl JobCache {
    /// Opens the cache at `location` (a URL), or in `default_dir` when none.
    pub fn open(location: Option<&str>, default_dir: &std::path::Path) -> Result<JobCache, Error> {
        let store = match location {
            None => local(default_dir)?,
            Some(url) => remote(url)?,
        };
        Ok(JobCache { store })
    }

    /// Where a job's values live.
    fn job_root(job: JobId) -> String {
        format!("jobs/{job}")
    }

    /// Where a key's value lives.
    fn location(job: JobId, key: &CacheKey) -> Path {
        let segments: Vec<&str> = key.segments().collect();
        let (last, groups) = segments.split_last().expect("a key has a segment");
        let mut location = Self::job_root(job);
        for group in groups {
            location.push('/');
            location.push_str(&group_part(group));
        }
        location.push('/');
        location.push_str(PathPart::from(*last).as_ref());
        stored(location)
    }

    /// The value of `key`, or `None`.
    pub async fn get(&self, job: JobId, key: &CacheKey) -> Result<Option<Value>, Error> {
        match self.store.get(&Self::location(job, key)).await {
            Ok(got) => {
                let size = got.meta.size;
                let chunks = got.into_stream().map_err(Error::from).boxed();
                Ok(Some(Value { size, chunks }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The size of `key`'s value, or `None` when there is none.
    pub async fn size(&self, job: JobId, key: &CacheKey) -> Result<Option<u64>, Error> {
        match self.store.head(&Self::location(job, key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts writing `key`'s value (of at most `max` bytes); it replaces
    /// the old value when the upload finishes, and not before.
    pub fn put(&self, job: JobId, key: &CacheKey, max: usize) -> Upload {
        Upload::new(self.store.clone(), Self::location(job, key), key.clone(), max)
    }

    /// Deletes `key`'s value; whether there was one.
    pub async fn delete(&self, job: JobId, key: &CacheKey) -> Result<bool, Error> {
        let location = Self::location(job, key);
        match self.store.head(&location).await {
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// At most `limit` keys starting with `prefix`, in order, after `after`.
    pub async fn list(
        &self,
        job: JobId,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        let group = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let mut under = Self::job_root(job);
        for segment in group.split('/').filter(|s| !s.is_empty()) {
            under.push('/');
            under.push_str(&group_part(segment));
        }
        let under = stored(under);
        let mut listing = self.store.list(Some(&under));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let Some(key) = key_of(&meta.location) else { continue };
            if key.starts_with(prefix) && after.is_none_or(|a| key.as_str() > a) {
                found.push(Entry { key, size: meta.size });
            }
        }
        found.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        found.truncate(limit);
        Ok(found)
    }

    /// Deletes every value of `job`; how many there were.
    pub async fn delete_job(&self, job: JobId) -> Result<u64, Error> {
        let root = stored(Self::job_root(job));
        let locations = self.store.list(Some(&root)).map_ok(|m| m.location).boxed();
        let mut deleted = self.store.delete_stream(locations);
        let mut n = 0;
        while let Some(done) = deleted.next().await {
            match done {
                Ok(_) => n += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// The jobs that have values.
    pub async fn jobs(&self) -> Result<Vec<JobId>, Error> {
        let listed = self.store.list_with_delimiter(Some(&Path::from("jobs"))).await?;
        Ok(listed.common_prefixes.iter().filter_map(|p| p.filename()?.parse().ok()).collect())
    }
}

/// A group segment as stored: encoded, then `~`.
fn group_part(segment: &str) -> String {
    format!("{}~", PathPart::from(segment).as_ref())
}

/// A location built of encoded segments (which `Path::parse` takes as they
/// are).
fn stored(location: String) -> Path {
    Path::parse(location).expect("encoded segments form a valid path")
}

/// The key stored at `location` (`None` for what is not a key's value).
fn key_of(location: &Path) -> Option<String> {
    let parts: Vec<_> = location.parts().skip(2).collect();
    let (last, groups) = parts.split_last()?;
    let mut key = String::new();
    for group in groups {
        key.push_str(&decode(group.as_ref().strip_suffix('~')?)?);
        key.push('/');
    }
    if last.as_ref().ends_with('~') {
        return None;
    }
    key.push_str(&decode(last.as_ref())?);
    Some(key)
}

fn decode(part: &str) -> Option<String> {
    percent_encoding::percent_decode_str(part).decode_utf8().ok().map(|s| s.into_owned())
}

/// The default: a directory, created when missing, synced on every put.
fn local(dir: &std::path::Path) -> Result<Arc<dyn ObjectStore>, Error> {
    let config = |reason: String| Error::Config { location: dir.display().to_string(), reason };
    std::fs::create_dir_all(dir).map_err(|e| config(e.to_string()))?;
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| config(e.to_string()))?
        .with_fsync(true)
        .with_automatic_cleanup(true);
    // Files are read in chunks of a host call's size, not 8 KiB.
    Ok(Arc::new(object_store::chunked::ChunkedStore::new(Arc::new(fs), CACHE_CHUNK_BYTES)))
}

/// A bucket: `s3://bucket[/prefix]` or `gs://bucket[/prefix]`.
fn remote(url: &str) -> Result<Arc<dyn ObjectStore>, Error> {
    let config = |reason: String| Error::Config { location: url.to_owned(), reason };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| config("expected s3://bucket/prefix or gs://bucket/prefix".into()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(config("the bucket is missing".into()));
    }
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" | "s3a" => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| config(e.to_string()))?,
        ),
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| config(e.to_string()))?,
        ),
        other => return Err(config(format!("unknown scheme `{other}`; use s3:// or gs://"))),
    };
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Ok(store);
    }
    let prefix = Path::parse(prefix).map_err(|e| config(e.to_string()))?;
    Ok(Arc::new(object_store::prefix::PrefixStore::new(store, prefix)))
}

#[cfg(test)]
mod tests;
