//! Outbound HTTP from tasks: denied unless allowed, checked on the request
//! actually sent, redirects not followed. The `movies` example fetches its
//! catalog from a small HTTP server on 127.0.0.1 started by the test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{Host, component};

const WAIT: Duration = Duration::from_secs(60);

/// A tiny HTTP server: `/catalog.json` answers a catalog, `/redirect` a 302
/// to `redirect_to`. It records the path and `Host` of every request.
struct CatalogServer {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl CatalogServer {
    async fn start(redirect_to: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (record, redirect_to) = (record.clone(), redirect_to.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let host = head
                        .lines()
                        .find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: ")))
                        .unwrap_or("")
                        .to_owned();
                    record.lock().unwrap().push((path.clone(), host));
                    let answer = if path == "/redirect" {
                        format!(
                            "HTTP/1.1 302 Found\r\nlocation: {redirect_to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                    } else {
                        let body = r#"{"Dune": "22 Oct 2021", "The Matrix": "31 Mar 1999"}"#;
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Ok(CatalogServer { port, seen })
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn run_movies(host: &Host, catalog_url: &str) -> anyhow::Result<(String, Vec<serde_json::Value>)> {
    let input = json!({"titles": ["Dune"], "catalog_url": catalog_url});
    let id = host.submit("MoviesStats@v1.0", input).await?;
    let job = host.wait(&id, WAIT).await?;
    Ok((job["state"].as_str().unwrap_or("").to_owned(), host.tasks(&id).await?))
}

#[tokio::test]
async fn tasks_reach_only_allowed_hosts_and_redirects_cannot_widen_that() -> anyhow::Result<()> {
    let forbidden = CatalogServer::start(String::new()).await?;
    let allowed = CatalogServer::start(format!("http://127.0.0.1:{}/catalog.json", forbidden.port)).await?;
    let host = Host::start(&["--runners", "2"]).await?;
    let bytes = std::fs::read(component("movies-v1.1"))?;
    let query = format!("/v1/modules?allow_http=127.0.0.1:{}", allowed.port);
    let (status, module) = host.post_raw(&query, bytes, "application/wasm").await?;
    assert_eq!(status, 201, "{module}");
    assert_eq!(module["allow_http"], json!([format!("127.0.0.1:{}", allowed.port)]));

    let (state, tasks) =
        run_movies(&host, &format!("http://127.0.0.1:{}/catalog.json", allowed.port)).await?;
    assert_eq!(state, "completed", "{tasks:?}");
    let lookup = tasks.iter().find(|t| t["task_type"]["name"] == "PrintMovieStats").unwrap();
    assert_eq!(lookup["display"], "Dune", "found in the fetched catalog, not the bundled one");
    let authority = format!("127.0.0.1:{}", allowed.port);
    assert_eq!(allowed.requests(), vec![("/catalog.json".to_owned(), authority.clone())]);

    let (state, tasks) =
        run_movies(&host, &format!("http://127.0.0.1:{}/catalog.json", forbidden.port)).await?;
    assert_eq!(state, "failed");
    let lookup = tasks.iter().find(|t| t["task_type"]["name"] == "PrintMovieStats").unwrap();
    let expected =
        format!("HTTP request to 127.0.0.1:{} denied: it is not on the task's allow-list", forbidden.port);
    assert_eq!(lookup["error"], expected.as_str());

    let (state, tasks) = run_movies(&host, &format!("http://{authority}/redirect")).await?;
    assert_eq!(state, "failed");
    let lookup = tasks.iter().find(|t| t["task_type"]["name"] == "PrintMovieStats").unwrap();
    assert_eq!(lookup["error"], format!("catalog http://{authority}/redirect answered 302").as_str());
    assert!(
        forbidden.requests().is_empty(),
        "nothing reached the forbidden host: {:?}",
        forbidden.requests()
    );
    Ok(())
}

#[tokio::test]
async fn a_host_wide_allow_list_applies_to_every_module() -> anyhow::Result<()> {
    let server = CatalogServer::start(String::new()).await?;
    let allow = format!("127.0.0.1:{}", server.port);
    let host = Host::start(&["--runners", "1", "--allow-http", &allow]).await?;
    host.upload("movies-v1.1").await?;
    let (state, tasks) = run_movies(&host, &format!("http://{allow}/catalog.json")).await?;
    assert_eq!(state, "completed", "{tasks:?}");
    assert_eq!(server.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_allowed_name_that_resolves_to_this_machine_is_refused() -> anyhow::Result<()> {
    let server = CatalogServer::start(String::new()).await?;
    // `localhost` is allowed by name; it resolves to 127.0.0.1, which only
    // an entry naming that address reaches.
    let by_name = format!("localhost:{}", server.port);
    let host = Host::start(&["--runners", "1", "--allow-http", &by_name]).await?;
    host.upload("movies-v1.1").await?;
    let (state, tasks) = run_movies(&host, &format!("http://{by_name}/catalog.json")).await?;
    assert_eq!(state, "failed");
    let lookup = tasks.iter().find(|t| t["task_type"]["name"] == "PrintMovieStats").unwrap();
    let expected = format!(
        "HTTP request to {by_name} denied: the name resolves to an address of this machine or a private network, which only an allow-list entry naming the address reaches"
    );
    assert_eq!(lookup["error"], expected.as_str());
    assert!(server.requests().is_empty(), "nothing reached the server: {:?}", server.requests());
    Ok(())
}

#[tokio::test]
async fn movies_sends_its_api_key_secret_and_fetches_a_page_once_per_job() -> anyhow::Result<()> {
    let server = CatalogServer::start(String::new()).await?;
    let allow = format!("127.0.0.1:{}", server.port);
    let host = Host::start(&["--runners", "1"]).await?;
    let key = "omdb-key-7781";
    let set = reqwest::Client::new().put(format!("{}/v1/secrets/CATALOG_KEY", host.base)).body(key);
    assert_eq!(host.send(set).await?.0, 201);
    let bytes = std::fs::read(component("movies-v1.1"))?;
    let query = format!("/v1/modules?allow_http={allow}&secrets=CATALOG_KEY");
    let (status, module) = host.post_raw(&query, bytes, "application/wasm").await?;
    assert_eq!((status.as_u16(), &module["secrets"]), (201, &json!(["CATALOG_KEY"])), "{module}");
    let url = format!("http://{allow}/catalog.json");
    let input = json!({"titles": ["Dune", "The Matrix", "Shrek 2"], "catalog_url": url, "api_key_secret": "CATALOG_KEY"});
    let id = host.submit("MoviesStats@v1.1", input).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    // One runner runs the lookups one after another: the first fetches the
    // page with the key, the others read it from the job cache.
    assert_eq!(server.requests(), vec![(format!("/catalog.json?apikey={key}"), allow.clone())]);
    let displays: Vec<_> =
        host.tasks(&id).await?.iter().filter_map(|t| t["display"].as_str().map(str::to_owned)).collect();
    assert!(
        displays.contains(&"Dune".to_owned()) && displays.contains(&"NotFound: Shrek 2".to_owned()),
        "{displays:?}"
    );
    let logs = reqwest::get(format!("{}/v1/jobs/{id}/logs?level=debug", host.base)).await?.text().await?;
    assert!(logs.contains("?apikey=[redacted CATALOG_KEY]") && !logs.contains(key), "{logs}");
    let (_, cached) = host.get(&format!("/v1/jobs/{id}/cache?prefix=catalog/")).await?;
    assert_eq!(cached["keys"].as_array().map(Vec::len), Some(1), "{cached}");
    Ok(())
}
