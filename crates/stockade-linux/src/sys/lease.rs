//! Whether anyone has a file open for writing, asked by taking a read lease and giving it back;
//! and whether a file's filesystem moves its times on every change.
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

/// `statfs` magic numbers of the filesystems whose file times move with every change, writes
/// through a shared mapping included (they are told of the first write to each page after it
/// was last written back), and whose leases see every writer (local): ext4, XFS, Btrfs.
/// tmpfs is not among them: a page of a shared mapping stays writable without telling it.
const TIMES_FOLLOW_WRITES: [i64; 3] = [0xEF53, 0x5846_5342, 0x9123_683E];

/// Whether `file` is on ext4, XFS or Btrfs, whose times move with every change to a file.
pub fn times_follow_writes(file: &std::fs::File) -> bool {
    // SAFETY: a zeroed statfs is a valid out-parameter; valid fd.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)]
    TIMES_FOLLOW_WRITES.contains(&(st.f_type as i64))
}
