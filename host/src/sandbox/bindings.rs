//! The one `bindgen!` of the host: Rust types and traits generated from
//! `wit/task.wit`. Host functions are trappable, so a guest that exceeds a
//! limit can be stopped with a message.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "task-component",
    imports: { default: trappable },
});
