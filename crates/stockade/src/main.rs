//! The `stockade` command-line tool: a thin layer over the `stockade` library.
//!
//! On Linux the binary starts without Rust's runtime start-up (`no_main`): every sandboxed
//! command waits for stockade to start, and that start-up cost more than anything it did for us
//! (see `process_start`).
#![cfg_attr(all(target_os = "linux", not(test)), no_main)]

mod cli;
#[cfg(all(target_os = "linux", target_env = "musl"))]
mod musl_alloc;
#[cfg(all(target_os = "linux", target_arch = "x86_64", any(target_env = "musl", test)))]
mod musl_mem;
#[cfg(all(target_os = "linux", not(test)))]
mod process_start;

/// The static musl build's allocator (see `musl_alloc` for why).
#[cfg(all(target_os = "linux", target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: musl_alloc::LockedDlmalloc = musl_alloc::LockedDlmalloc;

/// The C entry point, called by the C runtime with the process's arguments. The exit status
/// leaves through `std::process::exit`, which flushes stdout as returning from a Rust `main`
/// would; a panic ends with status 101, as it would from a Rust `main` (unwinding out of this
/// function would abort instead).
#[cfg(all(target_os = "linux", not(test)))]
#[allow(unsafe_code)] // `no_mangle` names the symbol the C runtime calls.
#[unsafe(no_mangle)]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    process_start::prepare();
    // SAFETY: the C runtime passes `argc` valid NUL-terminated strings in `argv`.
    let args = unsafe { process_start::args(argc, argv) };
    let code = std::panic::catch_unwind(|| cli::main(args)).map_or(101, i32::from);
    std::process::exit(code)
}

/// Elsewhere (and in the unit tests' build, whose harness brings its own entry point), the
/// usual Rust `main`.
#[cfg(any(not(target_os = "linux"), test))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(cli::main(std::env::args_os().collect()))
}
