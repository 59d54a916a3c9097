//! What a host's API answers with, which changes when it takes the lead of
//! a shared store: the leader's own routes, or, on a standby host (one that
//! waits for the leader's store lock), every request passed on to the
//! leader's address as the store announces it, and the answer streamed
//! back. Clients and runners may so talk to any host of a database.
//!
//! A request that cannot reach the leader (none announced yet, or its
//! address refuses connections, as during a takeover; for a GET or HEAD,
//! any failure to get an answer) waits for the next leader up to
//! [`TAKEOVER_WAIT`] and is sent again if its body is small enough to have
//! been kept; then it is answered 503 `no_leader`.
//!
//! Architecture invariant: a request is passed on at most once. A standby
//! never sends a request to its own address (the store still names a host
//! that has just stepped down until the next leader announces itself), and
//! one that arrives already passed on by another standby is answered
//! `no_leader` instead of being passed again, so two hosts with stale
//! views can never bounce a request between them.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tower::ServiceExt as _;

use super::ApiError;

/// Longest a request waits on a standby for a leader to reach.
pub const TAKEOVER_WAIT: Duration = Duration::from_secs(10);
/// Bodies up to this size are kept so a request can be sent again; larger
/// ones (module uploads) stream through once.
const KEPT_BODY: usize = 4 << 20;
/// Marks a request a standby passed on.
const PASSED_ON: &str = "x-sandflow-passed-on";
/// Marks a standby's `no_leader` answer: the request went no further.
const NOT_LEADING: &str = "x-sandflow-not-leading";

/// What the host answers with now.
#[derive(Clone)]
pub enum Front {
    /// This host leads its store: its own routes.
    Leader(Router),
    /// Another host leads: pass requests on to it.
    Standby(Standby),
}

/// A standby host's view of the leader.
#[derive(Clone)]
pub struct Standby {
    leader: watch::Receiver<Option<String>>,
    /// This host's own address, never a leader to pass requests to.
    own: String,
    http: reqwest::Client,
}

impl Standby {
    /// Passes requests to the address `leader` follows, unless it is `own`
    /// (this host's).
    pub fn new(leader: watch::Receiver<Option<String>>, own: String) -> Self {
        let http =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(2)).build().unwrap_or_default();
        Standby { leader, own, http }
    }

    /// The leader's address now, if it is another host's.
    fn leader_now(&mut self) -> Option<String> {
        self.leader.borrow_and_update().clone().filter(|address| *address != self.own)
    }
}

/// The router that answers as `front` says, at every request.
pub fn front(front: watch::Receiver<Front>) -> Router {
    Router::new().fallback(dispatch).with_state(front)
}

async fn dispatch(State(front): State<watch::Receiver<Front>>, request: Request) -> Response {
    let now = front.borrow().clone();
    match now {
        Front::Leader(router) => router.oneshot(request).await.into_response(),
        Front::Standby(standby) => standby.forward(request, front).await,
    }
}

impl Standby {
    /// Sends `request` to the leader; again, while the leader cannot be
    /// reached and the body was kept, until [`TAKEOVER_WAIT`] has passed.
    /// When this host takes the lead meanwhile (`front`), it answers the
    /// request itself.
    async fn forward(mut self, request: Request, mut front: watch::Receiver<Front>) -> Response {
        let deadline = tokio::time::Instant::now() + TAKEOVER_WAIT;
        let (parts, body) = request.into_parts();
        if parts.headers.contains_key(PASSED_ON) {
            return no_leader();
        }
        let mut body = match Kept::read(&parts.headers, body).await {
            Ok(body) => body,
            Err(refused) => return refused,
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        // A request that changes nothing is sent again whatever became of
        // the last try; one that may have changed something only when it
        // never reached the leader (its connection was refused).
        let safe = parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD;
        loop {
            let now = front.borrow_and_update().clone();
            if let Front::Leader(router) = now {
                let Some(body) = body.into_body() else { return no_leader() };
                return router.oneshot(Request::from_parts(parts, body)).await.into_response();
            }
            let Some(base) = self.leader_now() else {
                if self.wait_for_leader(&mut front, deadline).await {
                    continue;
                }
                return no_leader();
            };
            let Some(payload) = body.next() else { return no_leader() };
            let mut out = self.http.request(parts.method.clone(), format!("{base}{path}"));
            out = out.headers(forwarded(&parts.headers)).header(PASSED_ON, "1").body(payload);
            match out.send().await {
                // The address is a host that no longer leads (it did not
                // pass the request on): wait for the next, as for a refusal.
                Ok(answer) if answer.headers().contains_key(NOT_LEADING) => {
                    if !self.wait_for_leader(&mut front, deadline).await {
                        return no_leader();
                    }
                }
                Ok(answer) => return streamed(answer),
                Err(e) if (e.is_connect() || safe) && self.wait_for_leader(&mut front, deadline).await => {
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, leader = %base, "could not pass a request to the leading host");
                    return no_leader();
                }
            }
        }
    }

    /// Waits until the leader's address changes, this host takes the lead,
    /// or `deadline`; answers whether there is time left.
    async fn wait_for_leader(
        &mut self,
        front: &mut watch::Receiver<Front>,
        deadline: tokio::time::Instant,
    ) -> bool {
        let changed = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                changed = self.leader.changed() => changed.is_ok(),
                changed = front.changed() => changed.is_ok(),
            }
        });
        matches!(changed.await, Ok(true))
    }
}

/// A request body, kept to be sent again or streamed once.
enum Kept {
    Bytes(bytes::Bytes),
    Stream(Option<Body>),
}

impl Kept {
    /// Keeps a body of up to [`KEPT_BODY`] announced bytes (a request
    /// with neither a length nor a transfer encoding has none); a larger
    /// one, or a chunked one, streams through once.
    async fn read(headers: &HeaderMap, body: Body) -> Result<Kept, Response> {
        let length = match headers.get(header::CONTENT_LENGTH) {
            Some(v) => v.to_str().ok().and_then(|v| v.parse::<usize>().ok()),
            None if headers.contains_key(header::TRANSFER_ENCODING) => None,
            None => Some(0),
        };
        if length.is_none_or(|n| n > KEPT_BODY) {
            return Ok(Kept::Stream(Some(body)));
        }
        axum::body::to_bytes(body, KEPT_BODY).await.map(Kept::Bytes).map_err(|_| {
            let message = "the request's body could not be read to its announced length";
            ApiError::bad_request("bad_body", message).into_response()
        })
    }

    /// The body as the host's own routes take it.
    fn into_body(self) -> Option<Body> {
        match self {
            Kept::Bytes(bytes) => Some(Body::from(bytes)),
            Kept::Stream(body) => body,
        }
    }

    /// The body for the next try; `None` when a streamed one is gone.
    fn next(&mut self) -> Option<reqwest::Body> {
        match self {
            Kept::Bytes(bytes) => Some(reqwest::Body::from(bytes.clone())),
            Kept::Stream(body) => body.take().map(|b| reqwest::Body::wrap_stream(b.into_data_stream())),
        }
    }
}

/// Headers that belong to one connection, not to the request.
fn hop_by_hop(name: &HeaderName) -> bool {
    name == header::HOST
        || name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name.as_str() == "keep-alive"
        || name == header::TE
        || name == header::TRAILER
        || name == header::PROXY_AUTHORIZATION
}

fn forwarded(headers: &HeaderMap) -> HeaderMap {
    headers.iter().filter(|(name, _)| !hop_by_hop(name)).map(|(n, v)| (n.clone(), v.clone())).collect()
}

/// The leader's answer, its body streamed as it comes.
fn streamed(answer: reqwest::Response) -> Response {
    let status = answer.status();
    let headers = forwarded(answer.headers());
    let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn no_leader() -> Response {
    let message = "no host leads this store now (a takeover may be under way); try again shortly";
    let mut answer = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_leader", message).into_response();
    answer.headers_mut().insert(NOT_LEADING, axum::http::HeaderValue::from_static("1"));
    answer
}
