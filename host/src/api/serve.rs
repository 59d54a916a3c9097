//! Serving the router on a listener, with the bounds a flood meets: a cap on
//! open connections (one past it is closed at once, so the others are
//! served), and time limits on a connection that serves no request: the
//! head timeout for one that has not sent a whole request yet (a new one, a
//! slow-loris), and [`KEEP_ALIVE`] (120 s, past clients' own pool timeouts,
//! so no request races the host's close) for one idle after a response;
//! past it the connection is closed.
//!
//! The time limit is kept by one reaper for all connections, which looks
//! every quarter of it (at least every second): a request costs a few atomic
//! updates, not a timer (hyper's own head timeout re-arms a timer for every
//! request, which cost 12 % of the submission latency at 64 clients).
//!
//! On shutdown the listener closes, every connection finishes the request
//! it is serving and closes, and one serving none closes at once; event
//! streams end at once (`events.rs` watches the same signal).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tower::ServiceExt as _;

use super::framing::JsonFraming;
use crate::model::now_ms;

/// How connections are bounded (defaults: `serve --max-connections`,
/// `--header-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Open connections at most; one more is closed as soon as accepted.
    pub max_connections: usize,
    /// Longest a connection may serve no request (waiting for or reading a
    /// request's head) before it is closed.
    pub header_timeout: Duration,
    /// Longest a runner's long-poll (claim, interrupts) waits, whatever it
    /// asks for.
    pub poll_limit: Duration,
}

/// How long a connection that has served a request may then wait for its
/// next one: longer than clients keep idle connections pooled (90 s for
/// common HTTP libraries), so the client, not the host, closes an idle
/// connection, and a request never races the host's close.
const KEEP_ALIVE: Duration = Duration::from_secs(120);

/// What the reaper knows of one connection.
struct Watched {
    /// Whether it has served a request (then [`KEEP_ALIVE`] applies).
    served: AtomicBool,
    /// Requests being served (head read, response not yet returned).
    serving: AtomicUsize,
    /// When it last started to serve none (Unix ms).
    idle_since_ms: AtomicU64,
    /// Wakes the connection to close it.
    close: Notify,
}

impl Watched {
    fn new() -> Arc<Watched> {
        Arc::new(Watched {
            served: AtomicBool::new(false),
            serving: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(now_ms()),
            close: Notify::new(),
        })
    }

    fn started(&self) {
        self.serving.fetch_add(1, Ordering::AcqRel);
    }

    fn finished(&self) {
        self.served.store(true, Ordering::Release);
        self.idle_since_ms.store(now_ms(), Ordering::Release);
        self.serving.fetch_sub(1, Ordering::AcqRel);
    }

    fn is_idle(&self) -> bool {
        self.serving.load(Ordering::Acquire) == 0
    }
}

/// Serves `router` on `listener` until `stop` resolves, then lets every
/// connection finish the request it is serving; a connection that is not
/// serving one (idle, or still sending a head) is closed at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    stop: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping_tx, stopping) = watch::channel(false);
    let watched: Arc<Mutex<Vec<Weak<Watched>>>> = Arc::default();
    let reaper = tokio::spawn(reap(watched.clone(), limits.header_timeout));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, most likely: let some close.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let watch = Watched::new();
        watched.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Arc::downgrade(&watch));
        let connection =
            Connection { http: http.clone(), router: router.clone(), stopping: stopping.clone(), watch };
        tokio::spawn(async move {
            connection.serve(stream).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    // Every connection holds a permit until it ends.
    let _ = permits.acquire_many(limits.max_connections as u32).await;
    reaper.abort();
}

/// Closes connections that served no request for `timeout`.
async fn reap(watched: Arc<Mutex<Vec<Weak<Watched>>>>, timeout: Duration) {
    let (timeout_ms, keep_alive_ms) =
        (timeout.as_millis() as u64, KEEP_ALIVE.max(timeout).as_millis() as u64);
    let mut tick =
        tokio::time::interval((timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)));
    loop {
        tick.tick().await;
        let now = now_ms();
        let mut all = watched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.retain(|w| match w.upgrade() {
            Some(c) => {
                let limit = if c.served.load(Ordering::Acquire) { keep_alive_ms } else { timeout_ms };
                if c.is_idle() && now.saturating_sub(c.idle_since_ms.load(Ordering::Acquire)) >= limit {
                    c.close.notify_one();
                }
                true
            }
            None => false,
        });
    }
}

/// A response body that tells its connection's [`Watched`] when it is
/// done with (sent whole, or dropped).
struct Tracked {
    body: axum::body::Body,
    watch: Arc<Watched>,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.watch.finished();
    }
}

/// What serving one connection needs.
struct Connection {
    http: hyper::server::conn::http1::Builder,
    router: Router,
    stopping: watch::Receiver<bool>,
    watch: Arc<Watched>,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream) {
        let (router, counted) = (self.router, self.watch.clone());
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            counted.started();
            let counted = counted.clone();
            let response = router.clone().oneshot(request.map(axum::body::Body::new));
            // The request is served once its body is sent (or dropped): an
            // event stream or a module download counts until it ends.
            async move { response.await.map(|r| r.map(|body| Tracked { body, watch: counted })) }
        });
        let connection = self.http.serve_connection(TokioIo::new(JsonFraming::new(stream)), service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            () = self.watch.close.notified() => return,
            _ = self.stopping.wait_for(|stop| *stop) => {}
        }
        if self.watch.is_idle() {
            return;
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}
