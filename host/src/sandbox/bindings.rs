//! The one `bindgen!` of the host: Rust types and traits generated from
//! `wit/task.wit`. The exports are called asynchronously (so a deadline or a
//! forced cancel can end an attempt whatever it is doing, host calls
//! included); host functions are synchronous (they only buffer) and
//! trappable, so a guest that exceeds a limit can be stopped with a message.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "task-component",
    imports: { default: trappable },
    exports: { default: async },
});
