//! The web dashboard in a real browser (headless Chromium): a user submits
//! a fan-out from the form and watches its graph turn computed node by
//! node, opens a failed task's error and logs, retries the job after a fix
//! and sees it complete, force-cancels a running job, logs in with a token.
//! Every page is checked with axe-core and for console errors, and a
//! screenshot of it is written to `target/tmp/dashboard/`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::auth::{ADMIN, host_with_tokens};
use crate::browser::Browser;
use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(60);

/// The badge of the job page's title is in `state`.
fn job_in(state: &str) -> String {
    format!("return document.querySelector('#job-header h1 .badge[data-state=\"{state}\"]') !== null")
}

/// Checks the page as it is: accessible, nothing on the console, then a screenshot.
async fn looked_at(browser: &Browser, page: &str) -> anyhow::Result<()> {
    browser.accessible(page).await?;
    let errors = browser.console_errors().await?;
    assert!(errors.is_empty(), "{page}: console errors: {errors:?}");
    browser.screenshot(page).await
}

/// Records, in the page, the number of computed task nodes after every
/// redraw of the graph.
const RECORD_COMPUTED: &str = "
    window.computedSeen = [];
    const graph = document.getElementById('graph');
    const count = () => graph.querySelectorAll('g.task[data-state=computed]').length;
    window.computedSeen.push(count());
    new MutationObserver(() => window.computedSeen.push(count())).observe(graph, { childList: true, subtree: true });
    return true;";

/// The caption of the job page's task table reads `text`.
fn caption_is(text: &str) -> String {
    format!("return document.querySelector('#tasks caption')?.textContent === '{text}'")
}

#[tokio::test]
async fn a_user_submits_watches_inspects_and_retries() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("probe").await?;
    host.upload("movies-v1.0").await?;
    let browser = Browser::start("story").await?;
    browser.open(&host.base, "").await?;
    assert_eq!(browser.find("main h1").await?.text().await?, "Jobs");
    looked_at(&browser, "jobs-empty").await?;
    submit_from_the_form(&browser).await?;
    watch_the_graph_turn_computed(&browser).await?;
    let id = open_a_failed_task(&host, &browser).await?;
    retry_after_the_fix(&host, &browser, &id).await?;
    look_at_a_big_job(&host, &browser).await?;
    for page in ["modules", "clusters", "runners", "automations"] {
        browser.click(&format!("a[data-nav={page}]")).await?;
        let heading =
            format!("return document.querySelector('main h1')?.textContent.toLowerCase() === '{page}'");
        browser.until(page, &heading).await?;
        looked_at(&browser, page).await?;
    }
    browser.close().await
}

/// The form refuses what is not JSON before sending it, then submits a
/// fan-out of six sleepers.
async fn submit_from_the_form(browser: &Browser) -> anyhow::Result<()> {
    browser.click("a[data-nav=submit]").await?;
    browser.click("#s-task option[value^='SlowFanout@']").await?;
    let input = browser.find("#s-input").await?;
    input.clear().await?;
    input.send_keys(r#"{"n": 6,"#).await?;
    browser.until("the input is refused", "return document.getElementById('s-submit').disabled").await?;
    let hint = browser.find("#s-input-hint").await?.text().await?;
    assert!(hint.starts_with("not JSON"), "{hint}");
    looked_at(browser, "submit-invalid").await?;
    input.send_keys(r#" "ms": 300, "children": 0}"#).await?;
    browser.until("the input is taken", "return !document.getElementById('s-submit').disabled").await?;
    browser.click("#s-submit").await
}

/// The new job's page: its graph turns computed node by node.
async fn watch_the_graph_turn_computed(browser: &Browser) -> anyhow::Result<()> {
    browser.find("#graph svg").await?;
    browser.client.execute(RECORD_COMPUTED, vec![]).await?;
    browser.until("the fan-out completes", &job_in("completed")).await?;
    let all = "return document.querySelectorAll('#graph g.task[data-state=computed]').length === 7";
    browser.until("every node is computed", all).await?;
    let seen: Vec<u64> =
        serde_json::from_value(browser.client.execute("return window.computedSeen", vec![]).await?)?;
    let mut steps = seen.clone();
    steps.dedup();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "computed nodes never go back: {seen:?}");
    let between = steps.iter().filter(|n| (1..7).contains(*n)).count();
    assert!(between >= 2, "the graph turned computed in steps: {seen:?}");
    looked_at(browser, "job-completed").await
}

/// A failed movies job: the job's logs, then the failed task's error,
/// opened from the keyboard. Answers the job's id.
async fn open_a_failed_task(host: &Host, browser: &Browser) -> anyhow::Result<String> {
    let movies =
        json!({"name": "movies", "task": "MoviesStats@v1.0", "input": {"titles": ["The Matrix", "Nope"]}});
    let (_, job) = host.post("/v1/jobs", &movies).await?;
    let id = job["id"].as_str().unwrap().to_owned();
    browser.open(&host.base, &format!("#/jobs/{id}")).await?;
    browser.until("the movies job fails", &job_in("failed")).await?;
    browser.until("the job's logs show", "return document.querySelectorAll('#logs li').length > 0").await?;
    let logs = browser.find("#logs").await?.text().await?;
    assert!(logs.contains("1999"), "The Matrix's release date is logged: {logs}");
    looked_at(browser, "job-failed").await?;
    let failed = browser.find("#graph g.task[data-state=failed]").await?;
    failed.send_keys(&fantoccini::key::Key::Enter.to_string()).await?;
    let error = browser.find("#task-error").await?.text().await?;
    assert!(error.contains("KeyError('Title')"), "{error}");
    looked_at(browser, "task-failed").await?;
    Ok(id)
}

/// The fix is uploaded; Retry on the job's page runs the failed task again,
/// whose page then shows its first attempt's error, its logs and its span.
async fn retry_after_the_fix(host: &Host, browser: &Browser, id: &str) -> anyhow::Result<()> {
    host.upload("movies-v1.1").await?;
    browser.client.back().await?;
    browser.until("the job page is back", &job_in("failed")).await?;
    browser.confirm("#a-retry").await?;
    browser.until("the retried job completes", &job_in("completed")).await?;
    assert_eq!(host.wait(id, WAIT).await?["state"], "completed");
    looked_at(browser, "job-retried").await?;
    let listed =
        "return [...document.querySelectorAll('#tasks a')].some((a) => a.textContent === 'NotFound: Nope')";
    browser.until("the table shows the retried task", listed).await?;
    browser.client.find(fantoccini::Locator::LinkText("NotFound: Nope")).await?.click().await?;
    let logged =
        "return document.getElementById('task-logs')?.textContent.includes('Movie release date not found')";
    browser.until("its logs show", logged).await?;
    let attempts = browser.find("#task table").await?.text().await?;
    assert!(attempts.contains("KeyError('Title')"), "the first attempt's error: {attempts}");
    let spans = browser.find(".waterfall").await?.text().await?;
    assert!(spans.contains("fetch-movie-stats"), "{spans}");
    looked_at(browser, "task-retried").await
}

/// A job of 301 tasks: its graph in groups, its tasks in pages; a group's
/// box lists its tasks and a state narrows them.
async fn look_at_a_big_job(host: &Host, browser: &Browser) -> anyhow::Result<()> {
    let big = host.submit("Fanout", json!({"n": 300})).await?;
    host.wait(&big, WAIT).await?;
    browser.open(&host.base, &format!("#/jobs/{big}")).await?;
    browser.find("#graph g.group[data-task-type=Noop][data-members='300']").await?;
    browser.until("the first page of tasks shows", &caption_is("Tasks 1 to 50 of 301")).await?;
    browser.click("#tasks .pager button:last-child").await?;
    browser.until("the second page shows", &caption_is("Tasks 51 to 100 of 301")).await?;
    assert_eq!(browser.client.find_all(fantoccini::Locator::Css("#tasks tbody tr")).await?.len(), 50);
    looked_at(browser, "job-big").await?;
    browser.click("#graph g.group[data-task-type=Noop]").await?;
    browser.until("the group's tasks show", &caption_is("Tasks 1 to 50 of Noop × 300")).await?;
    browser.click("#task-state option[value=failed]").await?;
    browser.until("none of them failed", &caption_is("No tasks of Noop × 300, failed")).await?;
    browser.click("#task-state option[value='']").await?;
    browser.click("#task-group-clear").await?;
    browser.until("every task shows again", &caption_is("Tasks 1 to 50 of 301")).await
}

#[tokio::test]
async fn a_running_job_is_force_canceled_in_the_dark_on_a_phone() -> anyhow::Result<()> {
    let host = Host::start(&["--runners", "2"]).await?;
    host.upload("probe").await?;
    let browser = Browser::start("cancel").await?;
    browser.client.set_window_size(390, 844).await?;
    let id = host.submit("SlowFanout", json!({"n": 2, "ms": 600_000, "children": 0})).await?;
    browser.open(&host.base, &format!("#/jobs/{id}")).await?;
    browser
        .until(
            "both sleepers run",
            "return document.querySelectorAll('#graph g.task[data-state=running]').length === 2",
        )
        .await?;
    browser.click("#theme").await?;
    browser
        .until(
            "the graph is redrawn dark",
            "return document.querySelector('#graph svg rect.background')?.getAttribute('fill') === '#1E1E1E'",
        )
        .await?;
    looked_at(&browser, "phone-dark-running").await?;
    browser.confirm("#a-force").await?;
    browser.until("the job is canceled", &job_in("canceled")).await?;
    let job = host.wait_ended(&id, WAIT).await?;
    assert_eq!(job["state"], "canceled");
    assert_eq!(job["task_counts"]["running"], 0, "{job}");
    looked_at(&browser, "phone-dark-canceled").await?;
    browser.close().await
}

#[tokio::test]
async fn with_tokens_the_dashboard_asks_for_one_and_keeps_it_out_of_urls() -> anyhow::Result<()> {
    let (host, _dir) = host_with_tokens().await?;
    let browser = Browser::start("login").await?;
    browser.open(&host.base, "#/jobs").await?;
    browser.find("#token").await?.send_keys(ADMIN).await?;
    looked_at_without_the_refusal(&browser).await?;
    browser.click("form.login button[type=submit]").await?;
    browser
        .until("the jobs list shows", "return document.querySelector('main h1')?.textContent === 'Jobs'")
        .await?;
    let url = browser.client.current_url().await?;
    assert!(!url.as_str().contains(ADMIN), "{url}");
    let stored: Value =
        browser.client.execute("return document.cookie + JSON.stringify(localStorage)", vec![]).await?;
    assert!(
        !stored.to_string().contains(ADMIN),
        "the token stays in this tab's session storage only: {stored}"
    );
    looked_at(&browser, "jobs-logged-in").await?;
    browser.click("#logout").await?;
    browser.find("#token").await?;
    browser.close().await
}

/// The login page: its only console line is the host's 401 that asked for it.
async fn looked_at_without_the_refusal(browser: &Browser) -> anyhow::Result<()> {
    browser.accessible("login").await?;
    let errors = browser.console_errors().await?;
    assert!(errors.iter().all(|e| e.contains("401")), "console errors: {errors:?}");
    browser.screenshot("login").await
}
