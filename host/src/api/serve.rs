//! Serving the router on a listener, with the bounds a flood meets: a cap on
//! open connections (one past it is closed at once, so the others are
//! served), and a time limit on reading a request's head, which is also how
//! long an idle keep-alive connection stays open. A half-sent request or an
//! idle connection therefore holds a descriptor for at most that long.
//!
//! On shutdown the listener closes, every connection finishes the request
//! it is serving and closes; event streams end at once (`events.rs` watches
//! the same signal).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

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

/// Serves `router` on `listener` until `stop` resolves, then waits for the
/// open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    stop: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
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
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
