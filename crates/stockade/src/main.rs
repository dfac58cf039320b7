//! The `stockade` command-line tool: a thin layer over the `stockade` library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
