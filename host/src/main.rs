//! The `sandflow` binary: the host server and its command-line client.

fn main() -> std::process::ExitCode {
    sandflow_host::cli::main()
}
