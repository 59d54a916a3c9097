//! The sandbox's two engines, and which of them runs a component.
//!
//! After every instance the pooling allocator puts its slot's linear memory
//! back to the module's initial image, and how it does so is an engine-wide
//! setting. A compiled Rust task dirties a few pages of a 1 MiB memory: the
//! [`Reset::DirtyPages`] engine finds them with one page-map scan and copies
//! back only those, so its slots cost nothing they did not touch. But that
//! scan keeps at most 32 runs of dirty pages; everything after them is
//! given back to the kernel and faults in again, copy on write, in the next
//! instance. An interpreter's pre-initialised image (CPython's 12.5 MiB,
//! SpiderMonkey's 9 MiB) is dirtied in hundreds of scattered runs, so each
//! of its instances took hundreds of such faults, each flushing the other
//! core's TLB: 5 ms per no-op Python task. The [`Reset::WholeImage`] engine
//! copies the first [`WHOLE_IMAGE_RESIDENT`] bytes of a memory back from
//! the image after every instance and keeps them resident: no faults, one
//! copy (1.1 ms per Python task). Copying a Rust task's whole memory instead
//! of its dirty pages would cost it 20 µs more (11 → 31 µs), so each module
//! runs on the engine [`Reset::of`] picks for it.
//!
//! Both engines compile alike: one artifact loads into either, under one
//! engine tag. Components are compiled, and their task types listed, on the
//! dirty-pages engine (a listing instance leaves nothing resident there).

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::host::{self, HostState};
use super::module::engine_tag;
use super::{Error, Settings};

/// A component one of whose memories starts at least this large runs on
/// the [`Reset::WholeImage`] engine.
const WHOLE_IMAGE_FROM_BYTES: u64 = 4 << 20;

/// How much of each memory the whole-image engine copies back and keeps
/// resident after an instance: an interpreter's image and some heap. A slot
/// that ran such a component holds up to this much per memory.
const WHOLE_IMAGE_RESIDENT: usize = 32 << 20;

/// How a pool slot's linear memory is reset after an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reset {
    /// Only the pages the instance dirtied (found by a page-map scan) are
    /// copied back; the others are decommitted.
    DirtyPages,
    /// The first [`WHOLE_IMAGE_RESIDENT`] bytes are copied back and stay
    /// resident.
    WholeImage,
}

impl Reset {
    /// The reset that suits `component`: [`Reset::WholeImage`] when one of
    /// its memories starts at [`WHOLE_IMAGE_FROM_BYTES`] or more (a
    /// pre-initialised interpreter), else [`Reset::DirtyPages`].
    pub(super) fn of(component: &Component) -> Reset {
        let pages = component.resources_required().and_then(|r| r.max_initial_memory_size);
        match pages {
            Some(pages) if pages.saturating_mul(64 << 10) >= WHOLE_IMAGE_FROM_BYTES => Reset::WholeImage,
            _ => Reset::DirtyPages,
        }
    }
}

/// An engine and the linker built on it.
pub(super) struct Runtime {
    pub(super) engine: Engine,
    pub(super) linker: Linker<HostState>,
}

impl Runtime {
    fn new(settings: &Settings, reset: Reset) -> Result<Self, Error> {
        let failed = |e: wasmtime::Error| Error::Engine(format!("{e:#}"));
        let engine = Engine::new(&engine_config(settings, reset)).map_err(failed)?;
        let linker = host::linker(&engine).map_err(failed)?;
        Ok(Runtime { engine, linker })
    }
}

/// The two engines of a sandbox.
pub(super) struct Engines {
    dirty: Runtime,
    whole: Runtime,
}

impl Engines {
    /// Both engines; refused if their artifacts would not be alike.
    pub(super) fn new(settings: &Settings) -> Result<Self, Error> {
        let engines = Engines {
            dirty: Runtime::new(settings, Reset::DirtyPages)?,
            whole: Runtime::new(settings, Reset::WholeImage)?,
        };
        if engine_tag(&engines.dirty.engine) != engine_tag(&engines.whole.engine) {
            return Err(Error::Engine("the two engines would compile differently".into()));
        }
        Ok(engines)
    }

    /// The engine that compiles, and whose artifacts both engines load.
    pub(super) fn compiler(&self) -> &Engine {
        &self.dirty.engine
    }

    /// The engine (and its linker) for components reset by `reset`.
    pub(super) fn get(&self, reset: Reset) -> &Runtime {
        match reset {
            Reset::DirtyPages => &self.dirty,
            Reset::WholeImage => &self.whole,
        }
    }

    /// The runtime `component` was loaded into.
    pub(super) fn of(&self, component: &Component) -> &Runtime {
        match Engine::same(component.engine(), &self.whole.engine) {
            true => &self.whole,
            false => &self.dirty,
        }
    }

    /// Starts the thread that advances both engines' epochs every `tick`,
    /// until both are dropped.
    pub(super) fn start_ticker(&self, tick: std::time::Duration) -> std::io::Result<()> {
        let weak = [self.dirty.engine.weak(), self.whole.engine.weak()];
        std::thread::Builder::new().name("sandflow-epoch".into()).spawn(move || {
            loop {
                let alive: Vec<Engine> = weak.iter().filter_map(|w| w.upgrade()).collect();
                if alive.is_empty() {
                    return;
                }
                alive.iter().for_each(Engine::increment_epoch);
                drop(alive);
                std::thread::sleep(tick);
            }
        })?;
        Ok(())
    }
}

/// What every pool slot holds at most: components made by language
/// toolchains (a Python or JavaScript interpreter, WASI adapters) have a
/// dozen core instances and several memories and tables. A component over
/// these is refused at upload with wasmtime's message naming the maximum.
const CORE_INSTANCES_PER_SLOT: u32 = 64;
const MEMORIES_PER_SLOT: u32 = 16;
const TABLES_PER_SLOT: u32 = 64;

/// The configuration of the engine that resets memories by `reset`;
/// everything else, and so what it compiles, is the same for both.
pub(super) fn engine_config(settings: &Settings, reset: Reset) -> Config {
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
        .table_keep_resident(64 << 10);
    match reset {
        Reset::DirtyPages => pool.linear_memory_keep_resident(2 << 20).pagemap_scan(Enabled::Auto),
        Reset::WholeImage => pool.linear_memory_keep_resident(WHOLE_IMAGE_RESIDENT).pagemap_scan(Enabled::No),
    };
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component that instantiates one core module whose memory starts
    /// at `pages` pages (below 128, one LEB byte).
    fn with_memory(pages: u8) -> Vec<u8> {
        assert!(pages < 0x80);
        let module = [b"\0asm\x01\0\0\0".as_slice(), &[5, 3, 1, 0, pages]].concat();
        let mut component = b"\0asm\x0d\0\x01\0".to_vec();
        component.extend([1, module.len() as u8]);
        component.extend(module);
        // One core instance: instantiate module 0 with no arguments.
        component.extend([2, 4, 1, 0, 0, 0]);
        component
    }

    fn settings() -> Settings {
        Settings {
            cache_dir: Default::default(),
            limits: Default::default(),
            max_instances: 2,
            allow_http: Default::default(),
            max_task_types: 1,
            compile_with: None,
        }
    }

    #[test]
    fn memories_from_four_mib_are_reset_whole() {
        let engines = Engines::new(&settings()).unwrap();
        let reset = |pages| Reset::of(&Component::new(engines.compiler(), with_memory(pages)).unwrap());
        assert_eq!(reset(17), Reset::DirtyPages);
        assert_eq!(reset(63), Reset::DirtyPages);
        assert_eq!(reset(64), Reset::WholeImage);
        assert_eq!(reset(127), Reset::WholeImage);
    }

    #[test]
    fn a_component_is_run_by_the_engine_it_was_loaded_into() {
        let engines = Engines::new(&settings()).unwrap();
        let code = engines.compiler().precompile_component(&with_memory(64)).unwrap();
        for reset in [Reset::DirtyPages, Reset::WholeImage] {
            let runtime = engines.get(reset);
            // SAFETY: the code was just compiled by an engine of the same tag.
            let component = unsafe { Component::deserialize(&runtime.engine, &code) }.unwrap();
            assert!(Engine::same(&engines.of(&component).engine, &runtime.engine));
        }
    }
}
