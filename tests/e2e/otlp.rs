//! `serve --otlp-endpoint`: a job's trace and its tasks' logs arrive at an
//! OTLP/HTTP collector (a small one in this test, on 127.0.0.1) as one tree
//! under the client's `traceparent`; a collector that is down or answers 503
//! does not lose or slow anything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(60);
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// What the collector received.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    logs: Vec<LogRecord>,
    trace_requests: u32,
}

/// An OTLP/HTTP collector on 127.0.0.1 that answers 503 to the first
/// traces request (the exporter must retry) and keeps the rest.
async fn collector() -> anyhow::Result<(String, Arc<Mutex<Received>>)> {
    let received = Arc::new(Mutex::new(Received::default()));
    let (traces, logs) = (received.clone(), received.clone());
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| async move {
                let mut r = traces.lock().unwrap();
                r.trace_requests += 1;
                if r.trace_requests == 1 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
                for rs in request.resource_spans {
                    r.spans.extend(rs.scope_spans.into_iter().flat_map(|s| s.spans));
                }
                StatusCode::OK
            }),
        )
        .route(
            "/v1/logs",
            axum::routing::post(move |body: Bytes| async move {
                let request = ExportLogsServiceRequest::decode(body).expect("an OTLP logs export");
                let mut r = logs.lock().unwrap();
                for rl in request.resource_logs {
                    r.logs.extend(rl.scope_logs.into_iter().flat_map(|s| s.log_records));
                }
                StatusCode::OK
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, received))
}

/// Waits until the collector holds a span with id `span_id`.
async fn wait_for_span(received: &Mutex<Received>, span_id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !received.lock().unwrap().spans.iter().any(|s| hex(&s.span_id) == span_id) {
        anyhow::ensure!(Instant::now() < deadline, "span {span_id} never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<String> {
    let kv = attributes.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        Any::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

/// The job's trace id and span id, from its `traceparent`.
fn job_ids(job: &Value) -> (String, String) {
    let parts: Vec<&str> = job["traceparent"].as_str().unwrap().split('-').collect();
    assert_eq!((parts.len(), parts[0]), (4, "00"), "{job}");
    (parts[1].to_owned(), parts[2].to_owned())
}

#[tokio::test]
async fn a_jobs_spans_and_logs_reach_the_collector_as_one_tree_under_the_clients_span() -> anyhow::Result<()>
{
    let (url, received) = collector().await?;
    let host = Host::start(&["--runners", "2", "--otlp-endpoint", &url]).await?;
    host.upload("probe").await?;
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let body = json!({"name": "tree", "task": "Tree", "input": {"depth": 2, "fanout": 2}, "traceparent": traceparent});
    let (status, job) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, 201, "{job}");
    let (trace_id, job_span) = job_ids(&job);
    assert_eq!(trace_id, CLIENT_TRACE, "the job continues the client's trace");
    let id = job["id"].as_str().unwrap();
    host.wait(id, WAIT).await?;
    wait_for_span(&received, &job_span).await?;

    let tasks = host.tasks(id).await?;
    let r = received.lock().unwrap();
    assert!(r.trace_requests >= 2, "the export refused with 503 was retried");
    let spans: Vec<&Span> = r.spans.iter().filter(|s| hex(&s.trace_id) == CLIENT_TRACE).collect();
    assert_eq!(spans.len(), 1 + tasks.len(), "one span for the job and one per attempt: {spans:#?}");
    let job_span_msg = spans.iter().find(|s| hex(&s.span_id) == job_span).unwrap();
    assert_eq!(hex(&job_span_msg.parent_span_id), CLIENT_SPAN, "the job's span is the client's child");
    assert_eq!(attribute(&job_span_msg.attributes, "sandflow.job.state").as_deref(), Some("completed"));

    // Each attempt's span is the child of its parent task's attempt span;
    // the root's is the job span's child.
    let by_task: HashMap<String, &Span> =
        spans.iter().filter_map(|s| attribute(&s.attributes, "sandflow.task.id").map(|t| (t, *s))).collect();
    assert_eq!(by_task.len(), tasks.len());
    for task in &tasks {
        let span = by_task[task["id"].as_str().unwrap()];
        assert!(span.name.starts_with("Tree@v"), "named by the task type: {}", span.name);
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano && span.start_time_unix_nano > 0);
        let expected_parent = match task["parent"].as_str() {
            Some(parent) => hex(&by_task[parent].span_id),
            None => job_span.clone(),
        };
        assert_eq!(hex(&span.parent_span_id), expected_parent, "parent of {task}");
    }
    Ok(())
}

#[tokio::test]
async fn guest_spans_and_logs_are_exported_inside_their_attempt() -> anyhow::Result<()> {
    let (url, received) = collector().await?;
    let host = Host::start(&["--runners", "1", "--otlp-endpoint", &url]).await?;
    host.upload("probe").await?;
    let (status, job) = host
        .send(
            reqwest::Client::new()
                .post(format!("{}/v1/jobs", host.base))
                .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
                .json(&json!({"name": "traced", "task": "Traced", "input": {"title": "Dune"}})),
        )
        .await?;
    assert_eq!(status, 201, "{job}");
    let (trace_id, job_span) = job_ids(&job);
    assert_eq!(trace_id, CLIENT_TRACE, "the traceparent header is continued");
    let id = job["id"].as_str().unwrap();
    host.wait(id, WAIT).await?;
    wait_for_span(&received, &job_span).await?;
    let logs = host.logs(id).await?;
    let (_, trace) = host.get(&format!("/v1/jobs/{id}/spans")).await?;

    let r = received.lock().unwrap();
    let attempt = r.spans.iter().find(|s| hex(&s.parent_span_id) == job_span).expect("the attempt's span");
    let fetch = r.spans.iter().find(|s| s.name == "fetch").expect("the guest's span");
    assert_eq!(fetch.parent_span_id, attempt.span_id, "the guest's span is inside its attempt");
    assert_eq!(attribute(&fetch.attributes, "title").as_deref(), Some("Dune"));
    assert_eq!(trace["trace_id"], CLIENT_TRACE, "the spans API names the exported trace");
    let listed = trace["spans"].as_array().unwrap().iter().find(|s| s["name"] == "fetch").unwrap();
    assert_eq!(listed["span_id"], hex(&fetch.span_id), "and the exported span ids");
    assert_eq!(trace["job"]["span_id"], job_span);
    let exported: Vec<&LogRecord> = r.logs.iter().filter(|l| hex(&l.trace_id) == CLIENT_TRACE).collect();
    assert_eq!(exported.len(), logs.as_array().unwrap().len(), "every log line is exported");
    for (line, record) in logs.as_array().unwrap().iter().zip(&exported) {
        assert_eq!(record.span_id, attempt.span_id);
        let Some(Any::StringValue(body)) = record.body.as_ref().and_then(|b| b.value.as_ref()) else {
            panic!("a string body: {record:?}")
        };
        assert_eq!(body, line["message"].as_str().unwrap());
        assert_eq!(record.severity_text, line["level"].as_str().unwrap().to_uppercase());
    }
    Ok(())
}

#[tokio::test]
async fn every_attempt_is_exported_and_a_failed_one_carries_its_error() -> anyhow::Result<()> {
    let (url, received) = collector().await?;
    let host = Host::start(&["--runners", "1", "--otlp-endpoint", &url]).await?;
    host.upload("probe").await?;
    let body = json!({"name": "flaky", "task": "Flaky", "input": {"fail_first": 1}, "max_retries": 1});
    let (status, job) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, 201, "{job}");
    let (trace_id, job_span) = job_ids(&job);
    host.wait(job["id"].as_str().unwrap(), WAIT).await?;
    wait_for_span(&received, &job_span).await?;

    let r = received.lock().unwrap();
    let mut attempts: Vec<&Span> = r
        .spans
        .iter()
        .filter(|s| hex(&s.trace_id) == trace_id && hex(&s.parent_span_id) == job_span)
        .collect();
    attempts.sort_by_key(|s| attribute(&s.attributes, "sandflow.task.attempt"));
    assert_eq!(attempts.len(), 2, "both attempts: {attempts:#?}");
    let failed = attempts[0].status.as_ref().expect("the first attempt failed");
    assert_eq!(failed.code, 2, "status code Error");
    assert_eq!(failed.message, "flaky failure on attempt 1");
    assert!(attempts[1].status.is_none(), "the second attempt succeeded");
    assert_ne!(attempts[0].span_id, attempts[1].span_id);
    Ok(())
}

#[tokio::test]
async fn traceparents_are_checked_and_a_job_without_one_starts_its_own_trace() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "0"]).await?;
    host.upload("probe").await?;
    let bad = json!({"name": "n", "task": "Noop", "input": {}, "traceparent": "00-abc-def-01"});
    let (status, body) = host.post("/v1/jobs", &bad).await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_traceparent");
    assert!(body["error"]["message"].as_str().unwrap().contains("00-abc-def-01"), "{body}");

    // An invalid header is ignored, as the W3C specification asks.
    let (status, job) = host
        .send(
            reqwest::Client::new()
                .post(format!("{}/v1/jobs", host.base))
                .header("traceparent", "garbage")
                .json(&json!({"name": "n", "task": "Noop", "input": {}})),
        )
        .await?;
    assert_eq!(status, 201, "{job}");
    let (trace_id, span_id) = job_ids(&job);
    assert_eq!(trace_id, job["id"].as_str().unwrap().replace('-', ""), "its own trace, named by the job id");
    assert_eq!(span_id.len(), 16);
    assert!(job["traceparent"].as_str().unwrap().ends_with("-01"), "sampled");
    Ok(())
}

#[tokio::test]
async fn a_collector_that_is_down_does_not_hold_jobs_back() -> anyhow::Result<()> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let url = format!("http://{closed}");
    let host = Host::start(&["--runners", "2", "--otlp-endpoint", &url]).await?;
    host.upload("probe").await?;
    let id = host.submit("Tree", json!({"depth": 3, "fanout": 3})).await?;
    let job = host.wait(&id, WAIT).await?;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["task_counts"]["computed"], 40);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(["serve", "--listen", "127.0.0.1:0", "--otlp-endpoint", "ftp://127.0.0.1/x", "--data-dir"])
        .arg(tempfile::tempdir()?.path())
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad OTLP endpoint `ftp://127.0.0.1/x`: expected an http:// or https:// URL"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn a_secret_a_task_read_is_not_exported() -> anyhow::Result<()> {
    let (url, received) = collector().await?;
    let host = Host::start(&["--runners", "1", "--otlp-endpoint", &url]).await?;
    let value = "exported-never-5521";
    let set = reqwest::Client::new().put(format!("{}/v1/secrets/API_KEY", host.base)).body(value);
    assert_eq!(host.send(set).await?.0, 201);
    let bytes = std::fs::read(crate::harness::component("cache"))?;
    let (status, module) = host.post_raw("/v1/modules?secrets=API_KEY", bytes, "application/wasm").await?;
    assert_eq!(status, 201, "{module}");
    for fail in [false, true] {
        let input = json!({"name": "API_KEY", "other": "NONE", "fail": fail});
        let (status, job) =
            host.post("/v1/jobs", &json!({"name": "secret", "task": "UseSecret", "input": input})).await?;
        assert_eq!(status, 201, "{job}");
        host.wait(job["id"].as_str().unwrap(), WAIT).await?;
        wait_for_span(&received, &job_ids(&job).1).await?;
    }
    let r = received.lock().unwrap();
    let exported = format!("{:?} {:?}", r.spans, r.logs);
    assert!(!exported.contains(value), "the collector received the secret");
    for redacted in
        ["span [redacted API_KEY]", "the key is [redacted API_KEY]", "failed holding [redacted API_KEY]"]
    {
        assert!(exported.contains(redacted), "{redacted:?} was not exported");
    }
    Ok(())
}
