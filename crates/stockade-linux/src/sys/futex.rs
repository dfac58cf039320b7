//! Waiting on a word of memory that another process of the sandbox sets.
//!
//! Pid 1 and the command (until it execs) share the supervisor's
//! address space (`CLONE_VM`), so a process-private futex works between them: the kernel keys
//! it by address space and address. The word goes from 0 to a value once, and stays there.
//!
//! Both calls may set `errno` (`EAGAIN` when the word changed before the wait began, `EINTR`
//! for a signal with a handler), which these processes share; they are only made where the
//! other side no longer reads it (see `command_in_sandbox`).
//!
//! Reference: [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).

use std::sync::atomic::{AtomicU32, Ordering};

/// Blocks until `word` is no longer 0, and returns its value.
pub fn wait_set(word: &AtomicU32) -> u32 {
    loop {
        let v = word.load(Ordering::Acquire);
        if v != 0 {
            return v;
        }
        // SAFETY: `word` is a live, aligned u32 for the whole call; no timeout.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                0u32,
                std::ptr::null::<libc::timespec>(),
            )
        };
    }
}

/// Sets `word` to `value` (not 0) and wakes whoever waits on it.
pub fn set(word: &AtomicU32, value: u32) {
    word.store(value, Ordering::Release);
    // SAFETY: `word` is a live, aligned u32; waking has no other effect.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX) };
}
