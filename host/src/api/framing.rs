//! JSON bodies for the answers hyper writes itself. A request hyper cannot
//! read (malformed framing, a head over its buffer, an unsupported version)
//! never reaches the router: hyper answers 400, 414, 431 or 505 with an empty
//! body and closes. [`JsonFraming`] wraps a connection and, when it sees such
//! an answer go out, writes it with the API's JSON error body instead, so
//! every error the host sends is `{"error": {"code", "message"}}`.
//!
//! Such a client is often still sending (the rest of a 500 KB URI): closing
//! with its bytes unread would make the kernel answer with a reset, which
//! can fail the client's write before it reads the answer. So after one of
//! these answers the connection closes lingering: it sends its FIN, then
//! reads and drops what the client still sends, up to [`LINGER_BYTES`] and
//! [`LINGER_TIME`], and only then closes.
//!
//! Architecture invariant: the router's own error answers always have a body,
//! so a 4xx or 5xx head with `content-length: 0` and nothing after it is
//! always one of hyper's.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Most bytes a lingering close reads and drops.
const LINGER_BYTES: usize = 4 << 20;

/// Longest a lingering close waits for the client to stop sending.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// A connection whose hyper-made error answers get JSON bodies.
pub struct JsonFraming<S> {
    inner: S,
    /// A rewritten answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
    /// Set once an answer was rewritten: the close lingers.
    linger: Option<Linger>,
}

/// Where a lingering close is.
struct Linger {
    /// Whether the FIN went out.
    write_closed: bool,
    /// Bytes it may still read and drop.
    left: usize,
    deadline: Pin<Box<Sleep>>,
}

impl<S> JsonFraming<S> {
    pub fn new(inner: S) -> Self {
        JsonFraming { inner, pending: None, linger: None }
    }
}

/// The status of `head` if it is a whole 4xx/5xx answer with an empty body.
fn bodiless_error(head: &[u8]) -> Option<u16> {
    let rest = head.strip_prefix(b"HTTP/1.1 ")?;
    let code = std::str::from_utf8(rest.get(..3)?).ok()?.parse::<u16>().ok()?;
    let empty = head.ends_with(b"\r\n\r\n") && head.windows(20).any(|w| w == b"\r\ncontent-length: 0\r");
    ((400..600).contains(&code) && empty).then_some(code)
}

/// The answer hyper meant, with a JSON error body.
fn with_json_body(code: u16) -> Vec<u8> {
    let (error, message) = match code {
        400 => ("malformed_request", "the request could not be read as HTTP/1.1"),
        414 => ("uri_too_long", "the request's URI is too long"),
        431 => ("headers_too_large", "the request's head is too large"),
        505 => ("http_version_not_supported", "only HTTP/1.1 (and 1.0) is served"),
        _ => ("malformed_request", "the request could not be served"),
    };
    let body = serde_json::json!({ "error": { "code": error, "message": message } }).to_string();
    let reason = axum::http::StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl<S: AsyncWrite + Unpin> JsonFraming<S> {
    /// Writes out the rewritten answer, if any.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `head` (all of it) in place of the write when it is one of
    /// hyper's bodiless errors.
    fn replace(&mut self, cx: &mut Context<'_>, head: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let code = bodiless_error(head)?;
        self.pending = Some((with_json_body(code), 0));
        let deadline = Box::pin(tokio::time::sleep(LINGER_TIME));
        self.linger = Some(Linger { write_closed: false, left: LINGER_BYTES, deadline });
        Some(match self.poll_pending(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Written now or by the flush that follows.
            _ => Poll::Ready(Ok(head.len())),
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> JsonFraming<S> {
    /// Sends the FIN, then drops what the client still sends until it
    /// stops, or the byte or time bound is reached.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(linger) = &mut self.linger else { return Poll::Ready(Ok(())) };
        if !linger.write_closed {
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            linger.write_closed = true;
        }
        let mut scratch = [0u8; 16 * 1024];
        while linger.left > 0 {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    linger.left = linger.left.saturating_sub(buf.filled().len());
                }
                Poll::Ready(_) => break,
                Poll::Pending => {
                    ready!(linger.deadline.as_mut().poll(cx));
                    break;
                }
            }
        }
        self.linger = None;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonFraming<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for JsonFraming<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(done) = self.replace(cx, buf) {
            return done;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        let mut parts = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (parts.next(), parts.next())
            && let Some(done) = self.replace(cx, only)
        {
            return done;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        if self.linger.is_some() {
            return self.poll_linger(cx);
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_error_heads_are_hypers() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 04:41:46 GMT\r\n\r\n";
        assert_eq!(bodiless_error(hyper), Some(431));
        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 56\r\n\r\n";
        assert_eq!(bodiless_error(ours), None);
        assert_eq!(bodiless_error(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"), None);
        let answer = String::from_utf8(with_json_body(431)).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "headers_too_large");
    }
}
