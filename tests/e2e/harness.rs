//! Starts the real host binary on 127.0.0.1:0 and talks to it over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The path of a component built by the build script.
pub fn component(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "fanout" => env!("COMPONENT_FANOUT"),
        "pipeline" => env!("COMPONENT_PIPELINE"),
        "probe" => env!("COMPONENT_PROBE"),
        "hostile" => env!("COMPONENT_HOSTILE"),
        "bad-import" => env!("COMPONENT_BAD_IMPORT"),
        "many-types" => env!("COMPONENT_MANY_TYPES"),
        "impostor" => env!("COMPONENT_IMPOSTOR"),
        "wordcount" => env!("COMPONENT_WORDCOUNT"),
        "outputs" => env!("COMPONENT_OUTPUTS"),
        "cache" => env!("COMPONENT_CACHE"),
        "fanout-v0.1.0" => concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/v0.1.0/fanout.wasm"),
        "outputs-v0.2.0" => concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/v0.2.0/outputs.wasm"),
        "outputs-v0.3.0" => concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/v0.3.0/outputs.wasm"),
        "hostile-py" => env!("COMPONENT_HOSTILE_PY"),
        "sdk-py" => env!("COMPONENT_SDK_PY"),
        "python-movies-v1.0" => env!("COMPONENT_PYTHON_MOVIES_V1_0"),
        "python-movies-v1.1" => env!("COMPONENT_PYTHON_MOVIES_V1_1"),
        "sdk-js" => env!("COMPONENT_SDK_JS"),
        "js-fanout" => env!("COMPONENT_JS_FANOUT"),
        "many-memories" => env!("COMPONENT_MANY_MEMORIES"),
        "crowded" => env!("COMPONENT_CROWDED"),
        "movies-v1.0" => env!("COMPONENT_MOVIES_V1_0"),
        "movies-v1.1" => env!("COMPONENT_MOVIES_V1_1"),
        other => panic!("no component named {other}"),
    })
}

/// The store the tests run against: `SANDFLOW_TEST_STORE=postgres` puts
/// every host's state in a database of its own on a private PostgreSQL
/// server (`sandflow-test-postgres`); anything else (the default) keeps it
/// in the data directory.
pub fn postgres_store() -> bool {
    std::env::var("SANDFLOW_TEST_STORE").is_ok_and(|s| s == "postgres")
}

/// The `--store` of a host on `data_dir`: with [`postgres_store`], the
/// database made for that directory when a host first started on it (so a
/// restarted host finds its state), unless `args` choose a store.
fn store_args(data_dir: &Path, args: &[&str]) -> anyhow::Result<Vec<String>> {
    if !postgres_store() || args.contains(&"--store") {
        return Ok(Vec::new());
    }
    let marker = data_dir.join("test-database-url");
    let url = match std::fs::read_to_string(&marker) {
        Ok(url) => url,
        Err(_) => {
            let url = sandflow_test_postgres::shared().database().map_err(anyhow::Error::msg)?;
            std::fs::create_dir_all(data_dir)?;
            std::fs::write(&marker, &url)?;
            url
        }
    };
    Ok(vec!["--store".into(), url])
}

/// The hosts' log filter: `SANDFLOW_TEST_LOG`, else warnings (but the
/// server's own, which the tests cause on purpose).
fn host_log_filter() -> String {
    std::env::var("SANDFLOW_TEST_LOG").unwrap_or_else(|_| "warn,sandflow_host::server=error".into())
}

/// A running host process with its own data directory.
pub struct Host {
    child: Child,
    pub base: String,
    _temp: Option<tempfile::TempDir>,
    http: reqwest::Client,
    /// The bearer token sent with every request, if any.
    pub token: Option<String>,
}

impl Host {
    /// A host on a fresh data directory with default options plus `args`.
    pub async fn start(args: &[&str]) -> anyhow::Result<Host> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().to_path_buf();
        let mut host = Host::start_in(&dir, args).await?;
        host._temp = Some(temp);
        Ok(host)
    }

    /// A host on `data_dir` (kept by the caller), with `args`.
    pub async fn start_in(data_dir: &Path, args: &[&str]) -> anyhow::Result<Host> {
        Host::start_with_env(data_dir, args, &[]).await
    }

    /// [`Host::start_in`] with environment variables set for the host.
    pub async fn start_with_env(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Host> {
        let store = store_args(data_dir, args)?;
        Host::spawn(data_dir, &store, args, env).await
    }

    /// A host whose store is in `data_dir` whatever store the tests run
    /// against: for tests of the local store's own log and files.
    pub async fn start_local(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Host> {
        Host::spawn(data_dir, &[], args, env).await
    }

    async fn spawn(
        data_dir: &Path,
        store: &[String],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Host> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(store)
            .args(args)
            .envs(env.iter().copied())
            .env("SANDFLOW_LOG", host_log_filter())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning the host")?;
        let stdout = child.stdout.take().context("host stdout")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await??;
        let Some(base) = line.trim().strip_prefix("sandflow listening on ") else {
            let _ = child.kill();
            bail!("host did not start: {line:?}");
        };
        Ok(Host { child, base: base.to_owned(), _temp: None, http: reqwest::Client::new(), token: None })
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> anyhow::Result<bool> {
        Ok(self.child.try_wait()?.is_none())
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("the host did not exit within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process at once (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the host to stop (SIGTERM) and waits until it has.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        self.child.wait()?;
        Ok(())
    }

    /// Runs the CLI against this host with `args`; its stdout, or an error
    /// with its stderr when it fails.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
            .args(args)
            .args(["--server", &self.base])
            .output()?;
        anyhow::ensure!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Sends a request; the status and the JSON body (Null when not JSON).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(StatusCode, Value)> {
        let req = match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        };
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(StatusCode, Value)> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body)).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let req =
            self.http.post(format!("{}{path}", self.base)).header("content-type", content_type).body(body);
        self.send(req).await
    }

    /// Uploads a built component; fails unless the host accepts it.
    pub async fn upload(&self, name: &str) -> anyhow::Result<Value> {
        let bytes = std::fs::read(component(name))?;
        let (status, body) = self.post_raw("/v1/modules", bytes, "application/wasm").await?;
        if !status.is_success() {
            bail!("upload of {name} answered {status}: {body}");
        }
        Ok(body)
    }

    /// Every log line of job `id`, following the pages.
    pub async fn logs(&self, id: &str) -> anyhow::Result<Value> {
        let mut lines = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let query = cursor.as_ref().map(|c| format!("?cursor={c}")).unwrap_or_default();
            let (status, page) = self.get(&format!("/v1/jobs/{id}/logs{query}")).await?;
            if status != StatusCode::OK {
                bail!("logs of {id} answered {status}: {page}");
            }
            lines.extend(page["logs"].as_array().cloned().unwrap_or_default());
            cursor = page["cursor"].as_str().map(str::to_owned);
            if page["more"] != true {
                return Ok(Value::Array(lines));
            }
        }
    }

    /// Creates the cluster `slug`; fails unless it was created.
    pub async fn create_cluster(&self, slug: &str) -> anyhow::Result<()> {
        let (status, body) = self.post("/v1/clusters", &json!({"name": slug, "slug": slug})).await?;
        if status != StatusCode::CREATED {
            bail!("creating cluster {slug} answered {status}: {body}");
        }
        Ok(())
    }

    /// Submits a job; fails unless it was created. Returns the job's id.
    pub async fn submit(&self, task: &str, input: Value) -> anyhow::Result<String> {
        let (status, body) =
            self.post("/v1/jobs", &json!({"name": task, "task": task, "input": input})).await?;
        if status != StatusCode::CREATED {
            bail!("submit of {task} answered {status}: {body}");
        }
        Ok(body["id"].as_str().context("job id")?.to_owned())
    }

    /// Polls the job until it completes, fails or is canceled.
    pub async fn wait(&self, id: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, job) = self.get(&format!("/v1/jobs/{id}")).await?;
            if status != StatusCode::OK {
                bail!("job {id} answered {status}: {job}");
            }
            if matches!(job["state"].as_str(), Some("completed" | "failed" | "canceled")) {
                return Ok(job);
            }
            if Instant::now() > deadline {
                bail!("job {id} did not finish within {timeout:?}: {job}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls the job until it has ended: completed, or failed or canceled
    /// with no attempt still running (a halted job lets running attempts
    /// finish).
    pub async fn wait_ended(&self, id: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.wait(id, timeout).await?;
            if job["task_counts"]["running"] == 0 {
                return Ok(job);
            }
            if Instant::now() > deadline {
                bail!("job {id} still runs attempts after {timeout:?}: {job}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The tasks of a job.
    pub async fn tasks(&self, id: &str) -> anyhow::Result<Vec<Value>> {
        let (status, tasks) = self.get(&format!("/v1/jobs/{id}/tasks")).await?;
        if status != StatusCode::OK {
            bail!("tasks of {id} answered {status}: {tasks}");
        }
        Ok(tasks.as_array().cloned().unwrap_or_default())
    }

    /// Waits for the one-task job `id` to fail; answers its task's error.
    pub async fn failure(&self, id: &str, timeout: Duration) -> anyhow::Result<String> {
        let job = self.wait(id, timeout).await?;
        if job["state"] != "failed" {
            bail!("job {id} ended {}, not failed", job["state"]);
        }
        Ok(self.tasks(id).await?[0]["error"].as_str().unwrap_or("").to_owned())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 20 ms until it holds; fails, naming `what`, after
/// `timeout`.
pub async fn until(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !check().await? {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Parses an RFC 3339 timestamp of the API.
pub fn time(v: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(v.as_str().expect("a timestamp")).expect("RFC 3339")
}

/// The tasks whose task type name is `name`.
pub fn of_type<'a>(tasks: &'a [Value], name: &str) -> Vec<&'a Value> {
    tasks.iter().filter(|t| t["task_type"]["name"] == name).collect()
}

/// A `sandflow runner` process serving one cluster of a host.
pub struct Runner {
    child: Child,
    /// Its stderr (its log), collected as it runs.
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Runner {
    /// Starts a runner of `cluster` for `host` with `args`; returns once it
    /// serves.
    pub async fn start(
        host: &Host,
        cluster: &str,
        cache_dir: &Path,
        args: &[&str],
    ) -> anyhow::Result<Runner> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
            .args(["runner", "--server", &host.base, "--cluster", cluster, "--cache-dir"])
            .arg(cache_dir)
            .args(args)
            .env("SANDFLOW_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning a runner")?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().context("runner stderr")?;
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let stdout = child.stdout.take().context("runner stdout")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await??;
        if !line.starts_with("sandflow runner ") {
            let _ = child.kill();
            bail!("runner did not start: {line:?}");
        }
        Ok(Runner { child, log })
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Kills it at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks it to stop (SIGTERM) and waits for it to exit; its exit status.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.kill();
    }
}
