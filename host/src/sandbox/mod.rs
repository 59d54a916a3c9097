//! The sandbox: the only code that touches wasmtime.
//!
//! One [`Sandbox`] owns two engines (component model, pooling allocator,
//! epoch interruption; they differ in how a slot's memory is reset, see
//! `engines.rs`), their linkers with WASI and the Sandflow host functions,
//! and a cache of prepared modules. [`Sandbox::inspect`] validates an uploaded
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
mod engines;
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

pub use cache::{CacheAccess, CacheUpload, CacheValue};
pub use dependencies::{Dependencies, OutputReader};
pub use execute::{Execution, ExecutionResult, SubtaskCheck};
pub use limits::Limits;
pub use module::{Inspected, Prepared};
pub use secrets::SecretReader;

use crate::model::{Digest, HostPattern, JobId};

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

/// The wasmtime engines and everything derived from them.
pub struct Sandbox {
    engines: engines::Engines,
    settings: Settings,
    prepared: Mutex<HashMap<Digest, Arc<Prepared>>>,
    interrupts: interrupts::Interrupts,
    /// Components compiled since start (the others came from artifacts).
    compiled: std::sync::atomic::AtomicU64,
    /// What this engine's artifacts are tagged with (`module.rs`).
    engine_tag: String,
}

impl Sandbox {
    /// Creates the engines and linkers, and starts the epoch ticker.
    pub fn new(settings: Settings) -> Result<Arc<Self>, Error> {
        let engines = engines::Engines::new(&settings)?;
        std::fs::create_dir_all(&settings.cache_dir)?;
        engines.start_ticker(EPOCH_TICK)?;
        let engine_tag = module::engine_tag(engines.compiler());
        Ok(Arc::new(Sandbox {
            engine_tag,
            engines,
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
