//! `GET /v1/jobs`: ranges, filters and paging over time-ordered job ids.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Host;

fn ids(page: &Value) -> Vec<String> {
    page["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect()
}

async fn page(host: &Host, query: &str) -> anyhow::Result<Value> {
    let (status, body) = host.get(&format!("/v1/jobs?{query}")).await?;
    assert_eq!(status, 200, "{query}: {body}");
    Ok(body)
}

#[tokio::test]
async fn ranges_filters_and_paging_return_exactly_the_expected_jobs() -> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    host.create_cluster("idle").await?;
    // 50 jobs, 3 ms apart: even ones named "even", every fifth on a cluster
    // without runners (so it stays submitted).
    let mut jobs: Vec<(String, String)> = Vec::new();
    for i in 0..50 {
        let name = if i % 2 == 0 { "even" } else { "odd" };
        let cluster = if i % 5 == 0 { "idle" } else { "default" };
        let body = json!({"name": name, "task": "Noop", "input": {}, "cluster": cluster});
        let (status, job) = host.post("/v1/jobs", &body).await?;
        assert_eq!(status, 201);
        jobs.push((job["id"].as_str().unwrap().to_owned(), job["submitted_at"].as_str().unwrap().to_owned()));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for (i, (id, _)) in jobs.iter().enumerate() {
        if i % 5 != 0 {
            host.wait(id, Duration::from_secs(30)).await?;
        }
    }
    let newest_first = |range: std::ops::Range<usize>| -> Vec<String> {
        jobs[range].iter().rev().map(|(id, _)| id.clone()).collect()
    };

    assert_eq!(ids(&page(&host, "limit=1000").await?), newest_first(0..50));
    let (from, to) = (&jobs[10].1, &jobs[20].1);
    assert_eq!(ids(&page(&host, &format!("from={from}&to={to}")).await?), newest_first(10..20));

    let mut paged = Vec::new();
    let mut query = "limit=7".to_owned();
    loop {
        let p = page(&host, &query).await?;
        assert!(ids(&p).len() <= 7);
        paged.extend(ids(&p));
        match p["next_cursor"].as_str() {
            Some(c) => query = format!("limit=7&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, newest_first(0..50));

    let even: Vec<String> = newest_first(0..50)
        .into_iter()
        .filter(|id| jobs.iter().position(|(j, _)| j == id).unwrap() % 2 == 0)
        .collect();
    assert_eq!(ids(&page(&host, "name=even&limit=100").await?), even);
    let idle: Vec<String> = newest_first(0..50)
        .into_iter()
        .filter(|id| jobs.iter().position(|(j, _)| j == id).unwrap() % 5 == 0)
        .collect();
    assert_eq!(ids(&page(&host, "cluster=idle&limit=100").await?), idle);
    assert_eq!(ids(&page(&host, "state=submitted&limit=100").await?), idle);
    assert_eq!(ids(&page(&host, "state=completed&limit=100").await?).len(), 40);
    assert_eq!(ids(&page(&host, "state=completed&cluster=idle").await?).len(), 0);

    let (status, body) = host.get(&format!("/v1/jobs?from={to}&to={from}")).await?;
    assert_eq!((status, body["jobs"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "an empty range");
    for bad in [
        "from=yesterday".to_owned(),
        "to=2025-13-45".to_owned(),
        "cursor=not-an-id".to_owned(),
        "limit=0".to_owned(),
        "limit=5000".to_owned(),
        "state=sleeping".to_owned(),
        "colour=blue".to_owned(),
    ] {
        let (status, body) = host.get(&format!("/v1/jobs?{bad}")).await?;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["message"].is_string(), "{bad}: {body}");
    }
    Ok(())
}

#[tokio::test]
async fn jobs_are_found_by_several_states_task_states_a_name_fragment_an_id_range_in_either_order()
-> anyhow::Result<()> {
    let host = Host::start(&[]).await?;
    host.upload("probe").await?;
    host.create_cluster("idle").await?;
    // Submitted in this order: two nightly jobs (one fails), an idle one
    // that stays submitted, an ad-hoc one.
    let plan = [
        ("Nightly-Report", "Noop", "default"),
        ("nightly-backup", "FailAfterSubmit", "default"),
        ("NIGHTLY later", "Noop", "idle"),
        ("adhoc", "Noop", "default"),
    ];
    let mut submitted = Vec::new();
    for (name, task, cluster) in plan {
        let (status, job) = host
            .post("/v1/jobs", &json!({"name": name, "task": task, "input": {}, "cluster": cluster}))
            .await?;
        assert_eq!(status, 201, "{job}");
        submitted.push(job["id"].as_str().unwrap().to_owned());
    }
    host.wait(&submitted[0], Duration::from_secs(30)).await?;
    assert_eq!(
        host.failure(&submitted[1], Duration::from_secs(30)).await?,
        "the data source refused the request"
    );
    host.wait(&submitted[3], Duration::from_secs(30)).await?;
    let pick = |which: &[usize]| -> Vec<String> { which.iter().map(|&i| submitted[i].clone()).collect() };

    assert_eq!(ids(&page(&host, "order=asc").await?), pick(&[0, 1, 2, 3]));
    assert_eq!(ids(&page(&host, "order=desc").await?), pick(&[3, 2, 1, 0]));
    assert_eq!(ids(&page(&host, "state=failed,submitted").await?), pick(&[2, 1]));
    assert_eq!(ids(&page(&host, "task_state=failed").await?), pick(&[1]));
    assert_eq!(ids(&page(&host, "task_state=queued,failed&order=asc").await?), pick(&[1, 2]));
    assert_eq!(ids(&page(&host, "name_contains=nIgHtLy&order=asc").await?), pick(&[0, 1, 2]));
    assert_eq!(ids(&page(&host, "name_contains=nightly&state=completed").await?), pick(&[0]));
    let range = format!("from_id={}&to_id={}", submitted[1], submitted[3]);
    assert_eq!(ids(&page(&host, &range).await?), pick(&[2, 1]));

    // Oldest first, a page at a time: each page starts after the cursor.
    let mut paged = Vec::new();
    let mut query = "order=asc&limit=3".to_owned();
    loop {
        let p = page(&host, &query).await?;
        paged.extend(ids(&p));
        match p["next_cursor"].as_str() {
            Some(c) => query = format!("order=asc&limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, pick(&[0, 1, 2, 3]));

    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(["job", "list", "--oldest-first", "--name-contains", "NIGHTLY", "--server", &host.base])
        .output()?;
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let listed: Vec<String> = String::from_utf8(cli.stdout)?
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(listed, pick(&[0, 1, 2]));

    for (bad, code) in [
        ("state=failed,sleeping", "invalid_state"),
        ("task_state=done", "invalid_task_state"),
        ("order=sideways", "invalid_order"),
        ("from_id=yesterday", "invalid_from_id"),
    ] {
        let (status, body) = host.get(&format!("/v1/jobs?{bad}")).await?;
        assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some(code)), "{bad}: {body}");
    }
    let long = format!("/v1/jobs?name_contains={}", "x".repeat(300));
    assert_eq!(host.get(&long).await?.0, 400);
    Ok(())
}
