//! `POST /v1/jobs/{id}/clone` and `sandflow job clone`: a new job with an
//! existing job's root task, its input fields overridden, under a new name.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(30);

async fn root(host: &Host, id: &str) -> anyhow::Result<Value> {
    Ok(host.tasks(id).await?.remove(0))
}

#[tokio::test]
async fn a_clone_runs_the_root_task_again_with_overridden_input_under_a_new_name() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let body =
        json!({"name": "nightly", "task": "Echo", "input": {"day": "mon", "keep": true}, "max_retries": 2});
    let (status, original) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, 201, "{original}");
    let original = original["id"].as_str().unwrap().to_owned();
    host.wait(&original, WAIT).await?;

    let (status, copy) = host
        .post(&format!("/v1/jobs/{original}/clone"), &json!({"name": "rerun", "input": {"day": "tue"}}))
        .await?;
    assert_eq!(status, 201, "{copy}");
    let copy_id = copy["id"].as_str().unwrap().to_owned();
    assert_ne!(copy_id, original);
    let job = host.wait(&copy_id, WAIT).await?;
    assert_eq!((job["name"].as_str(), job["state"].as_str()), (Some("rerun"), Some("completed")), "{job}");
    let task = root(&host, &copy_id).await?;
    assert_eq!(task["input"], json!({"day": "tue", "keep": true}));
    assert_eq!((task["task_type"]["name"].as_str(), task["max_retries"].as_u64()), (Some("Echo"), Some(2)));

    // With nothing given: the same name, input and retries.
    let (status, same) = host.post(&format!("/v1/jobs/{original}/clone"), &json!({})).await?;
    assert_eq!(status, 201, "{same}");
    let same = same["id"].as_str().unwrap().to_owned();
    assert_eq!(host.wait(&same, WAIT).await?["name"], "nightly");
    assert_eq!(root(&host, &same).await?["input"], json!({"day": "mon", "keep": true}));

    // The CLI, with a whole new input.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(["job", "clone", &original, "--input", "[1, 2]", "--server", &host.base])
        .output()?;
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let cloned = String::from_utf8(cli.stdout)?.trim().to_owned();
    host.wait(&cloned, WAIT).await?;
    assert_eq!(root(&host, &cloned).await?["input"], json!([1, 2]));

    let missing = "01890000-0000-7000-8000-000000000000";
    let (status, body) = host.post(&format!("/v1/jobs/{missing}/clone"), &json!({})).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = host.post(&format!("/v1/jobs/{original}/clone"), &json!({"name": ""})).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (422, Some("invalid_name")), "{body}");
    let (status, body) = host.post(&format!("/v1/jobs/{original}/clone"), &json!({"colour": 1})).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (422, Some("invalid_request")), "{body}");
    Ok(())
}

#[tokio::test]
async fn a_job_with_several_roots_runs_them_all_and_its_clone_copies_them() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    let body = json!({"name": "several", "task": "Echo", "input": {"n": 1},
        "more_roots": [{"task": "Fanout", "input": {"n": 3}, "max_retries": 1}, {"task": "Echo", "input": {"n": 2}}]});
    let (status, job) = host.post("/v1/jobs", &body).await?;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let roots: Vec<String> =
        job["root_tasks"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().into()).collect();
    assert_eq!((roots.len(), roots[0].as_str()), (3, job["root_task"].as_str().unwrap()), "{job}");
    let done = host.wait(&id, WAIT).await?;
    assert_eq!(
        (done["state"].as_str(), done["task_counts"]["total"].as_u64()),
        (Some("completed"), Some(6)),
        "{done}"
    );
    let tasks = host.tasks(&id).await?;
    let parentless: Vec<&Value> = tasks.iter().filter(|t| t["parent"].is_null()).collect();
    assert_eq!(parentless.len(), 3, "three roots");
    assert_eq!(crate::harness::of_type(&tasks, "Noop").len(), 3, "the second root's subtasks");
    assert_eq!(tasks.iter().find(|t| t["id"] == roots[1].as_str()).unwrap()["max_retries"], 1);

    // A clone copies every root, the input override applied to each.
    let (status, copy) = host.post(&format!("/v1/jobs/{id}/clone"), &json!({"input": {"n": 4}})).await?;
    assert_eq!(status, 201, "{copy}");
    let copy_id = copy["id"].as_str().unwrap().to_owned();
    assert_eq!(host.wait(&copy_id, WAIT).await?["task_counts"]["total"], 7, "3 roots and 4 Noops");
    let inputs: Vec<Value> = host
        .tasks(&copy_id)
        .await?
        .iter()
        .filter(|t| t["parent"].is_null())
        .map(|t| t["input"].clone())
        .collect();
    assert_eq!(inputs, vec![json!({"n": 4}); 3]);

    // The CLI, and what is refused.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(["job", "submit", "pair", "--task", "Echo", "--input", "{}", "--more-root", r#"Echo={"b": 1}"#])
        .args(["--server", &host.base, "--wait"])
        .output()?;
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let (_, page) = host.get("/v1/jobs?name=pair").await?;
    assert_eq!(page["jobs"][0]["task_counts"]["total"], 2, "{page}");
    let unknown =
        json!({"name": "n", "task": "Echo", "input": {}, "more_roots": [{"task": "Nope", "input": {}}]});
    let (status, body) = host.post("/v1/jobs", &unknown).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (422, Some("unknown_task_type")), "{body}");
    let many = json!({"name": "n", "task": "Echo", "input": {}, "more_roots": vec![json!({"task": "Echo", "input": {}}); 1000]});
    let (status, body) = host.post("/v1/jobs", &many).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (422, Some("too_many_roots")), "{body}");
    Ok(())
}
