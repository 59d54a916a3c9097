//! Outbound HTTP from a task (feature `http`), over `wasi:http`: a blocking
//! GET that reads the whole response.
//!
//! The host denies every destination that is not on its allow-list or on the
//! task's module's (`POST /v1/modules?allow_http=...`); a denied request is an
//! [`Error`] naming the destination, which the task may handle. Redirects are
//! returned as responses, never followed.

use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

use crate::Error;

/// Most bytes of a response body read; past it the request fails.
pub const MAX_BODY: usize = 64 << 20;

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::from(format!("response is not the expected JSON: {e}")))
    }
}

/// Sends `GET url` (`http://` or `https://`) and reads the response.
pub fn get(url: &str) -> Result<Response, Error> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        _ => return Err(Error::from(format!("{url:?} is not an http:// or https:// URL"))),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    let request = OutgoingRequest::new(Fields::new());
    let invalid = |_| Error::from(format!("{url:?} is not a valid URL"));
    request.set_scheme(Some(&scheme)).map_err(invalid)?;
    request.set_authority(Some(authority)).map_err(invalid)?;
    request.set_path_with_query(Some(&path)).map_err(invalid)?;
    let failed = |e: ErrorCode| describe(authority, e);
    let pending = outgoing_handler::handle(request, None).map_err(failed)?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(failed(e)),
        _ => return Err(Error::from(format!("the request to {authority} ended without a response"))),
    };
    let status = response.status();
    let body =
        read_body(&response).map_err(|e| Error::from(format!("reading the response of {authority}: {e}")))?;
    Ok(Response { status, body })
}

fn read_body(response: &wasi::http::types::IncomingResponse) -> Result<Vec<u8>, String> {
    let incoming = response.consume().map_err(|()| "the body was already taken".to_owned())?;
    let stream = incoming.stream().map_err(|()| "the body has no stream".to_owned())?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 << 10) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
        if body.len() > MAX_BODY {
            return Err(format!("the body is over {MAX_BODY} bytes"));
        }
    }
    drop(stream);
    drop(incoming);
    Ok(body)
}

fn describe(authority: &str, e: ErrorCode) -> Error {
    match e {
        ErrorCode::HttpRequestDenied => {
            Error::from(format!("HTTP request to {authority} denied: it is not on the task's allow-list"))
        }
        ErrorCode::DestinationIpProhibited => Error::from(format!(
            "HTTP request to {authority} denied: the name resolves to an address of this machine or a private network, which only an allow-list entry naming the address reaches"
        )),
        other => Error::from(format!("HTTP request to {authority} failed: {other:?}")),
    }
}
