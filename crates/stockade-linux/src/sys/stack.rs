//! Stacks for the children that share the supervisor's memory (pid 1, and the command until it
//! execs): mapped on their own, with an inaccessible guard page below, so that an overflow
//! faults instead of writing over the supervisor's heap.

use std::io;

use libc::c_void;

/// An anonymous mapping used as a stack, guard page at the bottom; unmapped when dropped.
#[derive(Debug)]
pub struct ChildStack {
    base: *mut c_void,
    len: usize,
}

// SAFETY: the mapping is owned by this value and only handed to a child as raw memory.
unsafe impl Send for ChildStack {}
// SAFETY: no `&self` method reads or writes the mapping.
unsafe impl Sync for ChildStack {}

impl ChildStack {
    /// Maps `size` usable bytes (rounded up to pages) plus a guard page.
    pub fn new(size: usize) -> io::Result<ChildStack> {
        // SAFETY: sysconf has no pointer arguments.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(4096);
        let len = size.div_ceil(page) * page + page;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, len };
        // SAFETY: the first page of our own mapping.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The initial stack pointer: the top of the mapping, 16-byte aligned (stacks grow down).
    pub fn top(&self) -> *mut c_void {
        (self.base as usize + self.len) as *mut c_void
    }

    /// The lowest address and the size of the mapping, guard page included, as `clone3` takes
    /// a stack (it starts the child at their sum, [`ChildStack::top`]).
    pub fn region(&self) -> (*mut c_void, usize) {
        (self.base, self.len)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used by any child (the owner outlives it).
        unsafe { libc::munmap(self.base, self.len) };
    }
}
