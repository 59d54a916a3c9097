//! The runners the host has heard from: each claim names its runner, and
//! `GET /v1/runners` lists those seen recently.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::model::now_ms;
use crate::protocol::RunnerHello;

/// A runner not heard from for this long is no longer listed.
const FORGET_AFTER: Duration = Duration::from_secs(120);

/// Most runners remembered; the oldest are forgotten first.
const MAX_RUNNERS: usize = 10_000;

/// One runner as last seen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RunnerView {
    pub id: String,
    pub cluster: String,
    pub capacity: u32,
    pub in_flight: u32,
    /// `remote` or `in-process`.
    pub kind: String,
    /// When it last claimed (Unix ms).
    pub last_seen_ms: u64,
}

/// Runners seen recently.
#[derive(Default)]
pub struct Fleet {
    seen: Mutex<HashMap<String, RunnerView>>,
}

impl Fleet {
    /// Records that `hello` claimed for `cluster` just now.
    pub fn heard(&self, hello: &RunnerHello, cluster: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_RUNNERS && !seen.contains_key(&hello.id) {
            let oldest = seen.values().min_by_key(|r| r.last_seen_ms).map(|r| r.id.clone());
            oldest.and_then(|id| seen.remove(&id));
        }
        let view = RunnerView {
            id: hello.id.chars().take(128).collect(),
            cluster: cluster.to_owned(),
            capacity: hello.capacity,
            in_flight: hello.in_flight,
            kind: "remote".into(),
            last_seen_ms: now_ms(),
        };
        seen.insert(view.id.clone(), view);
    }

    /// Lists the in-process runners of this host, always seen.
    pub fn add_local(&self, cluster: &str, capacity: u32) {
        let view = RunnerView {
            id: "in-process".into(),
            cluster: cluster.to_owned(),
            capacity,
            in_flight: 0,
            kind: "in-process".into(),
            last_seen_ms: u64::MAX,
        };
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).insert(view.id.clone(), view);
    }

    /// Runners seen within the last two minutes, most recent first.
    pub fn recent(&self) -> Vec<RunnerView> {
        let cutoff = SystemTime::now() - FORGET_AFTER;
        let cutoff_ms = cutoff.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, r| r.last_seen_ms >= cutoff_ms);
        let mut out: Vec<RunnerView> = seen.values().cloned().collect();
        out.sort_by(|a, b| b.last_seen_ms.cmp(&a.last_seen_ms).then(a.id.cmp(&b.id)));
        for r in &mut out {
            r.last_seen_ms = r.last_seen_ms.min(now_ms());
        }
        out
    }
}
