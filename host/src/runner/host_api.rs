//! The host's API as a remote runner's attempts reach it (dependencies'
//! outputs, the job cache, secrets): one client, the host's address and the
//! runner's token, and the host's refusals turned into messages for the
//! guest.

/// Where the host is and how to call it.
#[derive(Clone)]
pub struct HostApi {
    pub http: reqwest::Client,
    pub server: String,
    pub token: Option<String>,
}

impl HostApi {
    /// A request to `path` on the host, with the runner's token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.server));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }
}

/// The host's answer to a refused request, as `(STATUS): MESSAGE`.
pub async fn refusal(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let message = body["error"]["message"].as_str().unwrap_or("no message");
    format!("({status}): {message}")
}
