//! A headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromedriver`), for the dashboard's tests: one browser per test, on a
//! free port of 127.0.0.1, with helpers that wait for what a user would see
//! (each with a deadline), check a page's accessibility with axe-core, read
//! the browser's console and write screenshots.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest any wait for the page takes before the test fails.
pub const PAGE_WAIT: Duration = Duration::from_secs(20);

pub struct Browser {
    pub client: Client,
    _driver: Child,
    shots: PathBuf,
}

/// chromedriver's command for the browser's console (`goog:loggingPrefs`).
#[derive(Debug)]
struct ConsoleLog;

impl fantoccini::wd::WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts chromedriver and waits for the line that says it listens.
async fn driver(port: u16) -> anyhow::Result<Child> {
    // Its own process group: the browser it starts goes with it (see `Drop`).
    let mut child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {CHROMEDRIVER} (apt-get install chromium chromium-driver)"))?;
    let mut lines = BufReader::new(child.stdout.take().context("chromedriver's stdout")?).lines();
    let listening = async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("started successfully") {
                return Ok(());
            }
        }
        bail!("chromedriver exited before it listened")
    };
    tokio::time::timeout(PAGE_WAIT, listening).await.context("chromedriver did not start")??;
    Ok(child)
}

impl Browser {
    /// A fresh headless browser whose screenshots go to
    /// `target/tmp/dashboard/<test>-*.png`.
    pub async fn start(test: &str) -> anyhow::Result<Browser> {
        let port = free_port()?;
        let driver = driver(port).await?;
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(caps) = caps else { unreachable!("an object") };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("open a browser session")?;
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
        std::fs::create_dir_all(&shots)?;
        let shots = shots.join(test);
        Ok(Browser { client, _driver: driver, shots })
    }

    /// Waits for an element matching `css`.
    pub async fn find(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element {css} within {PAGE_WAIT:?}"))
    }

    /// Waits until `script` (a function body) returns true in the page.
    pub async fn until(&self, what: &str, script: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            if self.client.execute(script, vec![]).await? == Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{what}: not within {PAGE_WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element matching `css` once it is there (found again
    /// when the page redrew it between the finding and the click).
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            match self.find(css).await?.click().await {
                Ok(()) => return Ok(()),
                Err(e) if e.to_string().contains("stale element") && Instant::now() < deadline => continue,
                Err(e) => return Err(e).with_context(|| format!("click {css}")),
            }
        }
    }

    /// Presses a button after the dashboard's confirmation dialog asks.
    pub async fn confirm(&self, button: &str) -> anyhow::Result<()> {
        self.click(button).await?;
        self.until("the confirmation dialog opens", "return document.getElementById('confirm').open").await?;
        self.click("#confirm-ok").await
    }

    /// The accessibility violations axe-core finds on the page as it is.
    pub async fn violations(&self) -> anyhow::Result<Vec<Value>> {
        let axe = std::fs::read_to_string(env!("AXE_JS"))?;
        self.client.execute(&format!("{axe}\nreturn true;"), vec![]).await?;
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then((r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary) }))))
                   .catch((e) => done([{ id: 'axe-failed', help: String(e) }]));",
                vec![],
            )
            .await?;
        Ok(found.as_array().cloned().unwrap_or_default())
    }

    /// Fails on any accessibility violation of the page, naming them.
    pub async fn accessible(&self, page: &str) -> anyhow::Result<()> {
        let found = self.violations().await?;
        if !found.is_empty() {
            bail!("{page}: accessibility violations: {}", serde_json::to_string_pretty(&found)?);
        }
        Ok(())
    }

    /// The console's error lines since the last call.
    pub async fn console_errors(&self) -> anyhow::Result<Vec<String>> {
        let lines = self.client.issue_cmd(ConsoleLog).await?;
        Ok(lines
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["level"] == "SEVERE")
            .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
            .collect())
    }

    /// Writes a screenshot of the page as `<test>-<name>.png`.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<()> {
        let png = self.client.screenshot().await?;
        let file = self.shots.with_file_name(format!(
            "{}-{name}.png",
            self.shots.file_name().and_then(|n| n.to_str()).unwrap_or("page")
        ));
        std::fs::write(&file, png).with_context(|| format!("write {}", file.display()))
    }

    /// Opens `fragment` (`#/jobs`) of the host at `base`.
    pub async fn open(&self, base: &str, fragment: &str) -> anyhow::Result<()> {
        self.client.goto(&format!("{base}/{fragment}")).await.context("open the dashboard")
    }

    /// Ends the session (the driver is killed when dropped).
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.clone().close().await.context("close the browser")
    }
}

impl Drop for Browser {
    /// Kills chromedriver and the browser it started, also when a test
    /// failed before closing the session.
    fn drop(&mut self) {
        if let Some(pid) = self._driver.id().and_then(|id| rustix::process::Pid::from_raw(id as i32)) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}
