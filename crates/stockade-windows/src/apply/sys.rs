//! Small owners and conversions shared by the apply modules: wide strings, `LocalFree`d
//! buffers, SIDs and security descriptors from their string forms, the last error, and Wine
//! detection.

use std::ffi::{c_void, OsStr};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::{GetLastError, LocalFree, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, ConvertStringSidToSidW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{GetSecurityDescriptorDacl, ACL, PSECURITY_DESCRIPTOR, PSID};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

use crate::error::Error;
use crate::sid::Sid;

/// The calling thread's last Win32 error.
pub fn last_error() -> u32 {
    // SAFETY: GetLastError has no preconditions.
    unsafe { GetLastError() }
}

/// `s` as a NUL-terminated UTF-16 string.
pub fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(std::iter::once(0)).collect()
}

/// Takes ownership of a handle returned by a Win32 call, or reports the failure of `step`.
pub(crate) fn own_handle(h: HANDLE, step: &'static str, object: &str) -> Result<OwnedHandle, Error> {
    if h.is_null() || h == INVALID_HANDLE_VALUE {
        return Err(Error::win32(step, object, last_error()));
    }
    // SAFETY: `h` is a valid handle just returned to us by the OS and owned by no one else.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// A buffer the system allocated with `LocalAlloc`, freed with `LocalFree` on drop.
#[derive(Debug)]
pub struct LocalBox(*mut c_void);

impl LocalBox {
    /// Wraps a pointer that must be released with `LocalFree` (null is allowed).
    ///
    /// # Safety
    /// `p` must be null or a `LocalAlloc` allocation owned by the caller.
    pub unsafe fn new(p: *mut c_void) -> LocalBox {
        LocalBox(p)
    }

    /// The pointer, valid while `self` lives.
    pub fn as_ptr(&self) -> *mut c_void {
        self.0
    }
}

impl Drop for LocalBox {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a LocalAlloc-based API (see `new`) and is freed once.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// A binary SID built from a [`Sid`] with `ConvertStringSidToSidW`.
#[derive(Debug)]
pub struct SidBuf(LocalBox);

impl SidBuf {
    /// Converts `sid`.
    pub fn new(sid: &Sid) -> Result<SidBuf, Error> {
        let s = wide(sid.to_string());
        let mut p: PSID = std::ptr::null_mut();
        // SAFETY: `s` is NUL-terminated; `p` receives a LocalAlloc'd SID we own.
        let ok = unsafe { ConvertStringSidToSidW(s.as_ptr(), &mut p) };
        if ok == 0 {
            return Err(Error::win32("convert_sid", sid.to_string(), last_error()));
        }
        // SAFETY: `p` is a LocalAlloc allocation returned to us.
        Ok(SidBuf(unsafe { LocalBox::new(p) }))
    }

    /// The binary SID, valid while `self` lives.
    pub fn psid(&self) -> PSID {
        self.0.as_ptr()
    }
}

/// The string form of a binary SID.
///
/// # Safety
/// `psid` must point to a valid SID.
pub unsafe fn sid_from_psid(psid: PSID) -> Result<Sid, Error> {
    let mut out: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: the caller guarantees `psid`; `out` receives a LocalAlloc'd string.
    if unsafe { ConvertSidToStringSidW(psid, &mut out) } == 0 {
        return Err(Error::win32("convert_sid", "binary SID", last_error()));
    }
    // SAFETY: `out` is a LocalAlloc'd, NUL-terminated string we now own.
    let owner = unsafe { LocalBox::new(out.cast()) };
    // SAFETY: as above; the string lives as long as `owner`.
    let text = unsafe { wide_ptr_to_string(out) };
    drop(owner);
    text.parse().map_err(|_| Error::win32("convert_sid", text, 1337))
}

/// Reads a NUL-terminated UTF-16 string.
///
/// # Safety
/// `p` must point to a NUL-terminated UTF-16 string.
pub unsafe fn wide_ptr_to_string(p: *const u16) -> String {
    let mut len = 0;
    // SAFETY: the caller guarantees NUL termination, so every read is in bounds.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` elements were just read.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A self-relative security descriptor built from SDDL text.
#[derive(Debug)]
pub struct SecDesc(LocalBox);

impl SecDesc {
    /// Converts `sddl` with `ConvertStringSecurityDescriptorToSecurityDescriptorW`.
    pub fn from_sddl(sddl: &str) -> Result<SecDesc, Error> {
        let s = wide(sddl);
        let mut psd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `s` is NUL-terminated; `psd` receives a LocalAlloc'd descriptor.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                s.as_ptr(),
                SDDL_REVISION_1,
                &mut psd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(Error::win32("convert_sddl", sddl, last_error()));
        }
        // SAFETY: `psd` is a LocalAlloc allocation returned to us.
        Ok(SecDesc(unsafe { LocalBox::new(psd) }))
    }

    /// The descriptor, valid while `self` lives.
    pub fn as_ptr(&self) -> PSECURITY_DESCRIPTOR {
        self.0.as_ptr()
    }

    /// The DACL inside the descriptor (null for a NULL DACL), valid while `self` lives.
    pub fn dacl(&self) -> Result<*mut ACL, Error> {
        let mut present = 0;
        let mut defaulted = 0;
        let mut dacl: *mut ACL = std::ptr::null_mut();
        // SAFETY: the descriptor is valid; out-pointers are to locals.
        let ok = unsafe { GetSecurityDescriptorDacl(self.as_ptr(), &mut present, &mut dacl, &mut defaulted) };
        if ok == 0 {
            return Err(Error::win32("read_dacl", "descriptor", last_error()));
        }
        Ok(if present == 0 { std::ptr::null_mut() } else { dacl })
    }
}

/// The SDDL text of a descriptor for the parts in `info`.
///
/// # Safety
/// `psd` must point to a valid security descriptor.
pub unsafe fn sddl_of(psd: PSECURITY_DESCRIPTOR, info: u32) -> Result<String, Error> {
    let mut out: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: the caller guarantees `psd`; `out` receives a LocalAlloc'd string.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(psd, SDDL_REVISION_1, info, &mut out, std::ptr::null_mut())
    };
    if ok == 0 {
        return Err(Error::win32("descriptor_to_sddl", "descriptor", last_error()));
    }
    // SAFETY: `out` is ours to free.
    let owner = unsafe { LocalBox::new(out.cast()) };
    // SAFETY: NUL-terminated string owned by `owner`.
    let s = unsafe { wide_ptr_to_string(out) };
    drop(owner);
    Ok(s)
}

/// Whether this process runs under Wine (ntdll exports `wine_get_version`). Wine implements
/// none of the security primitives stockade relies on, so security tests skip there.
pub fn running_under_wine() -> bool {
    let ntdll = wide("ntdll.dll");
    // SAFETY: ntdll is always loaded; the name is NUL-terminated.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    if module.is_null() {
        return false;
    }
    // SAFETY: `module` is a valid module handle; the symbol name is NUL-terminated.
    unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }.is_some()
}

/// `n` random bytes from the system RNG (`BCryptGenRandom`).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    use windows_sys::Win32::Security::Cryptography::{BCryptGenRandom, BCRYPT_USE_SYSTEM_PREFERRED_RNG};
    let mut out = [0u8; N];
    // SAFETY: the buffer is valid for N bytes; no algorithm handle with the system RNG flag.
    let status =
        unsafe { BCryptGenRandom(std::ptr::null_mut(), out.as_mut_ptr(), N as u32, BCRYPT_USE_SYSTEM_PREFERRED_RNG) };
    if status != 0 {
        return Err(Error::win32("random", "BCryptGenRandom", status as u32));
    }
    Ok(out)
}
