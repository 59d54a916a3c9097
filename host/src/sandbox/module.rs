//! Modules: validation of uploaded components, compilation, the on-disk cache
//! of precompiled artifacts, and the in-memory cache of prepared instances.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::Component;

use super::bindings::sandflow::task::types::TaskType as GuestTaskType;
use super::engines::Reset;
use super::host::HostState;
use super::listing::Listed;
use super::world::Pre;
use super::{Error, Sandbox};
use crate::model::{Digest, MAX_NAME_BYTES, TaskType};

/// How long a component may take to list its task types.
const INSPECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A module ready to instantiate.
pub struct Prepared {
    pub(super) pre: Pre,
}

/// What an uploaded component turned out to be.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The sha256 of its bytes.
    pub digest: Digest,
    /// The task types it implements.
    pub task_types: Vec<TaskType>,
}

impl Sandbox {
    /// Validates and compiles an uploaded component (on a blocking thread),
    /// asks it for its task types, and caches its precompiled artifact.
    pub async fn inspect(self: &Arc<Self>, bytes: bytes::Bytes) -> Result<Inspected, Error> {
        let digest = Digest::of(&bytes);
        let this = self.clone();
        let compiled = tokio::task::spawn_blocking(move || {
            let component = this.compile(&digest, &bytes)?;
            this.instantiate_pre(&component)
        });
        let prepared = compiled.await.map_err(|e| Error::Engine(e.to_string()))??;
        let task_types = match self.task_types(&prepared).await {
            Ok(types) => types,
            Err(e) => {
                let _ = std::fs::remove_file(self.artifact_path(&digest));
                return Err(e);
            }
        };
        // A component for the other engine is loaded into it when a task
        // of it first runs.
        if Reset::of(prepared.pre.instance_pre().component()) == Reset::DirtyPages {
            self.prepared.lock().expect("prepared cache lock").insert(digest, Arc::new(prepared));
        }
        Ok(Inspected { digest, task_types })
    }

    /// The prepared module `digest`: from memory, else from its precompiled
    /// artifact, else from the artifact `fetch` brings (another engine's
    /// with this one's [`engine_tag`](Self::engine_tag), checked by its
    /// checksum), else compiled from the bytes `load` brings (checked
    /// against the digest). Reading and compiling happen on a blocking
    /// thread.
    pub async fn prepare(
        self: &Arc<Self>,
        digest: &Digest,
        fetch: impl Future<Output = Option<Vec<u8>>>,
        load: impl Future<Output = Option<Vec<u8>>>,
    ) -> Result<Arc<Prepared>, Error> {
        if let Some(p) = self.prepared.lock().expect("prepared cache lock").get(digest) {
            return Ok(p.clone());
        }
        let (this, d) = (self.clone(), *digest);
        let cached = tokio::task::spawn_blocking(move || this.read_artifact(&d));
        let mut component = cached.await.map_err(|e| Error::Engine(e.to_string()))?;
        if component.is_none()
            && let Some(file) = fetch.await
        {
            let this = self.clone();
            let adopted = tokio::task::spawn_blocking(move || this.adopt_artifact(&d, file));
            component = adopted.await.map_err(|e| Error::Engine(e.to_string()))?;
        }
        let component = match component {
            Some(component) => component,
            None => {
                let bytes =
                    load.await.filter(|b| Digest::of(b) == *digest).ok_or(Error::MissingModule(*digest))?;
                let this = self.clone();
                let compiled = tokio::task::spawn_blocking(move || this.compile(&d, &bytes));
                compiled.await.map_err(|e| Error::Engine(e.to_string()))??
            }
        };
        let component = self.runnable(digest, component)?;
        let prepared = Arc::new(self.instantiate_pre(&component)?);
        self.prepared.lock().expect("prepared cache lock").insert(*digest, prepared.clone());
        Ok(prepared)
    }

    /// Compiles `bytes` (in a child process when so configured), keeps the
    /// artifact as the cache file of `digest`, and maps the component from
    /// that file: its code is file-backed memory the kernel can share and
    /// reclaim, never a copy on the host's heap.
    fn compile(&self, digest: &Digest, bytes: &[u8]) -> Result<Component, Error> {
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {
                return Err(Error::NotAComponent(
                    "this is a core WebAssembly module; build the task for the wasm32-wasip2 target, \
                     which produces a component"
                        .into(),
                ));
            }
            Some([0, b'a', b's', b'm', ..]) => {}
            _ => {
                return Err(Error::NotAComponent(
                    "the bytes do not start with the WebAssembly magic number".into(),
                ));
            }
        }
        self.compiled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.store_artifact(digest, |out| {
            let mut hashed = Hashed { inner: out, hasher: Default::default() };
            super::compile::precompile(self.engines.compiler(), &self.settings, bytes, &mut hashed)?;
            let checksum = sha2::Digest::finalize(hashed.hasher);
            Ok(hashed.inner.write_all(&checksum)?)
        })?;
        // Loading compiled code checks it against the pool's slot: the
        // numbers of core instances, memories and tables, and their sizes.
        let path = self.artifact_path(digest);
        self.load_artifact(&path).map_err(|refused| {
            let _ = std::fs::remove_file(&path);
            Error::TooLarge(refused)
        })
    }

    /// `component`, loaded by the compiling engine, in the engine that
    /// suits it (`engines.rs`): mapped again from its artifact file, which
    /// was checked just before and is never changed in place.
    fn runnable(&self, digest: &Digest, component: Component) -> Result<Component, Error> {
        match Reset::of(&component) {
            Reset::DirtyPages => Ok(component),
            reset => {
                let engine = &self.engines.get(reset).engine;
                self.map_artifact(engine, &self.artifact_path(digest)).map_err(Error::Engine)
            }
        }
    }

    fn instantiate_pre(&self, component: &Component) -> Result<Prepared, Error> {
        let pre = (self.engines.of(component).linker)
            .instantiate_pre(component)
            .map_err(|e| Error::Incompatible(format!("{e:#}")))?;
        let pre = Pre::new(pre).map_err(Error::Incompatible)?;
        Ok(Prepared { pre })
    }

    async fn task_types(&self, prepared: &Prepared) -> Result<Vec<TaskType>, Error> {
        let exec = super::Execution {
            job: Default::default(),
            task: Default::default(),
            attempt: 0,
            task_type: TaskType { name: "inspect".into(), version: Default::default() },
            input: String::new(),
            limits: Default::default(),
            check: Arc::new(|_, _| Err("subtasks cannot be submitted while listing task types".into())),
            dependencies: Default::default(),
            cache: None,
            lease: 0,
            secrets: None,
        };
        let captured = super::failure::Captured::new(4096);
        let mut store = self.store(prepared, &exec, &captured, Default::default());
        match tokio::time::timeout(INSPECT_TIMEOUT, self.listed(prepared, &mut store)).await {
            Ok(listed) => listed,
            Err(_) => Err(Error::TaskTypes(format!("it did not answer within {INSPECT_TIMEOUT:?}"))),
        }
    }

    /// Calls `task-types`; its answer is bounded before it is copied out of
    /// guest memory (`listing.rs`), then checked against
    /// [`Settings::max_task_types`](super::Settings).
    async fn listed(
        &self,
        prepared: &Prepared,
        store: &mut wasmtime::Store<HostState>,
    ) -> Result<Vec<TaskType>, Error> {
        let failed = |e: wasmtime::Error| Error::TaskTypes(format!("{e:#}"));
        let instance = prepared.pre.instance_pre().instantiate_async(&mut *store).await.map_err(failed)?;
        let interface = prepared.pre.task_interface();
        let func = instance
            .get_export_index(&mut *store, None, interface)
            .and_then(|i| instance.get_export_index(&mut *store, Some(&i), "task-types"))
            .ok_or_else(|| Error::TaskTypes(format!("it does not export {interface}#task-types")))?;
        let func = instance.get_typed_func::<(), (Listed,)>(&mut *store, &func).map_err(failed)?;
        let (listed,) = func.call_async(&mut *store, ()).await.map_err(failed)?;
        let max = self.settings.max_task_types;
        let count = match listed {
            Listed::Types(types) if types.len() <= max => return checked(&types),
            Listed::Types(types) => types.len(),
            Listed::TooMany(n) => n,
            Listed::TooLong { index } => {
                return Err(Error::TaskTypes(format!(
                    "entry {index} of its list has a name or version over {MAX_NAME_BYTES} bytes"
                )));
            }
        };
        Err(Error::TaskTypes(format!("it lists {count} task types; a module may implement at most {max}")))
    }

    /// What this engine's artifacts are tagged with: an artifact compiled by
    /// an engine with the same tag (the same wasmtime, target and compiler
    /// settings) loads here. It is in every artifact's file name.
    pub fn engine_tag(&self) -> &str {
        &self.engine_tag
    }

    fn artifact_path(&self, digest: &Digest) -> PathBuf {
        self.settings.cache_dir.join(format!("{digest}-{}.cwasm", self.engine_tag))
    }

    /// The stored artifact file of `digest` (its checksum last) and its
    /// length, opened at its start, if this engine's tag is `engine` and
    /// the file is intact (checked by a streamed sha256): what a runner
    /// elsewhere fetches instead of compiling the module itself.
    pub fn artifact_file(&self, digest: &Digest, engine: &str) -> Option<(std::fs::File, u64)> {
        use std::io::Seek;
        if engine != self.engine_tag {
            return None;
        }
        let mut file = std::fs::File::open(self.artifact_path(digest)).ok()?;
        let len = checked_file(&mut file).ok()?;
        file.rewind().ok()?;
        Some((file, len))
    }

    /// The cached artifact of `digest`, if present and intact. An artifact
    /// ends with the sha256 of what precedes it; one that does not match
    /// (a corrupted or truncated file) is deleted, so the module is compiled
    /// (or fetched) again.
    fn read_artifact(&self, digest: &Digest) -> Option<Component> {
        let path = self.artifact_path(digest);
        if !path.exists() {
            return None;
        }
        let loaded = self.load_artifact(&path);
        if let Err(why) = &loaded {
            tracing::warn!(path = %path.display(), why, "discarding a cached artifact");
            let _ = std::fs::remove_file(&path);
        }
        loaded.ok()
    }

    /// Keeps an artifact fetched from the host in the cache and loads it;
    /// None (the module is then compiled here) when it does not load.
    fn adopt_artifact(&self, digest: &Digest, file: Vec<u8>) -> Option<Component> {
        let bytes = file.len();
        if checksummed(&file).is_none() {
            tracing::warn!(%digest, "the host's artifact is truncated or corrupted; compiling the module");
            return None;
        }
        if let Err(e) = self.store_artifact(digest, |out| Ok(out.write_all(&file)?)) {
            tracing::warn!(%digest, error = %e, "could not keep a fetched artifact; compiling the module");
            return None;
        }
        let loaded = self.read_artifact(digest);
        match &loaded {
            Some(_) => tracing::info!(%digest, bytes, "loaded the host's precompiled artifact"),
            None => tracing::warn!(%digest, "the host's artifact does not load; compiling the module"),
        }
        loaded
    }

    /// The component in the artifact file at `path` (the artifact, then
    /// its sha256), checked by reading it in pieces, then mapped into the
    /// compiling engine.
    fn load_artifact(&self, path: &std::path::Path) -> Result<Component, String> {
        let mut file = std::fs::File::open(path).map_err(|e| format!("unreadable: {e}"))?;
        checked_file(&mut file)?;
        self.map_artifact(self.engines.compiler(), path)
    }

    /// Maps the checked artifact file at `path` into `engine`.
    fn map_artifact(&self, engine: &wasmtime::Engine, path: &std::path::Path) -> Result<Component, String> {
        // SAFETY: the bytes were serialized by an engine with this engine's
        // tag (the file name or the fetch says so) and are checked by
        // sha256: this runner's own cache, or the host it runs tasks for,
        // whose code it trusts as it trusts the modules the host hands out.
        // The file is never changed in place (`store_artifact` renames a
        // new file over it), so the mapping stays what was checked.
        unsafe { Component::deserialize_file(engine, path) }.map_err(|e| format!("{e:#}"))
    }

    /// Writes the artifact file of `digest` by `fill`, as a new file
    /// renamed over the old one (none is left when `fill` fails).
    fn store_artifact(
        &self,
        digest: &Digest,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let path = self.artifact_path(digest);
        // Several threads may store the same module at once: each writes
        // its own file, and the renames replace one another atomically.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        let written = std::fs::File::create(&tmp).map_err(Error::from).and_then(|file| {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            fill(&mut out)?;
            Ok(out.flush()?)
        });
        let stored = written.and_then(|()| Ok(std::fs::rename(&tmp, &path)?));
        if stored.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        stored
    }
}

/// Writes through to `inner`, hashing what it took.
struct Hashed<W> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The tag of `engine`'s artifacts ([`Sandbox::engine_tag`]).
pub(super) fn engine_tag(engine: &wasmtime::Engine) -> String {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The length of the artifact file `file` if its last 32 bytes are the
/// sha256 of the rest, read in pieces; else why not.
fn checked_file(file: &mut std::fs::File) -> Result<u64, String> {
    let unreadable = |e: std::io::Error| format!("unreadable: {e}");
    let len = file.metadata().map_err(unreadable)?.len();
    let corrupt = || "truncated or corrupted: its checksum does not match".to_owned();
    let artifact_len = len.checked_sub(32).ok_or_else(corrupt)?;
    let digest = Digest::of_reader(&mut *file, artifact_len).map_err(unreadable)?;
    let mut checksum = [0u8; 32];
    std::io::Read::read_exact(file, &mut checksum).map_err(unreadable)?;
    if digest.0 != checksum {
        return Err(corrupt());
    }
    Ok(len)
}

/// The artifact in `file` if its last 32 bytes are the sha256 of the rest.
fn checksummed(file: &[u8]) -> Option<&[u8]> {
    let (artifact, checksum) = file.split_at(file.len().checked_sub(32)?);
    (Digest::of(artifact).0 == checksum).then_some(artifact)
}

/// The task types a guest listed, each checked.
fn checked(listed: &[GuestTaskType]) -> Result<Vec<TaskType>, Error> {
    if listed.is_empty() {
        return Err(Error::TaskTypes("it lists no task types".into()));
    }
    listed
        .iter()
        .map(|t| TaskType::new(&t.name, &t.version).map_err(|e| Error::TaskTypes(e.to_string())))
        .collect()
}
