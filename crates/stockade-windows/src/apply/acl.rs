//! Reading and changing file DACLs through handles that do not follow reparse points.
//!
//! Each object is opened with `FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS`, so
//! a junction planted in the workspace is stamped as itself, never its target. Its descriptor
//! is read with [`GetSecurityInfo`](https://learn.microsoft.com/en-us/windows/win32/api/aclapi/nf-aclapi-getsecurityinfo),
//! turned into the model through SDDL, merged there ([`crate::sddl::merge`]), and written
//! back with [`SetSecurityInfo`](https://learn.microsoft.com/en-us/windows/win32/api/aclapi/nf-aclapi-setsecurityinfo),
//! which propagates inheritable ACEs to existing children: the one-time cost proportional to
//! the tree.

use std::hash::{Hash, Hasher};
use std::os::windows::io::{AsRawHandle, OwnedHandle};

use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SetSecurityInfo, SE_FILE_OBJECT};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, GetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION, FILE_SHARE_DELETE, FILE_SHARE_READ,
    FILE_SHARE_WRITE, OPEN_EXISTING,
};

use super::sys::{last_error, own_handle, sddl_of, wide, LocalBox, SecDesc};
use crate::acl_model::{Ace, SecurityDescriptor};
use crate::error::Error;
use crate::ledger::PathAce;
use crate::sddl;
use crate::win_path::WinPath;

const READ_CONTROL: u32 = 0x2_0000;
const WRITE_DAC: u32 = 0x4_0000;
const FILE_READ_ATTRIBUTES: u32 = 0x80;
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
const OWNER_SECURITY_INFORMATION: u32 = 0x1;
const DACL_SECURITY_INFORMATION: u32 = 0x4;
const PROTECTED_DACL_SECURITY_INFORMATION: u32 = 0x8000_0000;
const UNPROTECTED_DACL_SECURITY_INFORMATION: u32 = 0x2000_0000;
const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;

/// `\\?\` + path, so long paths and trailing dots/spaces are taken literally.
pub fn verbatim(path: &WinPath) -> Vec<u16> {
    wide(format!(r"\\?\{path}"))
}

/// Opens `path` itself (not a reparse point's target) for reading, and writing, its DACL.
pub fn open(path: &WinPath, write: bool) -> Result<OwnedHandle, Error> {
    let access = READ_CONTROL | FILE_READ_ATTRIBUTES | if write { WRITE_DAC } else { 0 };
    let name = verbatim(path);
    // SAFETY: NUL-terminated name; no security attributes or template.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT,
            std::ptr::null_mut(),
        )
    };
    own_handle(h, if write { "set_acl_open" } else { "read_acl_open" }, &path.to_string())
}

/// What a handle's object is.
#[derive(Debug, Clone, Copy)]
pub struct ObjectInfo {
    /// A directory.
    pub is_dir: bool,
    /// A junction or link.
    pub reparse: bool,
    /// Volume serial and file index: the object's identity.
    pub id: (u32, u64),
}

/// Kind and identity of the object behind `h`.
pub fn info(h: &OwnedHandle, path: &WinPath) -> Result<ObjectInfo, Error> {
    // SAFETY: all-zero plain data.
    let mut i: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: valid handle and out-structure.
    if unsafe { GetFileInformationByHandle(h.as_raw_handle(), &mut i) } == 0 {
        return Err(Error::win32("read_acl_info", path.to_string(), last_error()));
    }
    Ok(ObjectInfo {
        is_dir: i.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY != 0,
        reparse: i.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0,
        id: (i.dwVolumeSerialNumber, (u64::from(i.nFileIndexHigh) << 32) | u64::from(i.nFileIndexLow)),
    })
}

/// The owner and DACL of the object behind `h`, as SDDL.
pub fn read_sddl(h: &OwnedHandle, path: &WinPath) -> Result<String, Error> {
    let mut psd = std::ptr::null_mut();
    // SAFETY: valid handle; only the descriptor out-pointer is requested.
    let rc = unsafe {
        GetSecurityInfo(
            h.as_raw_handle(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut psd,
        )
    };
    if rc != 0 {
        return Err(Error::win32("read_acl", path.to_string(), rc));
    }
    // SAFETY: `psd` was LocalAlloc'd for us.
    let owner = unsafe { LocalBox::new(psd) };
    // SAFETY: `psd` is a valid descriptor while `owner` lives.
    let s = unsafe { sddl_of(owner.as_ptr(), OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION) };
    drop(owner);
    s
}

/// The model of the object's descriptor.
pub fn read(h: &OwnedHandle, path: &WinPath) -> Result<SecurityDescriptor, Error> {
    let text = read_sddl(h, path)?;
    sddl::parse(&text).map_err(|e| Error::UnsupportedAcl { path: path.to_string(), detail: e.to_string() })
}

/// The model of the object's descriptor for the access model only (unresolvable SIDs become
/// placeholders); never written back.
pub fn read_for_model(h: &OwnedHandle, path: &WinPath) -> Result<SecurityDescriptor, Error> {
    let text = read_sddl(h, path)?;
    sddl::parse_for_model(&text).map_err(|e| Error::UnsupportedAcl { path: path.to_string(), detail: e.to_string() })
}

/// A fingerprint of a root: its identity and a hash of its descriptor.
pub fn fingerprint(path: &WinPath) -> Result<String, Error> {
    let h = open(path, false)?;
    let i = info(&h, path)?;
    let text = read_sddl(&h, path)?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    Ok(format!("{:08x}:{:016x}:{:016x}", i.id.0, i.id.1, hasher.finish()))
}

/// Writes the explicit ACEs of `sd` on the object behind `h`.
fn write(h: &OwnedHandle, path: &WinPath, sd: &SecurityDescriptor) -> Result<(), Error> {
    let text = sddl::render_dacl(sd);
    let bin = SecDesc::from_sddl(&text)?;
    let dacl = bin.dacl()?;
    let protect =
        if sd.protected { PROTECTED_DACL_SECURITY_INFORMATION } else { UNPROTECTED_DACL_SECURITY_INFORMATION };
    // SAFETY: valid handle opened with WRITE_DAC; `dacl` lives in `bin` for the call.
    let rc = unsafe {
        SetSecurityInfo(
            h.as_raw_handle(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | protect,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            dacl,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::win32("set_acl", path.to_string(), rc));
    }
    Ok(())
}

/// Adds `add` and removes `remove` (explicit ACEs) on `path`.
pub fn change(path: &WinPath, add: &[Ace], remove: &[Ace]) -> Result<(), Error> {
    let h = open(path, true)?;
    let current = read(&h, path)?;
    if current.dacl.is_none() {
        return Err(Error::UnsupportedAcl { path: path.to_string(), detail: "NULL DACL".into() });
    }
    let merged = sddl::merge(&current, add, remove);
    if merged.explicit() == current.explicit() {
        return Ok(());
    }
    write(&h, path, &merged)
}

/// Replaces the whole DACL of `path` with `sddl_dacl` (protected), for stockade's own files
/// such as the credentials file.
pub fn set_exact(path: &WinPath, sddl_dacl: &str) -> Result<(), Error> {
    let h = open(path, true)?;
    let sd =
        sddl::parse(sddl_dacl).map_err(|e| Error::UnsupportedAcl { path: path.to_string(), detail: e.to_string() })?;
    write(&h, path, &SecurityDescriptor { protected: true, ..sd })
}

/// Applies ACE groups (adds when `adding`, removals otherwise), one thread per group (see
/// [`crate::apply_steps::stamp_groups`]), printing progress to stderr when `progress`.
pub fn change_groups(groups: &[Vec<PathAce>], adding: bool, progress: bool) -> Result<(), Error> {
    let total: usize = groups.iter().map(Vec::len).sum();
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = groups
            .iter()
            .map(|g| {
                let done = &done;
                s.spawn(move || -> Result<(), Error> {
                    // Consecutive ACEs on one path are applied in one descriptor write.
                    let mut by_path: Vec<(&WinPath, Vec<Ace>)> = Vec::new();
                    for a in g {
                        match by_path.last_mut() {
                            Some((p, list)) if *p == &a.path => list.push(a.ace.clone()),
                            _ => by_path.push((&a.path, vec![a.ace.clone()])),
                        }
                    }
                    for (path, list) in by_path {
                        if adding {
                            change(path, &list, &[])?;
                        } else {
                            match change(path, &[], &list) {
                                Err(Error::Win32 { code: 2 | 3, .. }) => {}
                                other => other?,
                            }
                        }
                        let n = done.fetch_add(list.len(), std::sync::atomic::Ordering::Relaxed) + list.len();
                        if progress {
                            eprintln!(
                                "stockade: [{n}/{total}] {} `{path}`",
                                if adding { "stamped" } else { "cleaned" }
                            );
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join().unwrap_or(Err(Error::State { path: "acl worker".into(), detail: "panicked".into() }))
        })
    })
}
