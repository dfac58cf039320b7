//! The `stockade` command-line tool: a thin layer over the `stockade` library.

mod cli;

/// The static musl build's allocator (see the `dlmalloc` entry in Cargo.toml for why).
#[cfg(all(target_os = "linux", target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
