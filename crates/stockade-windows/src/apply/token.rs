//! Tokens: reading the caller's identity, and making the write-restricted token commands run
//! with.
//!
//! [`CreateRestrictedToken`](https://learn.microsoft.com/en-us/windows/win32/api/securitybaseapi/nf-securitybaseapi-createrestrictedtoken)
//! with `WRITE_RESTRICTED` (restricting SIDs are checked for writes only),
//! `DISABLE_MAX_PRIVILEGE` (every privilege but `SeChangeNotifyPrivilege` removed) and
//! `LUA_TOKEN` (the filtered, non-elevated form). The default DACL, used for objects the
//! command creates without an explicit descriptor, is set to three ACEs (user, SYSTEM, logon
//! SID): a per-root ACE list overflowed it elsewhere (error 1344).

use std::os::windows::io::{AsRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Security::{
    CreateRestrictedToken, GetTokenInformation, SetTokenInformation, TokenDefaultDacl, TokenGroups, TokenUser,
    SID_AND_ATTRIBUTES, TOKEN_DEFAULT_DACL, TOKEN_GROUPS, TOKEN_USER,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::sys::{last_error, own_handle, sid_from_psid, SecDesc, SidBuf};
use crate::error::Error;
use crate::sid::Sid;

const DISABLE_MAX_PRIVILEGE: u32 = 0x1;
const LUA_TOKEN: u32 = 0x4;
const WRITE_RESTRICTED: u32 = 0x8;
const SE_GROUP_ENABLED: u32 = 0x4;
const SE_GROUP_USE_FOR_DENY_ONLY: u32 = 0x10;
const SE_GROUP_LOGON_ID: u32 = 0xC000_0000;

// Access rights for OpenProcessToken.
const TOKEN_ASSIGN_PRIMARY: u32 = 0x1;
const TOKEN_DUPLICATE: u32 = 0x2;
const TOKEN_QUERY: u32 = 0x8;
const TOKEN_ADJUST_DEFAULT: u32 = 0x80;
const TOKEN_ADJUST_SESSIONID: u32 = 0x100;

/// Who the calling process runs as.
#[derive(Debug, Clone)]
pub struct CallerIdentity {
    /// The user SID.
    pub user: Sid,
    /// Enabled groups (not deny-only).
    pub groups: Vec<Sid>,
    /// The logon SID of the session.
    pub logon_sid: Option<Sid>,
}

/// Opens the current process token.
pub fn process_token() -> Result<OwnedHandle, Error> {
    let mut h: HANDLE = std::ptr::null_mut();
    let access = TOKEN_ASSIGN_PRIMARY | TOKEN_DUPLICATE | TOKEN_QUERY | TOKEN_ADJUST_DEFAULT | TOKEN_ADJUST_SESSIONID;
    // SAFETY: GetCurrentProcess returns a pseudo-handle; `h` receives a new handle we own.
    if unsafe { OpenProcessToken(GetCurrentProcess(), access, &mut h) } == 0 {
        return Err(Error::win32("open_process_token", "current process", last_error()));
    }
    own_handle(h, "open_process_token", "current process")
}

fn token_info(token: &OwnedHandle, class: i32) -> Result<Vec<u64>, Error> {
    let mut len = 0u32;
    // SAFETY: size query with a null buffer.
    unsafe { GetTokenInformation(token.as_raw_handle(), class, std::ptr::null_mut(), 0, &mut len) };
    // u64 elements keep the buffer aligned for the structures inside.
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    // SAFETY: `buf` holds at least `len` bytes.
    if unsafe { GetTokenInformation(token.as_raw_handle(), class, buf.as_mut_ptr().cast(), len, &mut len) } == 0 {
        return Err(Error::win32("get_token_information", format!("class {class}"), last_error()));
    }
    Ok(buf)
}

/// The identity of `token`.
pub fn identity(token: &OwnedHandle) -> Result<CallerIdentity, Error> {
    let user_buf = token_info(token, TokenUser)?;
    // SAFETY: the buffer holds a TOKEN_USER written by the OS, with the SID inside it.
    let user = unsafe { sid_from_psid((*user_buf.as_ptr().cast::<TOKEN_USER>()).User.Sid)? };
    let groups_buf = token_info(token, TokenGroups)?;
    let tg = groups_buf.as_ptr().cast::<TOKEN_GROUPS>();
    // SAFETY: the OS wrote a TOKEN_GROUPS with GroupCount entries into the buffer.
    let entries: &[SID_AND_ATTRIBUTES] =
        unsafe { std::slice::from_raw_parts((*tg).Groups.as_ptr(), (*tg).GroupCount as usize) };
    let mut groups = Vec::new();
    let mut logon_sid = None;
    for e in entries {
        // SAFETY: each entry's SID points into the same buffer.
        let sid = unsafe { sid_from_psid(e.Sid)? };
        if e.Attributes & SE_GROUP_LOGON_ID == SE_GROUP_LOGON_ID {
            logon_sid = Some(sid.clone());
        }
        if e.Attributes & SE_GROUP_ENABLED != 0 && e.Attributes & SE_GROUP_USE_FOR_DENY_ONLY == 0 {
            groups.push(sid);
        }
    }
    Ok(CallerIdentity { user, groups, logon_sid })
}

/// A write-restricted token derived from `base` whose restricting SIDs are `restricting`,
/// with a three-ACE default DACL.
pub fn restricted_token(base: &OwnedHandle, restricting: &[Sid], id: &CallerIdentity) -> Result<OwnedHandle, Error> {
    let bufs = restricting.iter().map(SidBuf::new).collect::<Result<Vec<_>, _>>()?;
    let attrs: Vec<SID_AND_ATTRIBUTES> =
        bufs.iter().map(|b| SID_AND_ATTRIBUTES { Sid: b.psid(), Attributes: 0 }).collect();
    let mut new: HANDLE = std::ptr::null_mut();
    // SAFETY: `attrs` points to SIDs kept alive by `bufs` for the duration of the call.
    let ok = unsafe {
        CreateRestrictedToken(
            base.as_raw_handle(),
            DISABLE_MAX_PRIVILEGE | WRITE_RESTRICTED | LUA_TOKEN,
            0,
            std::ptr::null(),
            0,
            std::ptr::null(),
            attrs.len() as u32,
            attrs.as_ptr(),
            &mut new,
        )
    };
    if ok == 0 {
        return Err(Error::win32("create_restricted_token", format!("{} restricting SIDs", attrs.len()), last_error()));
    }
    let token = own_handle(new, "create_restricted_token", "token")?;
    let mut sddl = format!("D:(A;;GA;;;{})(A;;GA;;;SY)", id.user);
    if let Some(l) = &id.logon_sid {
        sddl.push_str(&format!("(A;;GA;;;{l})"));
    }
    let sd = SecDesc::from_sddl(&sddl)?;
    let dd = TOKEN_DEFAULT_DACL { DefaultDacl: sd.dacl()? };
    // SAFETY: `dd` points to a DACL owned by `sd`, alive for the call.
    let ok = unsafe {
        SetTokenInformation(
            token.as_raw_handle(),
            TokenDefaultDacl,
            (&dd as *const TOKEN_DEFAULT_DACL).cast(),
            std::mem::size_of::<TOKEN_DEFAULT_DACL>() as u32,
        )
    };
    if ok == 0 {
        return Err(Error::win32("set_default_dacl", "restricted token", last_error()));
    }
    Ok(token)
}
