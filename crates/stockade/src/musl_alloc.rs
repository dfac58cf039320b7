//! The static musl build's allocator: `dlmalloc` behind a lock of our own.
//!
//! Why `dlmalloc` at all: musl's own allocator returns freed memory with `munmap` so eagerly
//! that the supervisor (whose address space the sandbox's pid 1 shares) loses more in TLB
//! shootdowns than the static binary saves (see the `dlmalloc` entry in Cargo.toml).
//!
//! Why not `dlmalloc::GlobalDlmalloc`: it takes a `pthread_mutex_t` around every call, through
//! two calls into musl that are not inlined. A run makes about 3,800 allocator calls, nearly
//! all on the main thread, and a profile put 7 to 10% of the supervisor's CPU time in that
//! locking. The lock here is one atomic compare-and-swap and one store, inlined; a thread that
//! finds it taken yields its CPU until it is free (only the thread that launches pid 1 ever
//! competes, and rarely).
//!
//! Pid 1 and the command share this memory until the command execs, but never allocate (see
//! `stockade_linux::sys`), so they never take this lock.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};

/// The global allocator of the musl build (installed in `main.rs`).
pub struct LockedDlmalloc;

static LOCKED: AtomicBool = AtomicBool::new(false);
static mut HEAP: dlmalloc::Dlmalloc = dlmalloc::Dlmalloc::new();

/// Holds the lock while alive.
struct Held;

impl Held {
    #[inline]
    fn take() -> Held {
        while LOCKED.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            std::thread::yield_now();
        }
        Held
    }

    /// The heap, for as long as the lock is held.
    #[inline]
    #[allow(unsafe_code)]
    fn heap(&mut self) -> &mut dlmalloc::Dlmalloc {
        // SAFETY: `HEAP` is only ever reached through a `Held`, and at most one exists at a
        // time (the lock); the borrow cannot outlive `self`.
        unsafe { &mut *std::ptr::addr_of_mut!(HEAP) }
    }
}

impl Drop for Held {
    #[inline]
    fn drop(&mut self) {
        LOCKED.store(false, Ordering::Release);
    }
}

// SAFETY: every call goes to dlmalloc under the lock, with the layout the caller passed, which
// is what dlmalloc's own `GlobalAlloc` implementation does.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for LockedDlmalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded under the lock (see the impl).
        unsafe { Held::take().heap().malloc(layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract).
        unsafe { Held::take().heap().free(ptr, layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded under the lock (see the impl).
        unsafe { Held::take().heap().calloc(layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract).
        unsafe { Held::take().heap().realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}
