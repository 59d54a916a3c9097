//! The host side of a sandbox: per-store state, the linker every task is
//! instantiated with, and the resource limiter. What a guest records goes
//! into the store's [`Record`] (see `imports.rs`) and is handed to the
//! caller after the attempt ends.

use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::sandflow::task::host::Execution;
use super::cache::AttemptCache;
use super::dependencies::Dependencies;
use super::egress::Egress;
use super::execute::SubtaskCheck;
use super::interrupts::Cancel;
use super::limits::Limits;
use super::secrets::AttemptSecrets;
use crate::model::{OverBound, Record};

/// The attempt was interrupted by a forced cancel of its job.
#[derive(Debug, thiserror::Error)]
#[error("canceled")]
pub struct Canceled;

/// Tables may hold this many elements in all.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// The data of one store: one attempt of one task.
pub struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: Arc<Limits>,
    pub check: SubtaskCheck,
    pub execution: Execution,
    pub record: Record,
    /// Bytes of all linear memories of the instance, and elements of all its
    /// tables (the limits cover the attempt, not each memory or table).
    memory_bytes: usize,
    /// The most `memory_bytes` ever was: the attempt's peak memory.
    pub peak_memory_bytes: usize,
    table_elements: usize,
    /// Raised to interrupt the attempt (forced cancel).
    pub cancel: Arc<Cancel>,
    pub http: WasiHttpCtx,
    /// Where the attempt may send HTTP requests.
    pub egress: Egress,
    /// The tasks whose outputs it may read (none unless set).
    pub dependencies: Arc<Dependencies>,
    /// Its job's cache.
    pub cache: AttemptCache,
    /// The secrets it may read, and those it read.
    pub secrets: AttemptSecrets,
}

impl HostState {
    /// The state of a fresh store.
    pub fn new(
        wasi: WasiCtx,
        limits: Arc<Limits>,
        check: SubtaskCheck,
        execution: Execution,
        cancel: Arc<Cancel>,
        egress: Egress,
    ) -> Self {
        let record = Record::new(limits.bounds.clone(), execution.attempt);
        let cache = AttemptCache::new(crate::model::JobId::default(), None, limits.bounds.clone());
        HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
            check,
            execution,
            record,
            memory_bytes: 0,
            peak_memory_bytes: 0,
            table_elements: 0,
            cancel,
            http: WasiHttpCtx::new(),
            egress,
            dependencies: Arc::default(),
            cache,
            secrets: AttemptSecrets::default(),
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The linker every task component is instantiated with: WASI (without
/// filesystem, environment or socket grants), outgoing `wasi:http` (checked
/// against the attempt's allow-list, see `egress.rs`) and the Sandflow host
/// functions (`imports.rs`).
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    linker.instance("sandflow:task/types@0.1.0")?;
    let mut v1 = linker.instance("sandflow:task/host@0.1.0")?;
    super::imports::add(&mut v1)?;
    super::imports::add_submit_v1(&mut v1)?;
    for version in ["0.2.0", "0.3.0", "0.4.0"] {
        linker.instance(&format!("sandflow:task/types@{version}"))?;
        let mut host = linker.instance(&format!("sandflow:task/host@{version}"))?;
        super::imports::add(&mut host)?;
        super::imports::add_outputs(&mut host)?;
        super::secrets::add(&mut host)?;
        if version == "0.2.0" {
            super::imports::add_submit_v1(&mut host)?;
        } else {
            super::imports::add_failure_handling(&mut host)?;
        }
        if version == "0.4.0" {
            super::imports::add_span_set(&mut host)?;
        }
        super::cache_imports::add(&mut linker.instance(&format!("sandflow:task/cache@{version}"))?)?;
    }
    Ok(linker)
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_bytes - current.min(self.memory_bytes) + desired;
        if total > self.limits.memory_bytes {
            return Err(wasmtime::Error::new(OverBound(format!(
                "memory limit of {} MiB exceeded (the task asked for {} MiB in all)",
                self.limits.memory_bytes >> 20,
                total.div_ceil(1 << 20)
            ))));
        }
        self.memory_bytes = total;
        self.peak_memory_bytes = self.peak_memory_bytes.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.table_elements - current.min(self.table_elements) + desired;
        if total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }
}

/// Runs at every epoch tick while an attempt runs wasm code: traps when its
/// job was force-canceled, else yields to the runner's executor, where the
/// attempt's deadline and cancel signal are watched (`execute.rs`).
pub fn on_tick(state: &mut HostState) -> wasmtime::Result<wasmtime::UpdateDeadline> {
    if state.cancel.is_raised() {
        return Err(wasmtime::Error::new(Canceled));
    }
    Ok(wasmtime::UpdateDeadline::Yield(1))
}
