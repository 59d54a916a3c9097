//! Where attempts find their job's cache: this host's [`JobCache`] for the
//! in-process runners, the host's API (`/v1/runners/cache/{job}...`, with
//! the runner's token) for a remote one, values streamed both ways.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{StreamExt, TryStreamExt};

use super::host_api::{HostApi, refusal};
use crate::cache::{JobCache, Upload};
use crate::model::{CacheKey, JobId, MAX_LIST_KEYS};
use crate::protocol::CacheListing;
use crate::sandbox::{CacheAccess, CacheUpload, CacheValue};

/// This host's cache, directly.
pub struct LocalCache(pub JobCache);

impl CacheUpload for Upload {
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { Upload::write(self, chunk).await.map_err(|e| e.to_string()) })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move { Upload::finish(*self).await.map(|_| ()).map_err(|e| e.to_string()) })
    }
}

impl CacheAccess for LocalCache {
    fn get(&self, job: JobId, key: CacheKey) -> BoxFuture<'static, Result<Option<CacheValue>, String>> {
        let cache = self.0.clone();
        Box::pin(async move {
            let value = cache.get(job, &key).await.map_err(|e| e.to_string())?;
            Ok(value
                .map(|v| CacheValue { size: v.size, chunks: v.chunks.map_err(|e| e.to_string()).boxed() }))
        })
    }

    fn put(
        &self,
        job: JobId,
        key: CacheKey,
        max: usize,
    ) -> BoxFuture<'static, Result<Box<dyn CacheUpload>, String>> {
        let upload = self.0.put(job, &key, max);
        Box::pin(async move { Ok(Box::new(upload) as Box<dyn CacheUpload>) })
    }

    fn contains(&self, job: JobId, key: CacheKey) -> BoxFuture<'static, Result<bool, String>> {
        let cache = self.0.clone();
        Box::pin(async move { Ok(cache.size(job, &key).await.map_err(|e| e.to_string())?.is_some()) })
    }

    fn delete(&self, job: JobId, key: CacheKey) -> BoxFuture<'static, Result<bool, String>> {
        let cache = self.0.clone();
        Box::pin(async move { cache.delete(job, &key).await.map_err(|e| e.to_string()) })
    }

    fn list(
        &self,
        job: JobId,
        prefix: String,
        after: Option<String>,
    ) -> BoxFuture<'static, Result<Vec<String>, String>> {
        let cache = self.0.clone();
        Box::pin(async move {
            let found = cache.list(job, &prefix, after.as_deref(), MAX_LIST_KEYS).await;
            Ok(found.map_err(|e| e.to_string())?.into_iter().map(|e| e.key).collect())
        })
    }
}

/// The host's cache, through its API.
pub struct HttpCache(pub HostApi);

/// A value streamed to the host as the body of one request.
struct HttpUpload {
    chunks: Option<tokio::sync::mpsc::Sender<Bytes>>,
    /// The request; taken by `finish`.
    sent: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl HttpCache {
    fn request(
        &self,
        method: reqwest::Method,
        job: JobId,
        query: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let path = if query.iter().any(|(k, _)| *k == "key") { "/value" } else { "" };
        self.0.request(method, &format!("/v1/runners/cache/{job}{path}")).query(query)
    }
}

/// The answer's status, or the host's message.
async fn checked(sent: Result<reqwest::Response, reqwest::Error>) -> Result<reqwest::Response, String> {
    let resp = sent.map_err(|e| format!("could not reach the host's job cache: {e}"))?;
    if resp.status().is_success() || resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(resp);
    }
    Err(format!("the host's job cache refused {}", refusal(resp).await))
}

/// An upload given up (the guest dropped its writer) must not become the
/// value: its request is dropped before its body could end cleanly, so the
/// host reads a broken body and keeps the old value.
impl Drop for HttpUpload {
    fn drop(&mut self) {
        if let Some(sent) = &self.sent {
            sent.abort();
        }
    }
}

impl CacheUpload for HttpUpload {
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let (Some(chunks), Some(sent)) = (&self.chunks, &mut self.sent) else {
                return Err("the upload to the host's job cache ended early".to_owned());
            };
            if chunks.send(chunk).await.is_ok() {
                return Ok(());
            }
            // The request ended early: its answer says why.
            let answer = sent.await;
            self.sent = None;
            match answer {
                Ok(Err(e)) => Err(e),
                _ => Err("the upload to the host's job cache ended early".to_owned()),
            }
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), String>> {
        let mut upload = *self;
        // Closing the channel ends the body; the answer says whether the
        // value was stored.
        upload.chunks = None;
        let sent = upload.sent.take();
        Box::pin(async move {
            let sent = sent.ok_or("the upload to the host's job cache ended early")?;
            sent.await.map_err(|e| format!("the upload was lost: {e}"))?
        })
    }
}

impl CacheAccess for HttpCache {
    fn get(&self, job: JobId, key: CacheKey) -> BoxFuture<'static, Result<Option<CacheValue>, String>> {
        let req = self.request(reqwest::Method::GET, job, &[("key", key.as_str())]);
        Box::pin(async move {
            let resp = checked(req.send().await).await?;
            if resp.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let size = resp.content_length().unwrap_or(0);
            let chunks = resp.bytes_stream().map_err(|e| format!("reading from the host's job cache: {e}"));
            Ok(Some(CacheValue { size, chunks: chunks.boxed() }))
        })
    }

    fn put(
        &self,
        job: JobId,
        key: CacheKey,
        _max: usize,
    ) -> BoxFuture<'static, Result<Box<dyn CacheUpload>, String>> {
        let (chunks, mut received) = tokio::sync::mpsc::channel::<Bytes>(2);
        let body = futures_util::stream::poll_fn(move |cx| {
            received.poll_recv(cx).map(|c| c.map(Ok::<_, std::io::Error>))
        });
        let req = self.request(reqwest::Method::PUT, job, &[("key", key.as_str())]);
        let req = req.body(reqwest::Body::wrap_stream(body));
        let sent = tokio::spawn(async move { checked(req.send().await).await.map(|_| ()) });
        let upload = HttpUpload { chunks: Some(chunks), sent: Some(sent) };
        Box::pin(async move { Ok(Box::new(upload) as Box<dyn CacheUpload>) })
    }

    fn contains(&self, job: JobId, key: CacheKey) -> BoxFuture<'static, Result<bool, String>> {
        let req = self.request(reqwest::Method::HEAD, job, &[("key", key.as_str())]);
        Box::pin(async move { Ok(checked(req.send().await).await?.status().is_success()) })
    }

    fn delete(&self, job: JobId, key: CacheKey) -> BoxFuture<'static, Result<bool, String>> {
        let req = self.request(reqwest::Method::DELETE, job, &[("key", key.as_str())]);
        Box::pin(async move { Ok(checked(req.send().await).await?.status().is_success()) })
    }

    fn list(
        &self,
        job: JobId,
        prefix: String,
        after: Option<String>,
    ) -> BoxFuture<'static, Result<Vec<String>, String>> {
        let mut query = vec![("prefix", prefix.as_str())];
        if let Some(a) = &after {
            query.push(("after", a.as_str()));
        }
        let req = self.request(reqwest::Method::GET, job, &query);
        Box::pin(async move {
            let resp = checked(req.send().await).await?;
            let listing: CacheListing =
                resp.json().await.map_err(|e| format!("the host's job cache answered a bad listing: {e}"))?;
            Ok(listing.keys.into_iter().map(|e| e.key).collect())
        })
    }
}
