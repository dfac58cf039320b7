//! Waiting on a word of memory that another process of the sandbox sets.
//!
//! Pid 1 and the command (until it execs) share the supervisor's
//! address space (`CLONE_VM`), so a process-private futex works between them: the kernel keys
//! it by address space and address. The word goes from 0 to a value once, and stays there.
//!
//! Neither call writes `errno`, which these processes share: the wait can fail (`EAGAIN` when
//! the word changed before the wait began, `EINTR`), and the command waits while pid 1 mounts
//! and reads `errno` after its failed calls. So the wait goes through rustix's raw system call,
//! which returns the error instead of storing it (the wake too).
//!
//! Reference: [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).

use std::sync::atomic::{AtomicU32, Ordering};

use rustix::thread::futex;

/// Blocks until `word` is no longer 0, and returns its value.
pub fn wait_set(word: &AtomicU32) -> u32 {
    loop {
        let v = word.load(Ordering::Acquire);
        if v != 0 {
            return v;
        }
        // Any error (the word changed, a signal) just means looking again.
        let _ = futex::wait(word, futex::Flags::PRIVATE, 0, None);
    }
}

/// Sets `word` to `value` (not 0) and wakes whoever waits on it.
pub fn set(word: &AtomicU32, value: u32) {
    word.store(value, Ordering::Release);
    let _ = futex::wake(word, futex::Flags::PRIVATE, i32::MAX as u32);
}
