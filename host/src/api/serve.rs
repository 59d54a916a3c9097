//! Serving the router on a listener, with the bounds a flood meets: a cap on
//! open connections (one past it is closed at once, so the others are
//! served), and a time limit on reading a request's head, which is also how
//! long an idle keep-alive connection stays open. A half-sent request or an
//! idle connection therefore holds a descriptor for at most that long.
//!
//! On shutdown the listener closes, every connection finishes the request
//! it is serving and closes, and one serving none (idle, or half-way
//! through sending a head) closes at once; event streams end at once
//! (`events.rs` watches the same signal).

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Open connections at most; one more is closed as soon as accepted.
    pub max_connections: usize,
    /// Longest wait for a request's head, on a new connection or between
    /// requests of a kept-alive one; past it the connection is closed.
    pub header_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits { max_connections: 8192, header_timeout: Duration::from_secs(10) }
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
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
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
        let connection =
            Connection { http: http.clone(), router: router.clone(), stopping: stopping.clone() };
        tokio::spawn(async move {
            connection.serve(stream).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    // Every connection holds a permit until it ends.
    let _ = permits.acquire_many(limits.max_connections as u32).await;
}

/// What serving one connection needs.
struct Connection {
    http: hyper::server::conn::http1::Builder,
    router: Router,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream) {
        // Requests of this connection being served (head read, response not
        // yet returned).
        let serving = Arc::new(AtomicUsize::new(0));
        let counted = serving.clone();
        let router = self.router;
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            counted.fetch_add(1, Ordering::AcqRel);
            let counted = counted.clone();
            let response = router.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = response.await;
                counted.fetch_sub(1, Ordering::AcqRel);
                response
            }
        });
        let connection = self.http.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = self.stopping.wait_for(|stop| *stop) => {}
        }
        if serving.load(Ordering::Acquire) == 0 {
            return;
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}
