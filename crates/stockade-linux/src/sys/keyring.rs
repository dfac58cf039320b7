//! One `user` key in the caller's user keyring (`@u`): a small store that no sandboxed command
//! can write, whatever its policy, because the seccomp filter of both implementations denies
//! `add_key`, `keyctl` and `request_key`, and the keyring is the kernel's, not a file that a
//! writable root could cover.
//!
//! References: [keyrings(7)](https://man7.org/linux/man-pages/man7/keyrings.7.html),
//! [add_key(2)](https://man7.org/linux/man-pages/man2/add_key.2.html),
//! [keyctl(2)](https://man7.org/linux/man-pages/man2/keyctl.2.html).

use std::ffi::CStr;
use std::io;

const KEY_SPEC_USER_KEYRING: libc::c_long = -4;
const KEYCTL_SETPERM: libc::c_long = 5;
const KEYCTL_UNLINK: libc::c_long = 9;
const KEYCTL_SEARCH: libc::c_long = 10;
const KEYCTL_READ: libc::c_long = 11;
const KEYCTL_SET_TIMEOUT: libc::c_long = 15;

/// Everything for a process that possesses the key; view, read, write, search and setattr for
/// any process of the same uid, which may reach `@u` without possessing what it holds (a login
/// session keyring made by `pam_keyinit`, for one).
const PERM: u32 = 0x3f00_0000 | 0x0001_0000 | 0x0002_0000 | 0x0004_0000 | 0x0008_0000 | 0x0020_0000;

fn search(desc: &CStr) -> io::Result<libc::c_long> {
    // SAFETY: valid C strings; integer arguments.
    let id = unsafe {
        libc::syscall(libc::SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, c"user".as_ptr(), desc.as_ptr(), 0)
    };
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

/// The payload of the `user` key `desc` in the user keyring: `Ok(None)` when there is no such
/// key, or when it holds more than `max` bytes.
pub fn read_user_key(desc: &CStr, max: usize) -> io::Result<Option<Vec<u8>>> {
    let id = match search(desc) {
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

/// Creates the `user` key `desc` in the user keyring, or replaces its payload, and lets it
/// expire after `ttl_secs` unless written again.
pub fn write_user_key(desc: &CStr, payload: &[u8], ttl_secs: u32) -> io::Result<()> {
    // SAFETY: valid C strings and buffer.
    let id = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            desc.as_ptr(),
            payload.as_ptr(),
            payload.len(),
            KEY_SPEC_USER_KEYRING,
        )
    };
    if id < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: integer arguments. Best effort: a key left with the default permissions or no
    // timeout still works for a process that possesses it.
    unsafe {
        libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, id, PERM);
        libc::syscall(libc::SYS_keyctl, KEYCTL_SET_TIMEOUT, id, ttl_secs);
    }
    Ok(())
}

/// Unlinks the `user` key `desc` from the user keyring (tests clean up with it).
pub fn remove_user_key(desc: &CStr) -> io::Result<()> {
    let id = search(desc)?;
    // SAFETY: integer arguments.
    if unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_UNLINK, id, KEY_SPEC_USER_KEYRING) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
