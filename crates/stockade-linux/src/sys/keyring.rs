//! `user` keys in a keyring of the caller (its user keyring, `@u`, for runs): a small store
//! that no sandboxed command can write, whatever its policy, because the seccomp filter of both
//! implementations denies `add_key`, `keyctl` and `request_key`, and the keyring is the
//! kernel's, not a file that a writable root could cover.
//!
//! References: [keyrings(7)](https://man7.org/linux/man-pages/man7/keyrings.7.html),
//! [add_key(2)](https://man7.org/linux/man-pages/man2/add_key.2.html),
//! [keyctl(2)](https://man7.org/linux/man-pages/man2/keyctl.2.html).

use std::ffi::CStr;
use std::io;

/// The user keyring, shared by every process of the caller's uid.
pub const USER_KEYRING: libc::c_long = -4;
/// The calling thread's own keyring, gone with the thread (writes go through it; tests keep
/// their keys there).
pub const THREAD_KEYRING: libc::c_long = -1;
const KEYCTL_SETPERM: libc::c_long = 5;
const KEYCTL_LINK: libc::c_long = 8;
const KEYCTL_UNLINK: libc::c_long = 9;
const KEYCTL_SEARCH: libc::c_long = 10;
const KEYCTL_READ: libc::c_long = 11;
const KEYCTL_SET_TIMEOUT: libc::c_long = 15;

/// Everything for a process that possesses the key; view, read, write, search and setattr for
/// any process of the same uid, which may reach `@u` without possessing what it holds (from a
/// session keyring that does not link `@u`: a systemd service's private one, `keyctl
/// new_session`).
const PERM: u32 = 0x3f00_0000 | 0x0001_0000 | 0x0002_0000 | 0x0004_0000 | 0x0008_0000 | 0x0020_0000;

fn search(keyring: libc::c_long, desc: &CStr) -> io::Result<libc::c_long> {
    // SAFETY: valid C strings; integer arguments.
    let id = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SEARCH, keyring, c"user".as_ptr(), desc.as_ptr(), 0) };
    if id < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(id)
    }
}

/// Whether an error means "no such key" (missing, expired or revoked) rather than "no keyrings
/// here" (a container whose seccomp profile denies them, a kernel without them).
fn is_absent(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOKEY | libc::EKEYEXPIRED | libc::EKEYREVOKED))
}

/// The payload of the `user` key `desc` in `keyring`: `Ok(None)` when there is no such key, or
/// when it holds more than `max` bytes.
pub fn read_user_key(keyring: libc::c_long, desc: &CStr, max: usize) -> io::Result<Option<Vec<u8>>> {
    let id = match search(keyring, desc) {
        Ok(id) => id,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; max];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_READ, id, buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if is_absent(&e) { Ok(None) } else { Err(e) };
    }
    // The return value is the payload's whole size, which may exceed what was copied.
    if n as usize > max {
        return Ok(None);
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// Puts a `user` key `desc` holding `payload` into `keyring`, in place of any key of that name
/// there, expiring `ttl_secs` after this write. The key is made in the calling thread's own
/// keyring, where this process possesses it, so that its permissions and timeout can be set
/// whichever session keyring the caller has, then linked into `keyring`.
pub fn write_user_key(keyring: libc::c_long, desc: &CStr, payload: &[u8], ttl_secs: u32) -> io::Result<()> {
    // SAFETY: valid C strings and buffer.
    let id = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            desc.as_ptr(),
            payload.as_ptr(),
            payload.len(),
            THREAD_KEYRING,
        )
    };
    if id < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: integer arguments.
    let set = unsafe {
        libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, id, PERM) == 0
            && libc::syscall(libc::SYS_keyctl, KEYCTL_SET_TIMEOUT, id, ttl_secs) == 0
            && (keyring == THREAD_KEYRING || libc::syscall(libc::SYS_keyctl, KEYCTL_LINK, id, keyring) == 0)
    };
    let result = if set { Ok(()) } else { Err(io::Error::last_os_error()) };
    if keyring != THREAD_KEYRING {
        // SAFETY: integer arguments. Linked elsewhere (or failed): the thread's copy goes.
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_UNLINK, id, THREAD_KEYRING) };
    }
    result
}

/// Unlinks the `user` key `desc` from `keyring` (tests clean up with it).
#[cfg(test)]
pub fn remove_user_key(keyring: libc::c_long, desc: &CStr) -> io::Result<()> {
    let id = search(keyring, desc)?;
    // SAFETY: integer arguments.
    if unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_UNLINK, id, keyring) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
