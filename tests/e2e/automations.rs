//! Automations: cron schedules that submit jobs. Each host here runs its
//! schedules' clock from a chosen time (`serve --clock-from`), a few
//! seconds before a firing, so nothing waits for real minutes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Host, until};

const WAIT: Duration = Duration::from_secs(30);

async fn create(host: &Host, body: Value) -> anyhow::Result<Value> {
    let (status, created) = host.post("/v1/automations", &body).await?;
    anyhow::ensure!(status == 201, "{status}: {created}");
    Ok(created)
}

/// The jobs automation `id` submitted, newest first.
async fn jobs_of(host: &Host, id: &str) -> anyhow::Result<Vec<Value>> {
    let (status, page) = host.get(&format!("/v1/jobs?automation={id}")).await?;
    anyhow::ensure!(status == 200, "{status}: {page}");
    Ok(page["jobs"].as_array().cloned().unwrap_or_default())
}

/// Waits until automation `id` has submitted `n` jobs; answers them.
async fn fired(host: &Host, id: &str, n: usize) -> anyhow::Result<Vec<Value>> {
    until(&format!("automation {id} fired {n} jobs"), WAIT, async || Ok(jobs_of(host, id).await?.len() >= n))
        .await?;
    jobs_of(host, id).await
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn an_automation_fires_on_its_schedule_and_its_jobs_carry_its_id() -> anyhow::Result<()> {
    let host = Host::start(&["--clock-from", "2026-01-01T11:59:57Z"]).await?;
    host.upload("probe").await?;
    let created = create(
        &host,
        json!({"name": "noon report", "task": "Echo", "input": {"region": "eu"}, "max_retries": 1,
               "triggers": ["0 12 * * *", "CRON_TZ=Asia/Tokyo 0 9 * * *"]}),
    )
    .await?;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["next_scheduled_at"], "2026-01-01T12:00:00Z", "{created}");
    assert_eq!((created["fired"].as_u64(), created["paused"].as_bool()), (Some(0), Some(false)));

    let jobs = fired(&host, &id, 1).await?;
    let job_id = jobs[0]["id"].as_str().unwrap().to_owned();
    let job = host.wait(&job_id, WAIT).await?;
    assert_eq!((job["name"].as_str(), job["automation"].as_str()), (Some("noon report"), Some(id.as_str())));
    let root = host.tasks(&job_id).await?.remove(0);
    assert_eq!(root["input"], json!({"region": "eu", "trigger_time": "2026-01-01T12:00:00Z"}));
    assert_eq!(root["max_retries"], 1);

    // Next: 09:00 in Tokyo, midnight UTC.
    let (_, shown) = host.get(&format!("/v1/automations/{id}")).await?;
    assert_eq!(shown["next_scheduled_at"], "2026-01-02T00:00:00Z", "{shown}");
    assert_eq!(
        (shown["fired"].as_u64(), shown["last_fired_at"].as_str()),
        (Some(1), Some("2026-01-01T12:00:00Z"))
    );

    let listed = host.cli(&["automation", "list"])?;
    assert!(listed.contains(&format!("{id}  noon report  next 2026-01-02T00:00:00Z")), "{listed}");
    let details = host.cli(&["automation", "show", &id])?;
    assert!(details.contains("trigger CRON_TZ=Asia/Tokyo 0 9 * * *"), "{details}");
    assert!(details.contains("fired 1 jobs, last 2026-01-01T12:00:00Z"), "{details}");
    let by_automation = host.cli(&["job", "list", "--automation", &id])?;
    assert!(by_automation.starts_with(&job_id), "{by_automation}");
    // Jobs submitted by hand are not among them.
    let other = host.submit("Echo", json!({})).await?;
    assert!(jobs_of(&host, &id).await?.iter().all(|j| j["id"] != other.as_str()));
    Ok(())
}

#[tokio::test]
async fn firings_missed_while_the_host_was_down_fire_once_or_not_at_all() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut host = Host::start_in(dir.path(), &["--clock-from", "2026-01-01T10:00:00Z"]).await?;
    host.upload("probe").await?;
    let body = json!({"name": "every ten", "task": "Echo", "triggers": ["*/10 * * * *"]});
    let id = create(&host, body).await?["id"].as_str().unwrap().to_owned();
    host.stop()?;

    // Down from about 10:00 to 11:03: six firings missed; one fires, the latest.
    let mut host = Host::start_in(dir.path(), &["--clock-from", "2026-01-01T11:03:00Z"]).await?;
    let jobs = fired(&host, &id, 1).await?;
    let root = host.tasks(jobs[0]["id"].as_str().unwrap()).await?.remove(0);
    assert_eq!(root["input"]["trigger_time"], "2026-01-01T11:00:00Z");
    let (_, shown) = host.get(&format!("/v1/automations/{id}")).await?;
    assert_eq!(
        (shown["fired"].as_u64(), shown["next_scheduled_at"].as_str()),
        (Some(1), Some("2026-01-01T11:10:00Z"))
    );
    host.stop()?;

    // With `--missed-schedules skip`, the next firing is the first after the start.
    let host =
        Host::start_in(dir.path(), &["--clock-from", "2026-01-01T13:00:00Z", "--missed-schedules", "skip"])
            .await?;
    let (_, shown) = host.get(&format!("/v1/automations/{id}")).await?;
    assert_eq!(shown["next_scheduled_at"], "2026-01-01T13:10:00Z", "{shown}");
    // A job submitted now is applied after any firing at start would have been.
    let later = host.submit("Echo", json!({})).await?;
    host.wait(&later, WAIT).await?;
    assert_eq!(jobs_of(&host, &id).await?.len(), 1, "nothing fired for the missed firings");
    Ok(())
}

#[tokio::test]
async fn pause_resume_and_delete_with_or_without_its_jobs() -> anyhow::Result<()> {
    let host = Host::start(&["--clock-from", "2026-01-01T11:59:57Z"]).await?;
    host.upload("probe").await?;
    // No runner serves this cluster: the automations' jobs stay queued.
    host.create_cluster("nowhere").await?;
    let noon =
        |name: &str| json!({"name": name, "task": "Echo", "cluster": "nowhere", "triggers": ["0 12 * * *"]});
    let keep = create(&host, noon("keep")).await?["id"].as_str().unwrap().to_owned();
    let cancel = create(&host, noon("cancel")).await?["id"].as_str().unwrap().to_owned();
    let yearly = json!({"name": "yearly", "task": "Echo", "cluster": "nowhere", "triggers": ["@yearly"]});
    let paused = create(&host, yearly).await?["id"].as_str().unwrap().to_owned();
    let kept_job = fired(&host, &keep, 1).await?[0]["id"].as_str().unwrap().to_owned();
    let canceled_job = fired(&host, &cancel, 1).await?[0]["id"].as_str().unwrap().to_owned();

    let url = |id: &str| format!("{}/v1/automations/{id}", host.base);
    let (status, shown) = host.send(http().patch(url(&paused)).json(&json!({"paused": true}))).await?;
    assert_eq!(status, 200, "{shown}");
    assert_eq!((shown["paused"].as_bool(), shown.get("next_scheduled_at")), (Some(true), None), "{shown}");
    assert!(host.cli(&["automation", "list"])?.contains(&format!("{paused}  yearly  paused")));
    let resumed = host.cli(&["automation", "resume", &paused])?;
    assert!(resumed.contains("next 2027-01-01T00:00:00Z"), "{resumed}");

    let (status, body) = host.send(http().delete(format!("{}/v1/clusters/nowhere", host.base))).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (409, Some("conflict")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("is used by automation"), "{body}");

    let (status, deleted) = host.send(http().delete(url(&keep))).await?;
    assert_eq!((status.as_u16(), deleted["canceled_jobs"].as_u64()), (200, Some(0)), "{deleted}");
    let said = host.cli(&["automation", "delete", &cancel, "--cancel-jobs"])?;
    assert!(said.contains("1 of its jobs canceled"), "{said}");
    assert_eq!(host.get(&format!("/v1/jobs/{kept_job}")).await?.1["state"], "submitted");
    assert_eq!(host.get(&format!("/v1/jobs/{canceled_job}")).await?.1["state"], "canceled");
    let (status, _) = host.get(&format!("/v1/automations/{keep}")).await?;
    assert_eq!(status, 404);
    assert_eq!(jobs_of(&host, &keep).await?.len(), 1, "its jobs stay findable by it");
    Ok(())
}

#[tokio::test]
async fn a_schedule_across_a_daylight_saving_change_and_bad_automations() -> anyhow::Result<()> {
    // 2026-03-29, Berlin: at 02:00 CET the clocks go to 03:00 CEST (01:00 UTC).
    let host = Host::start(&["--clock-from", "2026-03-29T00:59:57Z"]).await?;
    host.upload("probe").await?;
    let body =
        json!({"name": "half past two", "task": "Echo", "triggers": ["CRON_TZ=Europe/Berlin 30 2 * * *"]});
    let created = create(&host, body).await?;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["next_scheduled_at"], "2026-03-29T01:00:00Z", "02:30 does not happen: 03:00 CEST");
    let job = fired(&host, &id, 1).await?.remove(0);
    let root = host.tasks(job["id"].as_str().unwrap()).await?.remove(0);
    assert_eq!(root["input"]["trigger_time"], "2026-03-29T01:00:00Z");
    let (_, shown) = host.get(&format!("/v1/automations/{id}")).await?;
    assert_eq!(shown["next_scheduled_at"], "2026-03-30T00:30:00Z", "02:30 CEST the next day");

    let base = json!({"name": "n", "task": "Echo", "triggers": ["@daily"]});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (
            with("triggers", json!(["61 * * * *"])),
            "invalid_automation",
            "trigger 0: `61 * * * *` is not a cron expression",
        ),
        (
            with("triggers", json!(["@daily", "CRON_TZ=Mars/Olympus 0 9 * * *"])),
            "invalid_automation",
            "trigger 1: unknown time zone `Mars/Olympus`",
        ),
        (with("triggers", json!(["0 0 31 2 *"])), "invalid_automation", "never fires"),
        (with("triggers", json!(vec!["@daily"; 33])), "invalid_automation", "1 to 32 triggers, got 33"),
        (with("triggers", json!([])), "invalid_automation", "1 to 32 triggers, got 0"),
        (with("input", json!([1])), "invalid_automation", "input must be a JSON object"),
        (with("input", json!({"trigger_time": "x"})), "invalid_automation", "must not set `trigger_time`"),
        (with("name", json!("")), "invalid_name", "name must be 1 to 256 characters"),
        (with("name", json!("n".repeat(257))), "invalid_name", "name must be 1 to 256 characters"),
        (with("task", json!("Nope")), "unknown_task_type", "unknown task type Nope"),
        (with("cluster", json!("nowhere")), "unknown_cluster", "unknown cluster nowhere"),
    ];
    for (body, code, message) in cases {
        let (status, answer) = host.post("/v1/automations", &body).await?;
        assert_eq!(
            (status.as_u16(), answer["error"]["code"].as_str()),
            (422, Some(code)),
            "{body}: {answer}"
        );
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{body}: {answer}");
    }
    let (status, _) = host.post("/v1/automations", &with("colour", json!(1))).await?;
    assert_eq!(status, 422, "unknown fields are refused");
    let missing = "01890000-0000-7000-8000-000000000000";
    for path in [format!("/v1/automations/{missing}"), format!("/v1/automations/{missing}?cancel_jobs=true")]
    {
        let (status, body) = host.send(http().delete(format!("{}{path}", host.base))).await?;
        assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    }
    let (status, body) = host.get("/v1/automations/nope").await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_id")), "{body}");
    let (status, body) = host.get("/v1/jobs?automation=nope").await?;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (400, Some("invalid_automation")),
        "{body}"
    );
    let patch =
        http().patch(format!("{}/v1/automations/{missing}", host.base)).json(&json!({"paused": true}));
    assert_eq!(host.send(patch).await?.0, 404);
    Ok(())
}
