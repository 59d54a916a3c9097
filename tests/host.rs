//! The host binary exercised by the end-to-end tests.

/// mimalloc: the scheduler and sled allocate and free small buffers at a high
/// rate, which glibc's allocator handles poorly (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: sandflow_host::Allocator = sandflow_host::Allocator;

fn main() -> std::process::ExitCode {
    sandflow_host::cli::main()
}
