//! OTLP over HTTP with protobuf bodies: `POST {endpoint}/v1/traces` and
//! `/v1/logs`, retried with backoff when the collector is unreachable or
//! asks to retry (429, 502, 503, 504), as the OTLP specification says.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::Error;

/// Tries per export before it is dropped.
const TRIES: u32 = 4;
/// The first backoff; it doubles per try.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Posts exports to one collector.
pub struct Collector {
    client: reqwest::Client,
    traces: reqwest::Url,
    logs: reqwest::Url,
}

impl Collector {
    /// A collector at `endpoint` (`http://host:4318`, with or without a
    /// trailing slash); signals go to its `/v1/traces` and `/v1/logs`.
    pub fn new(endpoint: &str) -> Result<Self, Error> {
        let bad = |reason: String| Error::Endpoint { endpoint: endpoint.to_owned(), reason };
        let base = reqwest::Url::parse(endpoint).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad("expected an http:// or https:// URL".into()));
        }
        let join = |path: &str| {
            let mut url = base.clone();
            url.set_path(&format!("{}/{path}", base.path().trim_end_matches('/')));
            url
        };
        let client =
            reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().map_err(|e| bad(e.to_string()))?;
        Ok(Collector { client, traces: join("v1/traces"), logs: join("v1/logs") })
    }

    /// Exports spans.
    pub async fn traces(&self, request: &ExportTraceServiceRequest) -> Result<(), Error> {
        self.post(&self.traces, request.encode_to_vec()).await
    }

    /// Exports log records.
    pub async fn logs(&self, request: &ExportLogsServiceRequest) -> Result<(), Error> {
        self.post(&self.logs, request.encode_to_vec()).await
    }

    async fn post(&self, url: &reqwest::Url, body: Vec<u8>) -> Result<(), Error> {
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for _ in 0..TRIES {
            let sent = self
                .client
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if !matches!(r.status().as_u16(), 429 | 502 | 503 | 504) => {
                    return Err(Error::Refused { url: url.to_string(), status: r.status().as_u16() });
                }
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        Err(Error::Unreachable { url: url.to_string(), reason: last })
    }
}
