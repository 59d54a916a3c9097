//! A typed HTTP client of the host's API.

use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{JobPage, JobView, LogPageView, ModuleView, Retried, TaskView, UploadView};

/// A client-side failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host could not be reached or answered garbage.
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The host answered with an error.
    #[error("{message} ({status}, {code})")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The error code.
        code: String,
        /// The error message.
        message: String,
    },
    /// A local file could not be read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Bad command-line input.
    #[error("{0}")]
    Usage(String),
    /// The server failed.
    #[error(transparent)]
    Server(#[from] crate::server::Error),
    /// The runner's sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::Error),
    /// A store opened by a `store` command failed.
    #[error("{location}: {source}")]
    Store {
        /// Where the store is (without a password).
        location: String,
        /// The cause.
        source: crate::store::Error,
    },
}

/// Talks to one host.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    /// A client of the host at `base` (e.g. `http://127.0.0.1:7700`).
    pub fn new(base: &str, token: Option<String>) -> Self {
        Client { base: base.trim_end_matches('/').to_owned(), http: reqwest::Client::new(), token }
    }

    /// Sends `req` with the token; the response when it succeeded, else the
    /// API's error.
    async fn call(&self, req: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response, Error> {
        let http = |source| Error::Http { url: url.to_owned(), source };
        let req = match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        };
        let resp = req.send().await.map_err(http)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let field = |k: &str| body["error"][k].as_str().unwrap_or("").to_owned();
        Err(Error::Api { status, code: field("code"), message: field("message") })
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder, url: &str) -> Result<T, Error> {
        let resp = self.call(req, url).await?;
        resp.json().await.map_err(|source| Error::Http { url: url.to_owned(), source })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url), &url).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, Error> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(&url).json(body), &url).await
    }

    /// Uploads a component in the background (`?background=true`): where
    /// the upload stands.
    pub async fn upload_module(&self, bytes: Vec<u8>, secrets: Option<&str>) -> Result<UploadView, Error> {
        let url = format!("{}/v1/modules", self.base);
        let mut req = self.http.post(&url).header("content-type", "application/wasm").body(bytes);
        req = req.query(&[("background", "true")]);
        if let Some(names) = secrets {
            req = req.query(&[("secrets", names)]);
        }
        self.send(req, &url).await
    }

    /// Where background upload `id` stands.
    pub async fn upload_status(&self, id: &str) -> Result<UploadView, Error> {
        self.get(&format!("/v1/modules/uploads/{id}")).await
    }

    /// Sets secret `name` to `value`.
    pub async fn set_secret(&self, name: &str, value: Vec<u8>) -> Result<(), Error> {
        let url = format!("{}/v1/secrets/{name}", self.base);
        self.call(self.http.put(&url).header("content-type", "text/plain").body(value), &url).await.map(drop)
    }

    /// Every secret's name and times.
    pub async fn secrets(&self) -> Result<Vec<serde_json::Value>, Error> {
        self.get("/v1/secrets").await
    }

    /// Deletes secret `name`.
    pub async fn delete_secret(&self, name: &str) -> Result<(), Error> {
        let url = format!("{}/v1/secrets/{name}", self.base);
        self.call(self.http.delete(&url), &url).await.map(drop)
    }

    /// Every uploaded module.
    pub async fn modules(&self) -> Result<Vec<ModuleView>, Error> {
        self.get("/v1/modules").await
    }

    /// Every cluster.
    pub async fn clusters(&self) -> Result<Vec<serde_json::Value>, Error> {
        self.get("/v1/clusters").await
    }

    /// Creates a cluster; the body is the API's creation object.
    pub async fn create_cluster(&self, body: &serde_json::Value) -> Result<serde_json::Value, Error> {
        self.post("/v1/clusters", body).await
    }

    /// Deletes job `id`, which must have ended.
    pub async fn delete_job(&self, id: &str) -> Result<(), Error> {
        let url = format!("{}/v1/jobs/{id}", self.base);
        self.call(self.http.delete(&url), &url).await.map(drop)
    }

    /// Changes cluster `slug`'s name or description (`body`).
    pub async fn update_cluster(
        &self,
        slug: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        let url = format!("{}/v1/clusters/{slug}", self.base);
        self.send(self.http.patch(&url).json(body), &url).await
    }

    /// Deletes cluster `slug`.
    pub async fn delete_cluster(&self, slug: &str) -> Result<(), Error> {
        let url = format!("{}/v1/clusters/{slug}", self.base);
        self.call(self.http.delete(&url), &url).await.map(drop)
    }

    /// Every automation.
    pub async fn automations(&self) -> Result<Vec<serde_json::Value>, Error> {
        self.get("/v1/automations").await
    }

    /// Automation `id`.
    pub async fn automation(&self, id: &str) -> Result<serde_json::Value, Error> {
        self.get(&format!("/v1/automations/{id}")).await
    }

    /// Creates an automation; the body is the API's creation object.
    pub async fn create_automation(&self, body: &serde_json::Value) -> Result<serde_json::Value, Error> {
        self.post("/v1/automations", body).await
    }

    /// Pauses or resumes automation `id`.
    pub async fn pause_automation(&self, id: &str, paused: bool) -> Result<serde_json::Value, Error> {
        let url = format!("{}/v1/automations/{id}", self.base);
        self.send(self.http.patch(&url).json(&serde_json::json!({ "paused": paused })), &url).await
    }

    /// Deletes automation `id`, canceling its unfinished jobs if asked.
    pub async fn delete_automation(&self, id: &str, cancel_jobs: bool) -> Result<serde_json::Value, Error> {
        let url = format!("{}/v1/automations/{id}", self.base);
        self.send(self.http.delete(&url).query(&[("cancel_jobs", cancel_jobs)]), &url).await
    }

    /// Every registered task type.
    pub async fn task_types(&self) -> Result<Vec<serde_json::Value>, Error> {
        self.get("/v1/task-types").await
    }

    /// Submits a job; the body is the API's submission object.
    pub async fn submit(&self, body: &serde_json::Value) -> Result<JobView, Error> {
        self.post("/v1/jobs", body).await
    }

    /// A new job with the root task of job `id` (`body`: name, input
    /// overrides, retries).
    pub async fn clone_job(&self, id: &str, body: &serde_json::Value) -> Result<JobView, Error> {
        self.post(&format!("/v1/jobs/{id}/clone"), body).await
    }

    /// The job `id`.
    pub async fn job(&self, id: &str) -> Result<JobView, Error> {
        self.get(&format!("/v1/jobs/{id}")).await
    }

    /// Cancels job `id`.
    pub async fn cancel(&self, id: &str, force: bool) -> Result<JobView, Error> {
        self.post(&format!("/v1/jobs/{id}/cancel?force={force}"), &serde_json::json!({})).await
    }

    /// Follows job `id`'s server-sent events, calling `each` with every state
    /// of the job until the stream ends.
    pub async fn watch(&self, id: &str, mut each: impl FnMut(&JobView)) -> Result<(), Error> {
        let url = format!("{}/v1/jobs/{id}/events", self.base);
        let mut resp = self.call(self.http.get(&url), &url).await?;
        let http = |source| Error::Http { url: url.clone(), source };
        let mut buffer = String::new();
        while let Some(chunk) = resp.chunk().await.map_err(http)? {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                let data: String =
                    event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
                if let Ok(job) = serde_json::from_str::<JobView>(&data) {
                    each(&job);
                }
            }
        }
        Ok(())
    }

    /// The SVG diagram of job `id`.
    pub async fn diagram(&self, id: &str, theme: &str) -> Result<String, Error> {
        let url = format!("{}/v1/jobs/{id}/diagram.svg?theme={theme}", self.base);
        let resp = self.call(self.http.get(&url), &url).await?;
        resp.text().await.map_err(|source| Error::Http { url, source })
    }

    /// The output of job `id` (its root task's), or of its task `task`.
    pub async fn output(&self, id: &str, task: Option<&str>) -> Result<Vec<u8>, Error> {
        let url = match task {
            Some(task) => format!("{}/v1/jobs/{id}/tasks/{task}/output", self.base),
            None => format!("{}/v1/jobs/{id}/output", self.base),
        };
        let resp = self.call(self.http.get(&url), &url).await?;
        Ok(resp.bytes().await.map_err(|source| Error::Http { url, source })?.to_vec())
    }

    /// Retries job `id`.
    pub async fn retry(&self, id: &str) -> Result<Retried, Error> {
        self.post(&format!("/v1/jobs/{id}/retry"), &serde_json::json!({})).await
    }

    /// One page of jobs; `query` holds the query-string pairs.
    pub async fn jobs(&self, query: &[(&str, String)]) -> Result<JobPage, Error> {
        let url = format!("{}/v1/jobs", self.base);
        self.send(self.http.get(&url).query(query), &url).await
    }

    /// The tasks of job `id`.
    pub async fn tasks(&self, id: &str) -> Result<Vec<TaskView>, Error> {
        self.get(&format!("/v1/jobs/{id}/tasks")).await
    }

    /// The logs of job `id`, filtered.
    pub async fn logs(
        &self,
        id: &str,
        task: Option<&str>,
        level: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<LogPageView, Error> {
        let mut query = vec!["limit=10000".to_owned()];
        if let Some(c) = cursor {
            query.push(format!("cursor={c}"));
        }
        if let Some(t) = task {
            query.push(format!("task={t}"));
        }
        if let Some(l) = level {
            query.push(format!("level={l}"));
        }
        self.get(&format!("/v1/jobs/{id}/logs?{}", query.join("&"))).await
    }
}
