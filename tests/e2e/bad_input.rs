//! Bad requests get the right 4xx with a clear JSON error, and the host keeps
//! serving.

use serde_json::{Value, json};

use crate::harness::{Host, component};

fn error(body: &Value) -> (&str, &str) {
    (body["error"]["code"].as_str().unwrap_or(""), body["error"]["message"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn bad_uploads_are_refused_with_reasons() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    let (status, body) =
        host.post_raw("/v1/modules", b"definitely not wasm".to_vec(), "application/wasm").await?;
    assert_eq!(status, 422);
    assert_eq!(error(&body).0, "not_a_component");
    assert!(error(&body).1.contains("magic number"), "{body}");

    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let (status, body) = host.post_raw("/v1/modules", core_module, "application/wasm").await?;
    assert_eq!(status, 422);
    assert!(error(&body).1.contains("core WebAssembly module"), "{body}");

    // A component cut in half fails in the compiler (a child process):
    // its message still reaches the user.
    let whole = std::fs::read(component("fanout"))?;
    let half = whole[..whole.len() / 2].to_vec();
    let (status, body) = host.post_raw("/v1/modules", half, "application/wasm").await?;
    assert_eq!((status.as_u16(), error(&body).0), (422, "not_a_component"), "{body}");
    assert!(error(&body).1.contains("out of bounds"), "{body}");

    let bad = std::fs::read(component("bad-import"))?;
    let (status, body) = host.post_raw("/v1/modules", bad, "application/wasm").await?;
    assert_eq!(status, 422);
    assert_eq!(error(&body).0, "incompatible_component");
    assert!(error(&body).1.contains("fixture:bad-import/forbidden"), "{body}");

    let (status, body) = host.post_raw("/v1/modules", Vec::new(), "application/wasm").await?;
    assert_eq!(status, 422, "{body}");
    Ok(())
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_the_host_keeps_serving() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;

    let (status, body) = host.post_raw("/v1/jobs", b"{\"name\": ".to_vec(), "application/json").await?;
    assert_eq!((status.as_u16(), error(&body).0), (400, "invalid_json"));

    let (status, body) = host
        .post("/v1/jobs", &json!({"name": "x", "task": "Noop", "input": {}, "max_retries": "many"}))
        .await?;
    assert_eq!((status.as_u16(), error(&body).0), (422, "invalid_request"));

    let (status, body) =
        host.post("/v1/jobs", &json!({"name": "x", "task": "Missing@v1.0", "input": {}})).await?;
    assert_eq!((status.as_u16(), error(&body).0), (422, "unknown_task_type"));
    assert!(error(&body).1.contains("Missing@v1.0"), "{body}");

    let (status, body) =
        host.post("/v1/jobs", &json!({"name": "x", "task": "Noop@1.0", "input": {}})).await?;
    assert_eq!((status.as_u16(), error(&body).0), (422, "invalid_task_type"));

    let (status, body) = host
        .post("/v1/jobs", &json!({"name": "x", "task": "Noop", "input": {}, "cluster": "no spaces"}))
        .await?;
    assert_eq!((status.as_u16(), error(&body).0), (422, "invalid_cluster"));

    let unknown = "018dd029-58ca-74e5-8b58-b4f99d610f9a";
    let (status, body) = host.get(&format!("/v1/jobs/{unknown}")).await?;
    assert_eq!((status.as_u16(), error(&body).0), (404, "not_found"));
    let (status, _) = host.get(&format!("/v1/jobs/{unknown}/tasks")).await?;
    assert_eq!(status, 404);

    let (status, body) = host.get("/v1/jobs/not-a-uuid").await?;
    assert_eq!((status.as_u16(), error(&body).0), (400, "invalid_id"));
    let (status, body) = host.get("/v1/nothing-here").await?;
    assert_eq!((status.as_u16(), error(&body).0), (404, "not_found"));

    let (status, _) = host.get("/healthz").await?;
    assert_eq!(status, 200);
    let id = host.submit("Noop", json!({})).await?;
    assert_eq!(host.wait(&id, std::time::Duration::from_secs(30)).await?["state"], "completed");
    Ok(())
}
