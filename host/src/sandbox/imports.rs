//! The `sandflow:task/host` functions a guest imports, linked by hand rather
//! than through the generated bindings, so that guest strings and lists are
//! read in place (`WasmStr`, `WasmList`) and only what the attempt's
//! bounds keep is copied into host memory: a guest cannot make the host
//! hold a 100 MB log field by passing one. Every rule about what is kept is
//! the attempt's [`Record`](crate::model::Record)'s.

use wasmtime::component::{ComponentType, Lift, LinkerInstance, WasmList, WasmStr};
use wasmtime::{Result, StoreContextMut};

use super::bindings::sandflow::task::host::{Execution, Level};
use super::host::HostState;
use crate::model::{Backoff, LogLevel, OverBound, SubtaskRequest, truncate_to};

/// A task type as the guest passed it, in its memory.
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawTaskType {
    #[component(name = "name")]
    name: WasmStr,
    #[component(name = "version")]
    version: WasmStr,
}

/// A subtask as the guest passed it, in its memory.
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawSubtask {
    #[component(name = "task-type")]
    task_type: RawTaskType,
    #[component(name = "input")]
    input: WasmStr,
    #[component(name = "depends-on")]
    depends_on: WasmList<u32>,
    #[component(name = "max-retries")]
    max_retries: u32,
    #[component(name = "cluster")]
    cluster: Option<WasmStr>,
}

/// A backoff as the guest passed it (0.3.0).
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawBackoff {
    #[component(name = "initial-ms")]
    initial_ms: u64,
    #[component(name = "factor")]
    factor: f64,
    #[component(name = "max-ms")]
    max_ms: u64,
    #[component(name = "jitter")]
    jitter: bool,
}

/// A subtask as a 0.3.0 guest passed it: 0.1.0's and how its failure is
/// handled.
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawSubtaskV3 {
    #[component(name = "task-type")]
    task_type: RawTaskType,
    #[component(name = "input")]
    input: WasmStr,
    #[component(name = "depends-on")]
    depends_on: WasmList<u32>,
    #[component(name = "max-retries")]
    max_retries: u32,
    #[component(name = "cluster")]
    cluster: Option<WasmStr>,
    #[component(name = "optional")]
    optional: bool,
    #[component(name = "backoff")]
    backoff: Option<RawBackoff>,
}

impl RawSubtaskV3 {
    /// The 0.1.0 part, and the failure handling.
    fn split(self) -> (RawSubtask, Policy) {
        let backoff = self.backoff.map(|b| Backoff {
            initial_ms: b.initial_ms,
            factor: b.factor,
            max_ms: b.max_ms,
            jitter: b.jitter,
        });
        let policy = Policy { optional: self.optional, backoff };
        let s = RawSubtask {
            task_type: self.task_type,
            input: self.input,
            depends_on: self.depends_on,
            max_retries: self.max_retries,
            cluster: self.cluster,
        };
        (s, policy)
    }
}

/// How a subtask's failure is handled (0.1.0 and 0.2.0: the defaults).
#[derive(Default)]
struct Policy {
    optional: bool,
    backoff: Option<Backoff>,
}

/// A key/value pair as the guest passed it, in its memory.
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawField {
    #[component(name = "key")]
    key: WasmStr,
    #[component(name = "value")]
    value: WasmStr,
}

type Store<'a> = StoreContextMut<'a, HostState>;

/// At most `max` bytes of `s`, copied out of guest memory.
fn text(store: &Store<'_>, s: &WasmStr, max: usize) -> Result<String> {
    Ok(truncate_to(&s.to_str(store)?, max).to_owned())
}

/// The first fields of `list` that the bounds keep, truncated.
fn fields(store: &mut Store<'_>, list: &WasmList<RawField>) -> Result<Vec<(String, String)>> {
    let b = store.data().record.bounds().clone();
    let mut kept = Vec::with_capacity(list.len().min(b.fields));
    for i in 0..list.len().min(b.fields) {
        let Some(field) = list.get(&mut *store, i) else { break };
        let field = field?;
        kept.push((text(store, &field.key, b.name_bytes)?, text(store, &field.value, b.text_bytes)?));
    }
    Ok(kept)
}

fn trap(e: OverBound) -> wasmtime::Error {
    wasmtime::Error::new(e)
}

fn level(l: Level) -> LogLevel {
    match l {
        Level::Trace => LogLevel::Trace,
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    }
}

/// `submit-subtask`: the input is copied only once its size is known to be
/// within the bound, the dependencies only once their number is.
fn submit(
    mut store: Store<'_>,
    s: RawSubtask,
    policy: Policy,
) -> Result<(std::result::Result<u32, String>,)> {
    let b = store.data().record.bounds().clone();
    if let Err(refused) = store.data().record.check_dependency_count(s.depends_on.len()) {
        return Ok((Err(refused),));
    }
    let input = s.input.to_str(&store)?;
    if input.len() > b.input_bytes {
        return Ok((Err(format!(
            "input of {} bytes exceeds the limit of {} bytes",
            input.len(),
            b.input_bytes
        )),));
    }
    let input = input.into_owned();
    let depends_on: Vec<u32> = s.depends_on.as_le_slice(&store).iter().map(|h| u32::from_le(*h)).collect();
    let name = text(&store, &s.task_type.name, b.name_bytes + 1)?;
    let version = text(&store, &s.task_type.version, 64)?;
    let cluster = s.cluster.as_ref().map(|c| text(&store, c, 256)).transpose()?;
    let state = store.data_mut();
    let request = SubtaskRequest {
        name: &name,
        version: &version,
        input: &input,
        depends_on,
        max_retries: s.max_retries,
        cluster: cluster.as_deref(),
        optional: policy.optional,
        backoff: policy.backoff,
    };
    let admit = state.check.clone();
    Ok((state.record.submit(request, &*admit).map_err(trap)?,))
}

/// Adds the functions 0.2.0 added to `inst`: a task's dependencies and
/// their outputs.
pub fn add_outputs(inst: &mut LinkerInstance<'_, HostState>) -> Result<()> {
    inst.func_wrap("dependencies", |store: Store<'_>, (): ()| {
        Ok((store.data().dependencies.handles().to_vec(),))
    })?;
    inst.func_wrap_async("output-of", |store: Store<'_>, (handle,): (u32,)| {
        let read = store.data().dependencies.output_of(handle);
        Box::new(async move { Ok((read.await,)) })
    })?;
    Ok(())
}

/// Adds `submit-subtask` as 0.1.0 and 0.2.0 have it (no failure handling).
pub fn add_submit_v1(inst: &mut LinkerInstance<'_, HostState>) -> Result<()> {
    inst.func_wrap("submit-subtask", |store: Store<'_>, (s,): (RawSubtask,)| {
        submit(store, s, Policy::default())
    })
}

/// Adds what 0.3.0 added: `submit-subtask` with optional subtasks and a
/// backoff, and `mark-permanent`.
pub fn add_failure_handling(inst: &mut LinkerInstance<'_, HostState>) -> Result<()> {
    inst.func_wrap("submit-subtask", |store: Store<'_>, (s,): (RawSubtaskV3,)| {
        let (s, policy) = s.split();
        submit(store, s, policy)
    })?;
    inst.func_wrap("mark-permanent", |mut store: Store<'_>, (): ()| {
        store.data_mut().record.permanent = true;
        Ok(())
    })
}

/// Adds what 0.4.0 added: `span-set`, attributes given to an open span.
pub fn add_span_set(inst: &mut LinkerInstance<'_, HostState>) -> Result<()> {
    inst.func_wrap("span-set", |mut store: Store<'_>, (id, list): (u64, WasmList<RawField>)| {
        let kept = fields(&mut store, &list)?;
        store.data_mut().record.span_set(id, kept).map_err(trap)
    })
}

/// Adds the host functions every WIT version has, but `submit-subtask`, to
/// `inst` (the instance of one version).
pub fn add(inst: &mut LinkerInstance<'_, HostState>) -> Result<()> {
    inst.func_wrap("set-display", |mut store: Store<'_>, (name,): (WasmStr,)| {
        let name = text(&store, &name, 4 * crate::model::MAX_DISPLAY_CHARS)?;
        store.data_mut().record.set_display(&name).map_err(trap)
    })?;
    inst.func_wrap(
        "log",
        |mut store: Store<'_>, (lvl, message, list): (Level, WasmStr, WasmList<RawField>)| {
            let max = store.data().record.bounds().text_bytes;
            let message = text(&store, &message, max)?;
            let kept = fields(&mut store, &list)?;
            store.data_mut().record.log(level(lvl), &message, kept).map_err(trap)
        },
    )?;
    inst.func_wrap("span-enter", |mut store: Store<'_>, (name, list): (WasmStr, WasmList<RawField>)| {
        let max = store.data().record.bounds().name_bytes;
        let name = text(&store, &name, max)?;
        let kept = fields(&mut store, &list)?;
        Ok((store.data_mut().record.span_enter(&name, kept).map_err(trap)?,))
    })?;
    inst.func_wrap("span-exit", |mut store: Store<'_>, (id,): (u64,)| {
        store.data_mut().record.span_exit(id);
        Ok(())
    })?;
    inst.func_wrap("progress", |mut store: Store<'_>, (label, total, done): (WasmStr, u64, u64)| {
        let max = store.data().record.bounds().label_bytes;
        let label = text(&store, &label, max)?;
        store.data_mut().record.progress(&label, total, done).map_err(trap)
    })?;
    inst.func_wrap("current", |store: Store<'_>, (): ()| -> Result<(Execution,)> {
        Ok((store.data().execution.clone(),))
    })?;
    Ok(())
}
