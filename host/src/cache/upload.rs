//! Writing one value: chunks are buffered up to [`PART_BYTES`] and a small
//! value is stored with one put; a larger one goes up as a multipart upload,
//! part by part, so the host never holds more than a part of it. Nothing is
//! visible under the key until [`Upload::finish`] (an upload dropped or
//! failed leaves the old value).

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayloadMut, WriteMultipart};

use super::Error;
use crate::model::{CacheKey, check_value_size};

/// Bytes held before they go up as one part (S3's parts are at least 5 MiB).
const PART_BYTES: usize = 8 << 20;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// A value being written.
pub struct Upload {
    store: Arc<dyn ObjectStore>,
    location: Path,
    key: CacheKey,
    max: usize,
    written: u64,
    buffer: PutPayloadMut,
    multipart: Option<WriteMultipart>,
}

impl Upload {
    pub(super) fn new(store: Arc<dyn ObjectStore>, location: Path, key: CacheKey, max: usize) -> Upload {
        Upload { store, location, key, max, written: 0, buffer: PutPayloadMut::new(), multipart: None }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends `chunk`; fails (and the upload is void) past the value bound.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        let written = self.written + chunk.len() as u64;
        check_value_size(&self.key, written, self.max).map_err(Error::TooLarge)?;
        self.written = written;
        if let Some(multipart) = &mut self.multipart {
            multipart.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            multipart.put(chunk);
            return Ok(());
        }
        self.buffer.push(chunk);
        if self.buffer.content_length() >= PART_BYTES {
            let upload = self.store.put_multipart(&self.location).await?;
            let mut multipart = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            for part in std::mem::take(&mut self.buffer).freeze().iter() {
                multipart.put(part.clone());
            }
            self.multipart = Some(multipart);
        }
        Ok(())
    }

    /// Stores the value under its key, replacing the old one.
    pub async fn finish(self) -> Result<u64, Error> {
        match self.multipart {
            Some(multipart) => {
                multipart.finish().await?;
            }
            None => {
                self.store.put(&self.location, self.buffer.freeze()).await?;
            }
        }
        Ok(self.written)
    }

    /// Gives the upload up; the old value stays.
    pub async fn abort(self) {
        if let Some(multipart) = self.multipart
            && let Err(e) = multipart.abort().await
        {
            tracing::warn!(error = %e, "could not abort a cache upload");
        }
    }
}
