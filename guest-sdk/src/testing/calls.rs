//! The host calls, natively: each goes to the recorder of the execution
//! that [`Run::execute`](super::Run::execute) is running on this thread,
//! with the signatures of the WIT bindings (`calls.rs` picks these or the
//! imports).

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{Logged, Recorded, Run, Submitted};
use crate::SubtaskHandle;
use crate::bindings::sandflow::task::host::{Execution, Level, Subtask};
use crate::bindings::sandflow::task::types::Field;

/// The most keys one listing call answers, as the host's.
const PAGE: usize = 1000;

struct Recorder {
    run: Run,
    record: Recorded,
}

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Runs `body` with a recorder for `run` installed on this thread; answers
/// what `body` returned and what was recorded.
pub(crate) fn recording<R>(run: Run, body: impl FnOnce() -> R) -> (R, Recorded) {
    RECORDER.with(|r| *r.borrow_mut() = Some(Recorder { run, record: Recorded::default() }));
    let result = body();
    let recorder = RECORDER.with(|r| r.borrow_mut().take()).expect("the recorder is installed");
    let mut record = recorder.record;
    record.cache = recorder.run.cache;
    (result, record)
}

fn with<R>(f: impl FnOnce(&mut Recorder) -> R) -> R {
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        let recorder = r
            .as_mut()
            .expect("a Sandflow host call outside a component: run the task with sandflow_sdk::testing::run");
        f(recorder)
    })
}

fn pairs(fields: &[Field]) -> Vec<(String, String)> {
    fields.iter().map(|f| (f.key.clone(), f.value.clone())).collect()
}

pub(crate) fn submit_subtask(spec: &Subtask) -> Result<u32, String> {
    with(|r| {
        let handle = r.record.subtasks.len() as u32;
        if let Some(d) = spec.depends_on.iter().find(|d| **d >= handle) {
            return Err(format!("subtask {handle} depends on handle {d}, which was not issued yet"));
        }
        let input =
            serde_json::from_str(&spec.input).map_err(|e| format!("the subtask's input is not JSON: {e}"))?;
        r.record.subtasks.push(Submitted {
            name: spec.task_type.name.clone(),
            version: spec.task_type.version.clone(),
            input,
            depends_on: spec.depends_on.iter().map(|h| SubtaskHandle::from_raw(*h)).collect(),
            max_retries: spec.max_retries,
            cluster: spec.cluster.clone(),
            optional: spec.optional,
            backoff: spec.backoff.map(|b| (b.initial_ms, b.factor, b.max_ms, b.jitter)),
        });
        Ok(handle)
    })
}

pub(crate) fn mark_permanent() {
    with(|r| r.record.permanent = true);
}

pub(crate) fn set_display(name: &str) {
    with(|r| r.record.display = Some(name.to_owned()));
}

pub(crate) fn log(level: Level, message: &str, fields: &[Field]) {
    let level = match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    };
    with(|r| r.record.logs.push(Logged { level, message: message.to_owned(), fields: pairs(fields) }));
}

pub(crate) fn span_enter(name: &str, attributes: &[Field]) -> u64 {
    with(|r| {
        r.record.spans.push((name.to_owned(), pairs(attributes)));
        r.record.spans.len() as u64
    })
}

pub(crate) fn span_exit(_id: u64) {}

/// Ids are positions in `spans` plus one, as `span_enter` answers them.
pub(crate) fn span_set(id: u64, attributes: &[Field]) {
    with(|r| {
        let Some((_, kept)) = (id as usize).checked_sub(1).and_then(|i| r.record.spans.get_mut(i)) else {
            return;
        };
        for (key, value) in pairs(attributes) {
            match kept.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => kept.push((key, value)),
            }
        }
    });
}

pub(crate) fn progress(label: &str, add_total: u64, add_done: u64) {
    with(|r| {
        let counts = r.record.progress.entry(label.to_owned()).or_default();
        counts.0 += add_total;
        counts.1 += add_done;
    });
}

pub(crate) fn current() -> Execution {
    with(|r| Execution {
        job_id: "00000000-0000-0000-0000-000000000000".into(),
        task_id: "00000000-0000-0000-0000-000000000001".into(),
        attempt: r.run.attempt,
    })
}

pub(crate) fn dependencies() -> Vec<u32> {
    with(|r| r.run.outputs.iter().map(|(h, _)| *h).collect())
}

pub(crate) fn output_of(handle: u32) -> Result<Option<Vec<u8>>, String> {
    with(|r| match r.run.outputs.iter().find(|(h, _)| *h == handle) {
        Some((_, output)) => Ok(output.clone()),
        None => Err(format!("handle {handle} is not one of this task's dependencies")),
    })
}

pub(crate) fn secret(name: &str) -> Result<String, String> {
    with(|r| {
        r.run.secrets.get(name).cloned().ok_or_else(|| format!("secret `{name}` is not granted to this task"))
    })
}

/// A cache value being written.
pub(crate) struct Writer {
    key: String,
    value: RefCell<Vec<u8>>,
}

impl Writer {
    pub(crate) fn write(&self, chunk: &[u8]) -> Result<(), String> {
        self.value.borrow_mut().extend_from_slice(chunk);
        Ok(())
    }

    pub(crate) fn finish(this: Writer) -> Result<(), String> {
        with(|r| r.run.cache.insert(this.key, this.value.into_inner()));
        Ok(())
    }
}

/// A cache value being read.
pub(crate) struct Reader {
    value: Vec<u8>,
    at: RefCell<usize>,
}

impl Reader {
    pub(crate) fn size(&self) -> u64 {
        self.value.len() as u64
    }

    pub(crate) fn read(&self, max: u32) -> Result<Vec<u8>, String> {
        let mut at = self.at.borrow_mut();
        let end = (*at + max as usize).min(self.value.len());
        let chunk = self.value[*at..end].to_vec();
        *at = end;
        Ok(chunk)
    }
}

pub(crate) fn put(key: &str) -> Result<Writer, String> {
    Ok(Writer { key: key.to_owned(), value: RefCell::new(Vec::new()) })
}

pub(crate) fn get(key: &str) -> Result<Option<Reader>, String> {
    Ok(with(|r| r.run.cache.get(key).cloned()).map(|value| Reader { value, at: RefCell::new(0) }))
}

pub(crate) fn contains(key: &str) -> Result<bool, String> {
    Ok(with(|r| r.run.cache.contains_key(key)))
}

pub(crate) fn delete(key: &str) -> Result<bool, String> {
    Ok(with(|r| r.run.cache.remove(key).is_some()))
}

pub(crate) fn list(prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, String> {
    let keys = |cache: &BTreeMap<String, Vec<u8>>| {
        cache
            .keys()
            .filter(|k| k.starts_with(prefix) && start_after.is_none_or(|after| k.as_str() > after))
            .take(PAGE)
            .cloned()
            .collect()
    };
    Ok(with(|r| keys(&r.run.cache)))
}
