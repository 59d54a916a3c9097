//! The API contract: every route is in the OpenAPI document, and every
//! operation in it, fed hostile requests, answers a 4xx JSON error (or a
//! success), never a 5xx or a dropped connection.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::Host;

/// Every route the host serves; the document must list exactly these.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/v1/openapi.json"),
    ("get", "/"),
    ("get", "/ui/{file}"),
    ("get", "/v1/stats"),
    ("get", "/v1/task-types"),
    ("get", "/v1/modules"),
    ("post", "/v1/modules"),
    ("get", "/v1/modules/uploads/{id}"),
    ("get", "/v1/jobs"),
    ("post", "/v1/jobs"),
    ("get", "/v1/jobs/{id}"),
    ("delete", "/v1/jobs/{id}"),
    ("get", "/v1/jobs/{id}/tasks"),
    ("get", "/v1/jobs/{id}/tasks/{task}"),
    ("get", "/v1/jobs/{id}/tasks/{task}/output"),
    ("get", "/v1/jobs/{id}/output"),
    ("get", "/v1/runners/outputs/{job}/{task}"),
    ("get", "/v1/runners/artifacts/{digest}"),
    ("get", "/v1/jobs/{id}/cache"),
    ("get", "/v1/jobs/{id}/cache/value"),
    ("get", "/v1/runners/cache/{job}"),
    ("get", "/v1/runners/cache/{job}/value"),
    ("put", "/v1/runners/cache/{job}/value"),
    ("delete", "/v1/runners/cache/{job}/value"),
    ("get", "/v1/secrets"),
    ("put", "/v1/secrets/{name}"),
    ("delete", "/v1/secrets/{name}"),
    ("get", "/v1/runners/secrets/{name}"),
    ("get", "/v1/jobs/{id}/logs"),
    ("get", "/v1/jobs/{id}/diagram.svg"),
    ("get", "/v1/jobs/{id}/events"),
    ("get", "/v1/jobs/{id}/spans"),
    ("post", "/v1/jobs/{id}/cancel"),
    ("post", "/v1/jobs/{id}/retry"),
    ("post", "/v1/jobs/{id}/clone"),
    ("post", "/v1/runners/claim"),
    ("post", "/v1/runners/extend"),
    ("post", "/v1/runners/report"),
    ("post", "/v1/runners/complete"),
    ("post", "/v1/runners/release"),
    ("get", "/v1/modules/{digest}"),
    ("get", "/v1/runners/config"),
    ("post", "/v1/runners/interrupts"),
    ("get", "/v1/runners"),
    ("get", "/v1/clusters"),
    ("post", "/v1/clusters"),
    ("get", "/v1/clusters/{slug}"),
    ("patch", "/v1/clusters/{slug}"),
    ("delete", "/v1/clusters/{slug}"),
    ("get", "/v1/automations"),
    ("post", "/v1/automations"),
    ("get", "/v1/automations/{id}"),
    ("patch", "/v1/automations/{id}"),
    ("delete", "/v1/automations/{id}"),
];

/// The operations of the document: (method, path template).
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(|m| (m.clone(), path.clone())))
        .collect()
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    let (status, doc) = host.get("/v1/openapi.json").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(operations(&doc), expected);
    for (method, path) in ROUTES {
        let op = &doc["paths"][path][method];
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
        assert!(op.get("security").is_none(), "{method} {path} needs a token on a host without tokens");
    }
    let mut ids = BTreeSet::new();
    for (method, path) in ROUTES {
        let id = doc["paths"][path][method]["operationId"].as_str().unwrap_or_default().to_owned();
        assert!(ids.insert(id.clone()), "operationId {id:?} of {method} {path} repeats");
    }
    assert!(doc["components"].get("securitySchemes").is_none());
    Ok(())
}

#[tokio::test]
async fn with_tokens_the_document_names_each_routes_role() -> anyhow::Result<()> {
    let (host, _dir) = crate::auth::host_with_tokens().await?;
    let (status, doc) = host.get("/v1/openapi.json").await?;
    assert_eq!(status, StatusCode::OK, "the document needs no token");
    for (method, path) in ROUTES {
        let role =
            doc["paths"][path][method]["security"][0].as_object().and_then(|s| s.keys().next().cloned());
        let expected = match *path {
            "/healthz" | "/v1/openapi.json" | "/" | "/ui/{file}" => None,
            p if p.starts_with("/v1/runners/") && *p != *"/v1/runners" => Some("runner"),
            "/v1/modules/{digest}" => Some("runner"),
            _ => Some("admin"),
        };
        assert_eq!(role.as_deref(), expected, "{method} {path}");
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        (schemes["admin"]["scheme"].as_str(), schemes["runner"]["scheme"].as_str()),
        (Some("bearer"), Some("bearer"))
    );
    Ok(())
}

/// Path parameter values a hostile client might send.
const IDS: &[&str] = &[
    "01a22343-295e-76ef-bf8f-9d45e4fb3517",
    "not-a-uuid",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "00000000-0000-0000-0000-000000000000",
    "😀",
    // Not UTF-8 once decoded: the path extractor's own rejection.
    "%FF",
];

/// Bodies a hostile client might send, with their content type.
fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let json = "application/json";
    vec![
        (json, Vec::new()),
        (json, b"{".to_vec()),
        (json, b"null".to_vec()),
        (json, b"[1,2,3]".to_vec()),
        (json, b"\"text\"".to_vec()),
        (json, br#"{"unexpected": true}"#.to_vec()),
        (json, br#"{"name": 5, "task": [], "input": "x", "cluster": {}, "job": 1, "attempt": -1}"#.to_vec()),
        (
            json,
            br#"{"name": "x", "task": "Noop", "input": {}, "max_retries": 99999999999999999999}"#.to_vec(),
        ),
        (json, br#"{"cluster": "../../x", "wait_ms": -5}"#.to_vec()),
        (json, br#"{"job": "not-a-uuid", "task": "x", "attempt": 1}"#.to_vec()),
        (json, vec![0xff, 0xfe, 0x00, 0x7b]),
        ("text/plain", b"hello".to_vec()),
        ("application/wasm", b"\0asm\x01\0\0\0".to_vec()),
    ]
}

/// Query strings a hostile client might send.
const QUERIES: &[&str] = &[
    "",
    "?unknown=1",
    "?limit=-1&state=bogus",
    "?from=yesterday&to=%ff",
    "?force=maybe",
    "?level=loud&task=x",
    "?timeout=forever&memory_mib=-3",
    "?cursor=%00%00",
];

fn assert_answer(what: &str, status: StatusCode, body: &Value) {
    assert!(!status.is_server_error(), "{what}: {status} {body}");
    if status.is_client_error() {
        let error = &body["error"];
        assert!(
            error["code"].is_string() && error["message"].is_string(),
            "{what}: {status} is not a JSON error: {body}"
        );
    }
}

#[tokio::test]
async fn hostile_requests_to_every_operation_answer_json_4xx() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    let (_, doc) = host.get("/v1/openapi.json").await?;
    let client = reqwest::Client::new();
    let mut requests = 0;
    for (method, template) in operations(&doc) {
        let method: Method = method.to_uppercase().parse()?;
        let templated =
            ["{id}", "{digest}", "{slug}", "{job}", "{task}"].iter().any(|t| template.contains(t));
        for id in IDS.iter().take(if templated { IDS.len() } else { 1 }) {
            let path = ["{id}", "{digest}", "{slug}", "{job}", "{task}"]
                .iter()
                .fold(template.clone(), |path, t| path.replace(t, id));
            for query in QUERIES {
                let url = format!("{}{path}{query}", host.base);
                let bodies =
                    if method == Method::POST { bodies() } else { vec![("application/json", Vec::new())] };
                for (content_type, body) in bodies {
                    let what = format!("{method} {path}{query} ({content_type}, {} bytes)", body.len());
                    let req =
                        client.request(method.clone(), &url).header("content-type", content_type).body(body);
                    let (status, answer) = host.send(req).await?;
                    assert_answer(&what, status, &answer);
                    requests += 1;
                }
            }
        }
    }
    assert!(requests > 1000, "{requests} requests");
    // Unknown routes and methods are JSON errors too.
    for (method, path) in
        [(Method::PATCH, "/v1/jobs"), (Method::GET, "/v1/nothing"), (Method::PUT, "/healthz")]
    {
        let (status, body) =
            host.send(client.request(method.clone(), format!("{}{path}", host.base))).await?;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status}"
        );
        assert_answer(&format!("{method} {path}"), status, &body);
    }
    for (path, length) in [("/v1/jobs", 5 << 20), ("/v1/runners/report", 5 << 20), ("/v1/modules", 65 << 20)]
    {
        let (status, body) = announce_body(&host, path, length).await?;
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["error"]["code"], "payload_too_large", "{path}");
    }
    let (status, _) = host.get("/healthz").await?;
    assert_eq!(status, StatusCode::OK, "the host is still up");
    Ok(())
}

/// Announces a body of `length` bytes without sending it: a host must refuse
/// one over the route's limit from the header alone. Answers the status and
/// JSON body of its answer.
async fn announce_body(host: &Host, path: &str, length: usize) -> anyhow::Result<(u16, Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = host.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer));
    read.await??;
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).unwrap_or("0").parse()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// Sends `raw` on a fresh connection; the whole answer (the host closes).
async fn raw_exchange(host: &Host, raw: &[u8]) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = host.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(raw).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// The URI (3 MB) is more than the host reads before answering 431: the
/// client is still sending when the answer comes, and must get it whole
/// (the host closes lingering, not with a reset).
#[tokio::test]
async fn requests_hyper_cannot_read_get_json_errors() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    let long_uri = format!("GET /v1/jobs?{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "a".repeat(3_000_000));
    let cases: [(&[u8], &str, &str); 3] = [
        (long_uri.as_bytes(), "431", "headers_too_large"),
        (
            b"GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
            "400",
            "malformed_request",
        ),
        (b"NOT HTTP AT ALL\r\n\r\n", "400", "malformed_request"),
    ];
    for (raw, status, code) in cases {
        let answer = raw_exchange(&host, raw).await?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: Value = serde_json::from_str(body)?;
        assert_eq!(body["error"]["code"], code, "{answer}");
    }
    let (status, _) = host.get("/healthz").await?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn a_module_sent_without_a_length_uploads_as_one_with_one() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "1"]).await?;
    let bytes = std::fs::read(crate::harness::component("probe"))?;
    // Chunked transfer: no `Content-Length` to size the buffer by.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let req = reqwest::Client::new()
        .post(format!("{}/v1/modules", host.base))
        .header("content-type", "application/wasm")
        .body(body);
    let (status, module) = host.send(req).await?;
    assert_eq!(status, StatusCode::CREATED, "{module}");
    assert_eq!(module["size"], bytes.len(), "{module}");
    let job = host.submit("Noop", serde_json::json!({})).await?;
    assert_eq!(host.wait(&job, std::time::Duration::from_secs(60)).await?["state"], "completed");
    Ok(())
}
