//! The Sandflow host: a workflow orchestrator whose tasks run as WebAssembly
//! components.
//!
//! Layers, innermost first: [`model`] (pure domain), [`store`] (sled),
//! [`scheduler`] (the state machine over the store), [`sandbox`] (wasmtime),
//! [`runner`] (claims tasks, runs them in the sandbox, reports), [`api`]
//! (axum), [`cli`]. See `ARCHITECTURE.md` at the repository root.

pub mod api;
pub mod cache;
pub mod cli;
pub mod diagram;
pub mod model;
pub mod otlp;
pub mod protocol;
pub mod runner;
pub mod sandbox;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod store;

/// The global allocator the `sandflow` binaries use.
pub use mimalloc::MiMalloc as Allocator;
