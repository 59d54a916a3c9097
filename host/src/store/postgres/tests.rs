//! The PostgreSQL backend against a private server (`sandflow-test-postgres`):
//! group commits read back through pages in both directions, reopen, the
//! store's lock, fencing, module bytes.

use std::ops::Bound;
use std::time::Duration;

use super::*;
use crate::store::{Location, Store};

fn database() -> String {
    sandflow_test_postgres::shared().database().unwrap()
}

fn put(k: String, v: &[u8]) -> KvWrite {
    (k.into_bytes(), Some(v.to_vec()))
}

fn keys(entries: Entries) -> Vec<String> {
    entries.map(|e| String::from_utf8(e.unwrap().0.to_vec()).unwrap()).collect()
}

/// Runs `sql` on a connection of its own.
async fn execute(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = connection.await;
}

#[tokio::test]
async fn commits_read_back_in_pages_both_ways_and_survive_reopen() {
    let url = database();
    {
        let kv = open(&url).unwrap();
        let writes: Vec<KvWrite> = (0..1500).map(|i| put(format!("k{i:05}"), &vec![b'x'; i % 7])).collect();
        kv.apply(vec![writes]).unwrap();
        kv.sync().await.unwrap();
        kv.apply(vec![vec![(b"k00001".to_vec(), None), put("k00002".into(), b"new")]]).unwrap();
        assert_eq!(kv.get("k00002").unwrap().unwrap().as_ref(), b"new", "visible before its commit");
        assert_eq!(kv.get("k00001").unwrap(), None, "deleted before its commit");
        assert_eq!(kv.scan_prefix("k").count(), 1499);
        kv.sync().await.unwrap();
        assert!(kv.written_bytes() > 1500 * 6);
    }
    let kv = open(&url).unwrap();
    let all = keys(kv.scan_prefix("k"));
    assert_eq!(all.len(), 1499);
    assert_eq!(&all[..3], ["k00000", "k00002", "k00003"]);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "in key order across pages");
    assert_eq!(kv.get("k00002").unwrap().unwrap().as_ref(), b"new");
    assert_eq!(kv.get("k00007").unwrap().unwrap().as_ref(), b"", "an empty value is a value");
    let range = (Bound::Excluded(b"k00600".to_vec()), Bound::Included(b"k01300".to_vec()));
    let down = keys(kv.range(range, true));
    assert_eq!((down.len(), down[0].as_str(), down[699].as_str()), (700, "k01300", "k00601"));
}

#[tokio::test]
async fn one_host_writes_at_a_time_and_a_fenced_one_commits_nothing() {
    let url = database();
    let first = open(&url).unwrap();
    assert!(matches!(open_waiting(&url, Some(Duration::ZERO)).err(), Some(Error::Held)), "the lock is held");
    let started = std::time::Instant::now();
    assert!(matches!(open_waiting(&url, Some(Duration::from_millis(300))).err(), Some(Error::Held)));
    assert!(started.elapsed() >= Duration::from_millis(300), "waited for the lock");
    // Another host took over while this one kept its connection (a lease
    // raised behind its back): its next commit is refused and faults it.
    execute(&url, "UPDATE sandflow_lease SET epoch = epoch + 1").await;
    first.apply(vec![vec![put("late".into(), b"x")]]).unwrap();
    let refused = first.sync().await.unwrap_err();
    assert!(matches!(refused, Error::Unavailable(ref why) if why.contains("took over")), "{refused}");
    assert!(first.fault().borrow().is_some());
    drop(first);
    let second = open(&url).unwrap();
    assert_eq!(second.get("late").unwrap(), None, "the fenced commit left nothing");
}

#[tokio::test]
async fn losing_the_locks_connection_stops_writes_at_once() {
    let url = database();
    let kv = open(&url).unwrap();
    execute(
        &url,
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await;
    let mut fault = kv.fault();
    tokio::time::timeout(Duration::from_secs(10), fault.wait_for(Option::is_some)).await.unwrap().unwrap();
    assert!(kv.apply(vec![vec![put("k".into(), b"x")]]).is_err(), "no write after the lock is lost");
    let next = open(&url).unwrap();
    assert!(next.get("k").unwrap().is_none());
}

#[test]
fn module_bytes_are_stored_once_and_checked_when_read() {
    let kv = open(&database()).unwrap();
    let bytes = b"\0asm component bytes".to_vec();
    let digest = Digest::of(&bytes);
    assert_eq!(kv.read_module(&digest).unwrap(), None);
    kv.write_module(&digest, &bytes).unwrap();
    kv.write_module(&digest, &bytes).unwrap();
    assert_eq!(kv.read_module(&digest).unwrap(), Some(bytes));
    let other = Digest::of(b"other");
    kv.write_module(&other, b"not the bytes of that digest").unwrap();
    assert_eq!(kv.read_module(&other).unwrap(), None, "bytes that do not match are absent");
}

#[test]
fn a_store_in_the_database_counts_its_starts_and_refuses_a_newer_schema() {
    let url = database();
    let location = Location::Postgres(url.clone());
    let first = Store::open_at(&location, false).unwrap().epoch();
    let second = Store::open_at(&location, false).unwrap().epoch();
    assert!(first < second, "{first} {second}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(execute(&url, "INSERT INTO sandflow_migrations (version, name) VALUES (999, 'future')"));
    let refused = Store::open_at(&location, false).err().unwrap();
    assert!(matches!(refused, Error::DatabaseSchema { found: 999, .. }), "{refused}");
}

#[tokio::test]
async fn a_copy_moves_everything_either_way_and_only_into_an_empty_store() {
    use crate::model::ModuleInfo;
    let dir = tempfile::tempdir().unwrap();
    let local = Store::open(&dir.path().join("a")).unwrap();
    let bytes = b"\0asm module".to_vec();
    let info = ModuleInfo {
        digest: Digest::of(&bytes),
        size: bytes.len() as u64,
        task_types: Vec::new(),
        uploaded_ms: 1,
        limits: Default::default(),
    };
    local.put_module(&info, &bytes).await.unwrap();
    let writes =
        (0..3000u32).map(|i| (format!("Zcopy{i:05}").into_bytes(), Some(vec![7; (i % 50) as usize])));
    local.write(writes.collect()).await.unwrap();
    let database = Store::open_at(&Location::Postgres(database()), false).unwrap();
    let copied = local.copy_to(&database).unwrap();
    assert_eq!((copied.keys, copied.modules), (3001, 1), "{copied:?}");
    assert_eq!(database.module_bytes(&info.digest).unwrap(), Some(bytes.clone()));
    assert_eq!(database.module(&info.digest).unwrap(), Some(info.clone()));
    assert!(matches!(local.copy_to(&database), Err(Error::NotEmpty)), "only into an empty store");
    assert!(database.epoch() >= local.epoch());
    let back = Store::open(&dir.path().join("b")).unwrap();
    assert_eq!(database.copy_to(&back).unwrap(), copied, "and back");
    assert_eq!(back.module_bytes(&info.digest).unwrap(), Some(bytes));
    let keys = |s: &Store| s.kv.scan_prefix("Zcopy").map(|e| e.unwrap()).collect::<Vec<_>>();
    assert_eq!(keys(&back), keys(&local));
}

#[tokio::test]
async fn a_waiting_host_opens_the_store_once_its_holder_goes_and_sees_who_leads() {
    let url = database();
    let mut leader = follow_leader(&url);
    let first = open(&url).unwrap();
    first.announce("http://127.0.0.1:1").unwrap();
    let announced = leader.wait_for(|a| a.as_deref() == Some("http://127.0.0.1:1"));
    tokio::time::timeout(Duration::from_secs(10), announced).await.unwrap().unwrap();
    let waiting = {
        let url = url.clone();
        std::thread::spawn(move || open_waiting(&url, None))
    };
    drop(first);
    let second = tokio::task::spawn_blocking(move || waiting.join().unwrap()).await.unwrap().unwrap();
    let cleared = leader.wait_for(Option::is_none);
    tokio::time::timeout(Duration::from_secs(10), cleared).await.unwrap().unwrap();
    second.announce("http://127.0.0.1:2").unwrap();
    let moved = leader.wait_for(|a| a.as_deref() == Some("http://127.0.0.1:2"));
    tokio::time::timeout(Duration::from_secs(10), moved).await.unwrap().unwrap();
}
