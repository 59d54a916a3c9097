//! The host's `bindgen!`s: Rust types and traits generated from the WIT
//! worlds it runs, the current `wit/task.wit` (0.4.0, at the top) and 0.1.0
//! (`v1`, `wit/v0.1.0`) for components built before outputs (0.2.0 and
//! 0.3.0 ones need no bindings of their own: their `execute` is 0.4.0's,
//! called by its export index in `world.rs`). The exports are called asynchronously
//! (so a deadline or a forced cancel can end an attempt whatever it is
//! doing, host calls included). The host functions are linked by hand
//! (`imports.rs`), per version; wasmtime checks their types structurally
//! against each version's imports.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "task-component",
    imports: { default: trappable },
    exports: { default: async },
});

/// The 0.1.0 world: `execute` answers no output.
pub mod v1 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "task-component",
        imports: { default: trappable },
        exports: { default: async },
    });
}
