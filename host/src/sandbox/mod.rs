//! The sandbox: the only code that touches wasmtime.
//!
//! One [`Sandbox`] owns the engine (component model, pooling allocator, epoch
//! interruption), the linker with WASI and the Sandflow host functions, and a
//! cache of prepared modules. [`Sandbox::inspect`] validates an uploaded
//! component and lists its task types; [`Sandbox::prepare`] loads a module
//! (precompiled artifact from disk when present); [`Sandbox::execute`] runs
//! one attempt in a fresh store and returns its outcome and everything it
//! recorded. Attempts run asynchronously (wasmtime's async calls on their own
//! stacks), so their deadlines and forced cancels hold whatever the guest
//! does; compilation runs on blocking threads.

mod bindings;
mod cache;
mod cache_imports;
pub mod compile;
mod dependencies;
mod egress;
mod execute;
mod failure;
mod host;
mod imports;
mod interrupts;
mod limits;
mod listing;
mod module;
mod output;
mod secrets;
mod usage;
mod world;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use cache::{CacheAccess, CacheUpload, CacheValue};
pub use dependencies::{Dependencies, OutputReader};
pub use execute::{Execution, ExecutionResult, SubtaskCheck};
pub use limits::Limits;
pub use module::{Inspected, Prepared};
pub use secrets::SecretReader;

use crate::model::{Digest, HostPattern, JobId};
use host::HostState;

/// How often the epoch advances; the resolution of timeouts.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A sandbox failure outside a task's own execution.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a WebAssembly component.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component is valid but over what one sandbox slot holds.
    #[error("the component does not fit one sandbox slot: {0}")]
    TooLarge(String),
    /// The component does not fit the `sandflow:task` world.
    #[error("component does not fit the sandflow:task world: {0}")]
    Incompatible(String),
    /// The component misbehaved when asked for its task types.
    #[error("component failed to list its task types: {0}")]
    TaskTypes(String),
    /// The engine could not be set up.
    #[error("wasmtime engine setup failed: {0}")]
    Engine(String),
    /// Reading or writing a precompiled artifact failed.
    #[error("artifact cache: {0}")]
    Artifact(#[from] std::io::Error),
    /// The module's bytes could not be found.
    #[error("module {0} is not available")]
    MissingModule(Digest),
}

/// Sandbox settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where precompiled artifacts are kept.
    pub cache_dir: PathBuf,
    /// Per-task limits.
    pub limits: Limits,
    /// Most sandboxes alive at once; bounds the pooling allocator.
    pub max_instances: u32,
    /// Hosts every task may send HTTP requests to.
    pub allow_http: Arc<Vec<HostPattern>>,
    /// Task types one module may implement.
    pub max_task_types: usize,
    /// The program (this one) whose `compile-component` subcommand compiles
    /// components in a child process (`compile.rs`); compiled in-process
    /// when absent.
    pub compile_with: Option<PathBuf>,
}

/// The default of [`Settings::max_task_types`].
pub const MAX_TASK_TYPES: usize = 1000;

/// Checks a [`Settings::max_task_types`] asked for: a listing is bounded
/// before it is copied (`listing.rs`), so no host may allow more than
/// [`listing::LISTED_MAX`].
pub fn check_max_task_types(n: usize) -> Result<usize, String> {
    match n {
        n if n > listing::LISTED_MAX => {
            Err(format!("a module may implement at most {} task types on any host", listing::LISTED_MAX))
        }
        n => Ok(n),
    }
}

/// The wasmtime engine and everything derived from it.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<HostState>,
    settings: Settings,
    prepared: Mutex<HashMap<Digest, Arc<Prepared>>>,
    interrupts: interrupts::Interrupts,
    /// Components compiled since start (the others came from artifacts).
    compiled: std::sync::atomic::AtomicU64,
    /// What this engine's artifacts are tagged with (`module.rs`).
    engine_tag: String,
}

impl Sandbox {
    /// Creates the engine and linker, and starts the epoch ticker.
    pub fn new(settings: Settings) -> Result<Arc<Self>, Error> {
        let engine = Engine::new(&engine_config(&settings)).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let linker = host::linker(&engine).map_err(|e| Error::Engine(format!("{e:#}")))?;
        std::fs::create_dir_all(&settings.cache_dir)?;
        let weak = engine.weak();
        std::thread::Builder::new().name("sandflow-epoch".into()).spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
        let engine_tag = module::engine_tag(&engine);
        Ok(Arc::new(Sandbox {
            engine_tag,
            engine,
            linker,
            settings,
            prepared: Mutex::new(HashMap::new()),
            interrupts: interrupts::Interrupts::default(),
            compiled: Default::default(),
        }))
    }

    /// The per-task limits.
    pub fn limits(&self) -> &Limits {
        &self.settings.limits
    }

    /// How many components this sandbox has compiled (not loaded from a
    /// precompiled artifact).
    pub fn compiled(&self) -> u64 {
        self.compiled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Interrupts every attempt of `job` running in this sandbox; each fails
    /// with "canceled" within one epoch tick. Answers how many there were.
    pub fn interrupt_job(&self, job: JobId) -> usize {
        self.interrupts.interrupt_job(job)
    }

    /// Forgets a forced cancel of `job`, which was retried.
    pub fn forget_interrupt(&self, job: JobId) {
        self.interrupts.forget(job);
    }
}

/// What one sandbox slot holds at most: components made by language
/// toolchains (a Python or JavaScript interpreter, WASI adapters) have a
/// dozen core instances and several memories and tables. A component over
/// these is refused at upload with wasmtime's message naming the maximum.
const CORE_INSTANCES_PER_SLOT: u32 = 64;
const MEMORIES_PER_SLOT: u32 = 16;
const TABLES_PER_SLOT: u32 = 64;

fn engine_config(settings: &Settings) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    let instances = settings.max_instances.max(1);
    // Totals for every slot at its maxima (virtual address space only), so
    // any runner count can run such components at once.
    pool.total_component_instances(instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_SLOT)
        .max_memories_per_component(MEMORIES_PER_SLOT)
        .max_tables_per_component(TABLES_PER_SLOT)
        .total_core_instances(instances * CORE_INSTANCES_PER_SLOT)
        .total_memories(instances * MEMORIES_PER_SLOT)
        .total_tables(instances * TABLES_PER_SLOT)
        // Every attempt runs on an async stack of its own.
        .total_stacks(instances)
        .async_stack_keep_resident(64 << 10)
        .max_memory_size(settings.limits.memory_bytes.saturating_mul(2))
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}
