//! What the process needs before the CLI runs, done here instead of by Rust's runtime start-up
//! (Linux only; the binary is built with `#![no_main]` there, see `main.rs`).
//!
//! Every sandboxed command pays for stockade's own start, so it is kept short. Rust's runtime
//! start-up (`std::rt::lang_start`) also installs a stack-overflow handler, and finding the main
//! thread's stack for it makes glibc read and parse `/proc/self/maps`. Measured on this project's
//! 2-vCPU test VM with an empty program: 0.21 ms of wall time per start with glibc (0.29 ms of
//! CPU), 0.05 ms with the static musl build. The parts of that start-up that matter to stockade
//! are kept:
//!
//! - file descriptors 0, 1 and 2 are opened on `/dev/null` when closed, so that nothing stockade
//!   opens later takes their numbers (its first pipe, the one pid 1 reports on, would otherwise
//!   be fds 0 and 1, and anything written to stdout would land among pid 1's records), and the
//!   sandboxed command starts with them open on `/dev/null` rather than closed;
//! - `SIGPIPE` is ignored, so that writing to a closed pipe returns `EPIPE` instead of killing the
//!   supervisor halfway through a run (the sandbox's pid 1 and the command go back to the default
//!   disposition, as before; `std::process::Command` does too);
//! - the arguments are taken from `argv` (with `no_main`, `std::env::args` is empty on musl).
//!
//! What is given up: a stack overflow ends the process with a plain `SIGSEGV` instead of Rust's
//! "has overflowed its stack" message, and the main thread has no name in panic messages.
//!
//! References: [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html) (`POLLNVAL` for a
//! closed fd), [signal(7)](https://man7.org/linux/man-pages/man7/signal.7.html).

use std::ffi::{CStr, OsString};
use std::os::unix::ffi::OsStringExt;

/// The process's arguments, from the `argc`/`argv` that the C runtime passes to `main`.
///
/// # Safety
///
/// `argv` must point to `argc` valid NUL-terminated strings, as it does in `main`.
pub unsafe fn args(argc: libc::c_int, argv: *const *const libc::c_char) -> Vec<OsString> {
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            // SAFETY: the caller guarantees `argc` valid strings at `argv`.
            let s = unsafe { CStr::from_ptr(*argv.add(i)) };
            OsString::from_vec(s.to_bytes().to_vec())
        })
        .collect()
}

/// Opens `/dev/null` on whichever of fds 0, 1 and 2 is closed, and ignores `SIGPIPE`. Aborts
/// if a closed standard fd cannot be filled, as Rust's runtime does: the next fds stockade opens
/// would otherwise take those numbers.
pub fn prepare() {
    for fd in 0..3 {
        // `F_GETFD` fails with `EBADF` only for a closed fd. (`poll`, which Rust's runtime uses,
        // also reports `POLLNVAL` for an open `O_PATH` fd.)
        // SAFETY: F_GETFD takes no pointer.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::EBADF)
        {
            continue;
        }
        // SAFETY: valid C string. The lowest free fd is `fd`, since the lower ones are open.
        let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if null < 0 {
            std::process::abort();
        }
        if null != fd {
            // SAFETY: both are fds of this process; nothing else runs yet.
            unsafe {
                libc::dup2(null, fd);
                libc::close(null);
            }
        }
    }
    // SAFETY: installs the SIG_IGN disposition; no handler code runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}
