//! The job cache: byte values under string keys, shared by the tasks of one
//! job (and by no other job), deleted with the job. Keys are `/`-separated
//! segments, and a group is a key prefix (`pages/`), which a task can hand
//! its subtasks in their input.
//!
//! Values move in chunks of at most 1 MiB: [`Cache::put`] and
//! [`Cache::get`] do that for a whole value in memory, [`Cache::writer`]
//! and [`Cache::reader`] stream one ([`std::io::Write`], [`std::io::Read`]).
//! A value is stored when its write finishes and stays stored even if the
//! attempt that wrote it fails afterwards: a retry sees it, so write values
//! a retry can overwrite.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::calls as wit;
use crate::{Context, Error};

/// Bytes moved per host call.
const CHUNK: usize = 1 << 20;

/// The job's cache; see [`Context::cache`].
#[derive(Debug, Clone, Copy)]
pub struct Cache {
    _private: (),
}

impl Context {
    /// The job's cache.
    pub fn cache(&self) -> Cache {
        Cache { _private: () }
    }
}

impl Cache {
    /// Stores `value` under `key`, replacing any earlier value.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        let writer = wit::put(key)?;
        for chunk in value.chunks(CHUNK) {
            writer.write(chunk)?;
        }
        Ok(wit::Writer::finish(writer)?)
    }

    /// The value under `key`, or `None`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(reader) = wit::get(key)? else { return Ok(None) };
        let mut value = Vec::with_capacity(usize::try_from(reader.size()).unwrap_or(0));
        loop {
            let chunk = reader.read(CHUNK as u32)?;
            if chunk.is_empty() {
                return Ok(Some(value));
            }
            value.extend_from_slice(&chunk);
        }
    }

    /// Stores `value` as JSON.
    pub fn put_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        let json = serde_json::to_vec(value).map_err(|e| Error::from(format!("cache value `{key}`: {e}")))?;
        self.put(key, &json)
    }

    /// The JSON value under `key`, read as `T`, or `None`.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let Some(bytes) = self.get(key)? else { return Ok(None) };
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::from(format!("cache value `{key}` is not what was expected: {e}")))?;
        Ok(Some(value))
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: &str) -> Result<bool, Error> {
        Ok(wit::contains(key)?)
    }

    /// Deletes the value under `key`; whether there was one.
    pub fn delete(&self, key: &str) -> Result<bool, Error> {
        Ok(wit::delete(key)?)
    }

    /// Every key that starts with `prefix`, in byte order (read from the
    /// host a page of 1000 at a time).
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut keys: Vec<String> = Vec::new();
        loop {
            let page = wit::list(prefix, keys.last().map(String::as_str))?;
            if page.is_empty() {
                return Ok(keys);
            }
            keys.extend(page);
        }
    }

    /// Streams a value into `key`: nothing is stored until
    /// [`CacheWriter::finish`]; dropping the writer leaves the old value.
    pub fn writer(&self, key: &str) -> Result<CacheWriter, Error> {
        Ok(CacheWriter { writer: wit::put(key)?, buffer: Vec::new() })
    }

    /// Streams the value under `key`, or `None`.
    pub fn reader(&self, key: &str) -> Result<Option<CacheReader>, Error> {
        Ok(wit::get(key)?.map(|reader| CacheReader { reader }))
    }
}

/// A value being written; see [`Cache::writer`].
pub struct CacheWriter {
    writer: wit::Writer,
    buffer: Vec<u8>,
}

impl CacheWriter {
    fn flush_buffer(&mut self) -> Result<(), Error> {
        if !self.buffer.is_empty() {
            self.writer.write(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Stores the value.
    pub fn finish(mut self) -> Result<(), Error> {
        self.flush_buffer()?;
        Ok(wit::Writer::finish(self.writer)?)
    }
}

impl std::io::Write for CacheWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == CHUNK {
            self.flush_buffer().map_err(|e| std::io::Error::other(e.report()))?;
        }
        Ok(n)
    }

    /// Sends what is buffered (it is stored only at `finish`).
    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_buffer().map_err(|e| std::io::Error::other(e.report()))
    }
}

/// A value being read; see [`Cache::reader`].
pub struct CacheReader {
    reader: wit::Reader,
}

impl CacheReader {
    /// The value's size in bytes.
    pub fn size(&self) -> u64 {
        self.reader.size()
    }
}

impl std::io::Read for CacheReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let max = buf.len().min(CHUNK) as u32;
        let chunk = self.reader.read(max).map_err(std::io::Error::other)?;
        buf[..chunk.len()].copy_from_slice(&chunk);
        Ok(chunk.len())
    }
}
