//! Connection floods starve nobody: idle connections and a slow-loris
//! client are closed at the head timeout while everyone else is served,
//! and a stopping host ends event streams instead of waiting for them.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(60);

/// Lets this process (and the hosts it starts) open `n` descriptors.
fn allow_descriptors(n: u64) -> anyhow::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let want = limit.maximum.map_or(n, |hard| hard.min(n.max(limit.current.unwrap_or(0))));
    setrlimit(Resource::Nofile, Rlimit { current: Some(want), maximum: limit.maximum })?;
    anyhow::ensure!(want >= n, "the hard descriptor limit {:?} is below {n}", limit.maximum);
    Ok(())
}

/// Whether the host closes `stream` before `deadline` (reads until EOF).
async fn closed_by(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn idle_connections_and_a_slow_loris_starve_nobody_and_are_closed() -> anyhow::Result<()> {
    allow_descriptors(8192)?;
    let host = Host::start(&["--runners", "2", "--header-timeout", "2s"]).await?;
    host.upload("fanout").await?;
    let addr = host.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(TcpStream::connect(&addr).await?);
    }
    // A client sending its request's head one byte at a time.
    let mut loris = TcpStream::connect(&addr).await?;
    let head = format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nx-slow: {}\r\n\r\n", "z".repeat(200));
    let slow = tokio::spawn(async move {
        for byte in head.as_bytes() {
            if loris.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    let opened = Instant::now();
    for _ in 0..5 {
        let started = Instant::now();
        let (status, _) = host.get("/healthz").await?;
        assert_eq!(status, 200);
        assert!(started.elapsed() < Duration::from_millis(100), "healthz took {:?}", started.elapsed());
    }
    let id = host.submit("Root", json!({"num_subtasks": 100})).await?;
    assert_eq!(host.wait(&id, WAIT).await?["state"], "completed");
    // Everyone who sent nothing (or too slowly) is closed at the timeout.
    let deadline = opened + Duration::from_secs(10);
    for (i, stream) in idle.iter_mut().enumerate() {
        assert!(closed_by(stream, deadline).await, "idle connection {i} is still open");
    }
    assert!(slow.await?, "the slow-loris client was never cut off");
    Ok(())
}

#[tokio::test]
async fn a_stopping_host_ends_event_streams_and_half_sent_requests() -> anyhow::Result<()> {
    let mut host = Host::start(&["--runners", "1", "--shutdown-grace", "20s"]).await?;
    host.upload("probe").await?;
    let id = host.submit("Sleep", json!({"ms": 600_000, "children": 0})).await?;
    let mut events = reqwest::get(format!("{}/v1/jobs/{id}/events", host.base)).await?;
    assert!(events.chunk().await?.is_some(), "the first event arrives");
    // And a client stuck half-way through its request's head.
    let addr = host.base.trim_start_matches("http://").to_owned();
    let mut half = TcpStream::connect(&addr).await?;
    half.write_all(format!("POST /v1/jobs HTTP/1.1\r\nhost: {addr}\r\ncontent-").as_bytes()).await?;
    let started = Instant::now();
    host.stop()?;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the host took {took:?} to stop with a follower and a half-sent request"
    );
    Ok(())
}
