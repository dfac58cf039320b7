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
//!   opens later takes their numbers and receives output meant for stdout or stderr;
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
/// if a closed standard fd cannot be filled (as Rust's runtime does): stockade would otherwise
/// write its report into whatever file it opened next.
pub fn prepare() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: three valid pollfd entries; a zero timeout never blocks.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    for p in &fds {
        // Without a poll result, ask each fd directly.
        let closed = if polled < 0 {
            // SAFETY: F_GETFD takes no pointer.
            (unsafe { libc::fcntl(p.fd, libc::F_GETFD) }) < 0
        } else {
            p.revents & libc::POLLNVAL != 0
        };
        // SAFETY: valid C string; the lowest free fd is the closed one being filled, since
        // 0 to 2 are checked in order and nothing else opens fds before this runs.
        if closed && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } != p.fd {
            std::process::abort();
        }
    }
    // SAFETY: installs the SIG_IGN disposition; no handler code runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}
