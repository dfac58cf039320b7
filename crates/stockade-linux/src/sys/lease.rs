//! Whether anyone has a file open for writing, asked by taking a read lease and giving it back.
//!
//! A read lease can be taken only while no file description of the file is open for writing,
//! which includes a writable shared mapping, since it holds its description open. Taken and
//! given back at once, it answers "is there a writer right now" without blocking anyone for
//! longer than those two calls. Leases need the caller to own the file (or `CAP_LEASE`), and
//! many filesystems (NFS, FUSE) have none: then the answer is "cannot tell".
//!
//! Reference: [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), "Leases".

use std::os::fd::AsRawFd;

/// `F_SETSIG` (Linux), which the `libc` crate does not name.
const F_SETSIG: libc::c_int = 10;

/// True when `file` (open read-only) has no writer at this instant; false when it has one or
/// when that cannot be told.
pub fn no_writers(file: &std::fs::File) -> bool {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl with integer arguments on a valid fd. A writer opening the file between the
    // two calls gets the lease broken, which signals the lease holder: SIGURG, whose default
    // action is to ignore it, rather than the default SIGIO, which would end the process.
    unsafe {
        if libc::fcntl(fd, F_SETSIG, libc::SIGURG) != 0 || libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) != 0 {
            return false;
        }
        libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK);
    }
    true
}
