//! The cache on a real directory: keys and groups, listing, replacement,
//! large values in parts, deletion with the job.

use bytes::Bytes;
use futures_util::TryStreamExt;

use super::*;

fn key(k: &str) -> CacheKey {
    CacheKey::parse(k).unwrap()
}

async fn put(cache: &JobCache, job: JobId, k: &str, value: &[u8]) {
    let mut upload = cache.put(job, &key(k), 64 << 20);
    for chunk in value.chunks(1 << 20) {
        upload.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    upload.finish().await.unwrap();
}

async fn get(cache: &JobCache, job: JobId, k: &str) -> Option<Vec<u8>> {
    let value = cache.get(job, &key(k)).await.unwrap()?;
    let chunks: Vec<Bytes> = value.chunks.try_collect().await.unwrap();
    let bytes = chunks.concat();
    assert_eq!(bytes.len() as u64, value.size);
    Some(bytes)
}

fn keys(entries: Vec<Entry>) -> Vec<String> {
    entries.into_iter().map(|e| e.key).collect()
}

#[tokio::test]
async fn keys_groups_and_listing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = JobCache::open(None, dir.path()).unwrap();
    let (job, other) = (JobId::new(), JobId::new());
    for k in ["a", "a/b", "a/b/c", "pages/1", "pages/2", "pages~x", "odd %2F/#1", "ünï/ćødé"] {
        put(&cache, job, k, k.as_bytes()).await;
    }
    put(&cache, other, "a", b"other").await;
    assert_eq!(get(&cache, job, "a/b").await.unwrap(), b"a/b");
    assert_eq!(get(&cache, job, "odd %2F/#1").await.unwrap(), b"odd %2F/#1");
    assert_eq!(get(&cache, other, "a").await.unwrap(), b"other");
    assert_eq!(get(&cache, job, "missing").await, None);
    assert_eq!(keys(cache.list(job, "pages/", None, 10).await.unwrap()), ["pages/1", "pages/2"]);
    assert_eq!(keys(cache.list(job, "pag", None, 10).await.unwrap()), ["pages/1", "pages/2", "pages~x"]);
    assert_eq!(keys(cache.list(job, "a/", None, 10).await.unwrap()), ["a/b", "a/b/c"]);
    let all = keys(cache.list(job, "", None, 100).await.unwrap());
    assert_eq!(all.len(), 8);
    assert_eq!(keys(cache.list(job, "", Some("a/b/c"), 2).await.unwrap()), ["odd %2F/#1", "pages/1"]);
    assert_eq!(cache.list(job, "a", None, 10).await.unwrap()[0], Entry { key: "a".into(), size: 1 });
}

#[tokio::test]
async fn replace_delete_and_drop_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let cache = JobCache::open(None, dir.path()).unwrap();
    let (job, other) = (JobId::new(), JobId::new());
    put(&cache, job, "k", b"one").await;
    put(&cache, job, "k", b"two").await;
    assert_eq!(get(&cache, job, "k").await.unwrap(), b"two");
    assert_eq!(cache.size(job, &key("k")).await.unwrap(), Some(3));
    assert!(cache.delete(job, &key("k")).await.unwrap());
    assert!(!cache.delete(job, &key("k")).await.unwrap());
    assert_eq!(cache.size(job, &key("k")).await.unwrap(), None);
    put(&cache, job, "g/1", b"x").await;
    put(&cache, job, "g/2", b"y").await;
    put(&cache, other, "g/1", b"z").await;
    let mut jobs = cache.jobs().await.unwrap();
    jobs.sort();
    let mut expected = vec![job, other];
    expected.sort();
    assert_eq!(jobs, expected);
    assert_eq!(cache.delete_job(job).await.unwrap(), 2);
    assert!(cache.list(job, "", None, 10).await.unwrap().is_empty());
    assert_eq!(get(&cache, other, "g/1").await.unwrap(), b"z");
}

#[tokio::test]
async fn large_values_go_up_in_parts_and_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let cache = JobCache::open(None, dir.path()).unwrap();
    let job = JobId::new();
    let value: Vec<u8> = (0..20 << 20).map(|i: u32| (i % 251) as u8).collect();
    put(&cache, job, "big", &value).await;
    assert_eq!(get(&cache, job, "big").await.unwrap(), value);
    let mut upload = cache.put(job, &key("big"), 10);
    upload.write(Bytes::from_static(b"0123456789")).await.unwrap();
    let refused = upload.write(Bytes::from_static(b"!")).await.unwrap_err();
    assert!(refused.to_string().contains("limit of 10 bytes"), "{refused}");
    upload.abort().await;
    assert_eq!(get(&cache, job, "big").await.unwrap().len(), value.len(), "the old value stays");
}

#[test]
fn bad_locations_are_refused_readably() {
    let dir = tempfile::tempdir().unwrap();
    for (url, says) in
        [("ftp://x", "unknown scheme"), ("s3://", "bucket is missing"), ("nope", "expected s3://")]
    {
        let e = JobCache::open(Some(url), dir.path()).unwrap_err().to_string();
        assert!(e.contains(says), "{url}: {e}");
    }
}
