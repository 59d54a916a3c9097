//! Store faults that really happen: the data directory on a small tmpfs
//! (mounted by the test; CI runs as root) fills up while jobs come in. The
//! host stops acknowledging at once (503 `store_unavailable`), says so on
//! `/healthz`, exits non-zero, and after space is freed a restart completes
//! every acknowledged job and has none of the refused ones.
//!
//! These are faults of the local store's log and files, so their hosts keep
//! the store in the data directory whatever store the suite runs against
//! ([`Host::start_local`]); `postgres.rs` has the database's faults.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::Host;

const WAIT: Duration = Duration::from_secs(120);

/// A tmpfs of `mib` MiB mounted on a fresh directory; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u32) -> anyhow::Result<Tmpfs> {
        let dir = tempfile::tempdir()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "sandflow-test"])
            .arg(dir.path())
            .status()?;
        anyhow::ensure!(status.success(), "mount a tmpfs (the fault tests run as root): {status}");
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Fills the file system of `dir` with a file; answers its path.
fn fill(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path)?;
    let block = vec![7u8; 1 << 20];
    loop {
        if let Err(e) = file.write_all(&block).and_then(|()| file.sync_data()) {
            anyhow::ensure!(e.raw_os_error() == Some(28), "filling stopped with {e}, not ENOSPC");
            return Ok(path);
        }
    }
}

#[tokio::test]
async fn a_full_disk_stops_acknowledgements_and_a_restart_completes_what_was_acknowledged()
-> anyhow::Result<()> {
    let disk = Tmpfs::mount(64)?;
    let data = disk.path().join("data");
    let args = ["--runners", "2", "--shutdown-grace", "2s"];
    let mut host = Host::start_local(&data, &args, &[]).await?;
    host.upload("fanout").await?;
    let first = host.submit("Root", json!({"num_subtasks": 100})).await?;
    assert_eq!(host.wait(&first, WAIT).await?["state"], "completed");
    let filler = fill(disk.path())?;
    // Jobs with 256 KiB inputs, until the log has no room left.
    let pad = "p".repeat(256 << 10);
    let mut acknowledged = vec![first];
    let refusal = loop {
        let body = json!({"name": "pad", "task": "Root", "input": {"num_subtasks": 3, "pad": pad}});
        let (status, answer) = host.post("/v1/jobs", &body).await?;
        match status {
            StatusCode::CREATED => acknowledged.push(answer["id"].as_str().unwrap_or_default().to_owned()),
            _ => break (status, answer),
        }
        anyhow::ensure!(acknowledged.len() < 1000, "a full disk never refused a submission");
    };
    assert_eq!(refusal.0, StatusCode::SERVICE_UNAVAILABLE, "{}", refusal.1);
    assert_eq!(refusal.1["error"]["code"], "store_unavailable");
    let (status, health) = host.get("/healthz").await?;
    assert_eq!(
        (status, &health["error"]["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("store_unavailable"))
    );
    let (status, _) =
        host.post("/v1/jobs", &json!({"name": "late", "task": "Root", "input": {"num_subtasks": 1}})).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "nothing is acknowledged after the fault");
    let exit = host.wait_exit(Duration::from_secs(30)).await?;
    assert!(!exit.success(), "a host whose store failed exits non-zero: {exit}");

    std::fs::remove_file(filler)?;
    let host = Host::start_local(&data, &args, &[]).await?;
    for id in &acknowledged {
        assert_eq!(host.wait(id, WAIT).await?["state"], "completed", "acknowledged job {id}");
    }
    let (_, jobs) = host.get("/v1/jobs?limit=1000").await?;
    let listed = jobs["jobs"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(listed, acknowledged.len(), "only acknowledged jobs exist after the restart");
    Ok(())
}

/// The offsets of the records of log file `path` (its format: a 16-byte
/// header, then per record a length, a checksum and the payload).
fn record_offsets(path: &Path) -> anyhow::Result<Vec<usize>> {
    let bytes = std::fs::read(path)?;
    let (mut at, mut out) = (16, Vec::new());
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into()?) as usize;
        if len == 0 {
            break;
        }
        out.push(at);
        at += 8 + len;
    }
    Ok(out)
}

#[tokio::test]
async fn a_corrupt_log_record_stops_start_up_until_recovery_is_asked_for() -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let data = temp.path().join("data");
    let mut host = Host::start_local(&data, &["--runners", "0"], &[]).await?;
    host.upload("probe").await?;
    for i in 0..20 {
        let (status, body) =
            host.post("/v1/jobs", &json!({"name": format!("job {i}"), "task": "Noop", "input": {}})).await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    host.kill();
    let wal = data.join("db/wal");
    let mut logs: Vec<PathBuf> =
        std::fs::read_dir(&wal)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    logs.retain(|p| p.extension().is_some_and(|x| x == "wal"));
    logs.sort();
    // The file holding the submissions: the one with the most records.
    let mut counted = Vec::new();
    for path in logs {
        counted.push((record_offsets(&path)?, path));
    }
    counted.sort_by_key(|(records, _)| records.len());
    let (records, log) = counted.pop().ok_or_else(|| anyhow::anyhow!("no log file"))?;
    anyhow::ensure!(records.len() > 4, "{} records", records.len());
    let bad = records[records.len() / 2];
    let mut bytes = std::fs::read(&log)?;
    bytes[bad + 12] ^= 0x20;
    std::fs::write(&log, &bytes)?;

    let out = Command::new(env!("CARGO_BIN_EXE_sandflow-under-test"))
        .args(["serve", "--listen", "127.0.0.1:0", "--runners", "0", "--data-dir"])
        .arg(&data)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a corrupt log must stop start-up");
    let expected = format!("the write-ahead log {} has a bad record at byte {bad}", log.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("start with `serve --recover-log`"), "{stderr}");

    let host = Host::start_local(&data, &["--runners", "0", "--recover-log"], &[]).await?;
    let (status, jobs) = host.get("/v1/jobs?limit=100").await?;
    assert_eq!(status, StatusCode::OK);
    let kept = jobs["jobs"].as_array().map(Vec::len).unwrap_or(0);
    assert!(kept < 20, "what followed the corrupt record is gone: {kept} jobs");
    let (status, _) = host.get("/healthz").await?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn the_largest_groups_the_writer_builds_replay_after_kill_9() -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let data = temp.path().join("data");
    let mut host = Host::start_local(&data, &["--runners", "0"], &[]).await?;
    host.upload("fanout").await?;
    // Two bursts of 80 submissions of 1 MB inputs: 80 MB arriving together
    // is more than one group takes (64 MiB, far below the 4,096-command
    // bound), so the groups written are as large as the writer builds them.
    // (That the bound splits them is not observed here; replay is.)
    let pad = "p".repeat(1_000_000 - 64);
    let body = json!({"name": "big", "task": "Root", "input": {"num_subtasks": 0, "pad": pad}});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let answers = futures_util::future::join_all((0..80).map(|_| host.post("/v1/jobs", &body))).await;
        for answer in answers {
            let (status, job) = answer?;
            assert_eq!(status, StatusCode::CREATED, "{job}");
            ids.push(job["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    host.kill();
    let host = Host::start_local(&data, &["--runners", "0"], &[]).await?;
    for id in &ids {
        let (status, job) = host.get(&format!("/v1/jobs/{id}")).await?;
        assert_eq!(status, StatusCode::OK, "acknowledged job {id} after the restart: {job}");
    }
    Ok(())
}

#[tokio::test]
async fn a_failed_sync_is_neither_acknowledged_nor_replayed() -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let data = temp.path().join("data");
    // The 40th sync of the log fails without syncing (a test-build hook):
    // its bytes are in the page cache and would reach the disk anyway.
    let fault = [("SANDFLOW_FAULT_SYNC_AFTER", "40")];
    let mut host = Host::start_local(&data, &["--runners", "0", "--shutdown-grace", "1s"], &fault).await?;
    host.upload("probe").await?;
    let mut acknowledged = Vec::new();
    let refusal = loop {
        let body = json!({"name": "one", "task": "Noop", "input": {}});
        let (status, answer) = host.post("/v1/jobs", &body).await?;
        if status != StatusCode::CREATED {
            break (status, answer);
        }
        acknowledged.push(answer["id"].as_str().unwrap_or_default().to_owned());
        anyhow::ensure!(acknowledged.len() < 100, "the injected failure never came");
    };
    assert_eq!(
        (refusal.0, &refusal.1["error"]["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("store_unavailable"))
    );
    assert!(!host.wait_exit(Duration::from_secs(30)).await?.success());
    let host = Host::start_local(&data, &["--runners", "0"], &[]).await?;
    let (_, jobs) = host.get("/v1/jobs?limit=1000").await?;
    let listed: Vec<&str> =
        jobs["jobs"].as_array().into_iter().flatten().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(listed.len(), acknowledged.len(), "the refused submission was not replayed: {listed:?}");
    for id in &acknowledged {
        assert!(listed.contains(&id.as_str()), "acknowledged job {id} is kept");
    }
    Ok(())
}
