//! An attempt's captured stdout or stderr: the first bytes up to a cap are
//! kept; a write past the cap closes the stream for the guest and is
//! remembered, so the attempt's failure can name the capture limit instead
//! of the guest's own complaint about a broken pipe.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

#[derive(Default)]
struct Inner {
    kept: BytesMut,
    cap: usize,
    overflowed: bool,
}

/// A capped capture; clones share it.
#[derive(Clone)]
pub struct Capture(Arc<Mutex<Inner>>);

impl Capture {
    /// A capture keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Capture(Arc::new(Mutex::new(Inner { cap, ..Inner::default() })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What was kept.
    pub fn contents(&self) -> Bytes {
        self.lock().kept.clone().freeze()
    }

    /// Whether the guest tried to write past the cap.
    pub fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// Keeps what fits of `bytes`; answers how many were kept, or `None`
    /// (and remembers it) when none fit.
    fn keep(&self, bytes: &[u8]) -> Option<usize> {
        let mut inner = self.lock();
        let room = inner.cap - inner.kept.len();
        if bytes.len() > room {
            inner.overflowed = true;
        }
        let n = bytes.len().min(room);
        inner.kept.extend_from_slice(&bytes[..n]);
        (n > 0 || bytes.is_empty()).then_some(n)
    }
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        match self.keep(&bytes) {
            Some(n) if n == bytes.len() => Ok(()),
            _ => Err(StreamError::Closed),
        }
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        let mut inner = self.lock();
        match inner.cap - inner.kept.len() {
            0 => {
                inner.overflowed = true;
                Err(StreamError::Closed)
            }
            room => Ok(room),
        }
    }
}

#[async_trait::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Capture {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.keep(buf) {
            Some(n) => Poll::Ready(Ok(n)),
            None => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_past_the_cap_keeps_the_first_bytes_and_is_remembered() {
        let mut c = Capture::new(4);
        assert!(c.write(Bytes::from_static(b"ab")).is_ok());
        assert!(!c.overflowed());
        assert!(matches!(c.write(Bytes::from_static(b"cdef")), Err(StreamError::Closed)));
        assert!(c.overflowed());
        assert_eq!(c.contents().as_ref(), b"abcd");
        assert!(matches!(c.check_write(), Err(StreamError::Closed)));
    }
}
