//! The host binary exercised by the end-to-end tests.

fn main() -> std::process::ExitCode {
    sandflow_host::cli::main()
}
