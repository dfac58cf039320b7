//! The elevated implementation's accounts: two local users (offline, online) in a group of
//! their own, per real user (see [`crate::ledger::account_names`]), hidden from the logon
//! screen, with random passwords stored with DPAPI.
//!
//! [`NetUserAdd`](https://learn.microsoft.com/en-us/windows/win32/api/lmaccess/nf-lmaccess-netuseradd),
//! [`NetLocalGroupAdd`](https://learn.microsoft.com/en-us/windows/win32/api/lmaccess/nf-lmaccess-netlocalgroupadd),
//! [`NetLocalGroupAddMembers`](https://learn.microsoft.com/en-us/windows/win32/api/lmaccess/nf-lmaccess-netlocalgroupaddmembers),
//! the `SpecialAccounts\UserList` registry value (0 hides an account from the sign-in screen),
//! and [`CryptProtectData`](https://learn.microsoft.com/en-us/windows/win32/api/dpapi/nf-dpapi-cryptprotectdata)
//! (user-scoped) for the password file, whose DACL admits only the real user and SYSTEM.
//! All steps are idempotent: an existing account gets a new password instead.

use std::path::Path;

use windows_sys::Win32::NetworkManagement::NetManagement::{
    NetLocalGroupAdd, NetLocalGroupAddMembers, NetLocalGroupDel, NetUserAdd, NetUserDel, NetUserSetInfo,
    LOCALGROUP_INFO_1, LOCALGROUP_MEMBERS_INFO_3, USER_INFO_1, USER_INFO_1003,
};
use windows_sys::Win32::Security::Cryptography::{CryptProtectData, CRYPT_INTEGER_BLOB};
use windows_sys::Win32::Security::{LookupAccountNameW, PSID};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegDeleteValueW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE, KEY_SET_VALUE, REG_DWORD,
};

use super::sys::{last_error, random_bytes, sid_from_psid, wide, LocalBox};
use crate::error::Error;
use crate::ledger::{Account, Accounts};
use crate::sid::Sid;
use crate::win_path::WinPath;

const USER_LIST: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\SpecialAccounts\UserList";
const NERR_USER_EXISTS: u32 = 2224;
const NERR_GROUP_EXISTS: u32 = 2223;
const ERROR_ALIAS_EXISTS: u32 = 1379;
const ERROR_MEMBER_IN_ALIAS: u32 = 1378;
const NERR_USER_NOT_FOUND: u32 = 2221;
const NERR_GROUP_NOT_FOUND: u32 = 2220;
const ERROR_NO_SUCH_ALIAS: u32 = 1376;

fn password() -> Result<String, Error> {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.#";
    let bytes = random_bytes::<32>()?;
    // A fixed prefix guarantees every complexity class; the rest carries the entropy.
    Ok(std::iter::once("Sx7#".to_owned())
        .chain(bytes.iter().map(|b| (CHARS[*b as usize % CHARS.len()] as char).to_string()))
        .collect())
}

/// The SID of account `name`.
pub fn lookup(name: &str) -> Result<Sid, Error> {
    let wname = wide(name);
    let mut sid = vec![0u64; 12];
    let mut sid_len = (sid.len() * 8) as u32;
    let mut domain = vec![0u16; 256];
    let mut domain_len = domain.len() as u32;
    let mut kind = 0;
    // SAFETY: buffers are valid for the sizes passed.
    let ok = unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            wname.as_ptr(),
            sid.as_mut_ptr() as PSID,
            &mut sid_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if ok == 0 {
        return Err(Error::win32("net_lookup_account", name, last_error()));
    }
    // SAFETY: the buffer now holds a valid SID.
    unsafe { sid_from_psid(sid.as_mut_ptr() as PSID) }
}

fn ensure_user(name: &str, pw: &str) -> Result<(), Error> {
    let wname = wide(name);
    let mut wpw = wide(pw);
    let mut comment = wide("stockade sandbox account");
    let info = USER_INFO_1 {
        usri1_name: wname.as_ptr() as *mut u16,
        usri1_password: wpw.as_mut_ptr(),
        usri1_password_age: 0,
        usri1_priv: 1, // USER_PRIV_USER
        usri1_home_dir: std::ptr::null_mut(),
        usri1_comment: comment.as_mut_ptr(),
        usri1_flags: 0x1 | 0x1_0000 | 0x40, // UF_SCRIPT | UF_DONT_EXPIRE_PASSWD | UF_PASSWD_CANT_CHANGE
        usri1_script_path: std::ptr::null_mut(),
    };
    // SAFETY: `info` points to NUL-terminated strings alive for the call.
    let rc = unsafe { NetUserAdd(std::ptr::null(), 1, (&info as *const USER_INFO_1).cast(), std::ptr::null_mut()) };
    match rc {
        0 => Ok(()),
        NERR_USER_EXISTS => {
            let set = USER_INFO_1003 { usri1003_password: wpw.as_mut_ptr() };
            // SAFETY: as above.
            let rc = unsafe {
                NetUserSetInfo(
                    std::ptr::null(),
                    wname.as_ptr(),
                    1003,
                    (&set as *const USER_INFO_1003).cast(),
                    std::ptr::null_mut(),
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(Error::win32("net_user_set_password", name, rc))
            }
        }
        code => Err(Error::win32("net_user_add", name, code)),
    }
}

fn ensure_group(group: &str, members: &[&str]) -> Result<(), Error> {
    let wname = wide(group);
    let mut comment = wide("stockade sandbox users");
    let info = LOCALGROUP_INFO_1 { lgrpi1_name: wname.as_ptr() as *mut u16, lgrpi1_comment: comment.as_mut_ptr() };
    // SAFETY: strings alive for the call.
    let rc = unsafe {
        NetLocalGroupAdd(std::ptr::null(), 1, (&info as *const LOCALGROUP_INFO_1).cast(), std::ptr::null_mut())
    };
    if rc != 0 && rc != NERR_GROUP_EXISTS && rc != ERROR_ALIAS_EXISTS {
        return Err(Error::win32("net_local_group_add", group, rc));
    }
    for m in members {
        let wm = wide(m);
        let entry = LOCALGROUP_MEMBERS_INFO_3 { lgrmi3_domainandname: wm.as_ptr() as *mut u16 };
        // SAFETY: one entry, strings alive for the call.
        let rc = unsafe {
            NetLocalGroupAddMembers(
                std::ptr::null(),
                wname.as_ptr(),
                3,
                (&entry as *const LOCALGROUP_MEMBERS_INFO_3).cast(),
                1,
            )
        };
        if rc != 0 && rc != ERROR_MEMBER_IN_ALIAS {
            return Err(Error::win32("net_local_group_add_members", *m, rc));
        }
    }
    Ok(())
}

fn set_hidden(name: &str, hidden: bool) -> Result<(), Error> {
    let key_name = wide(USER_LIST);
    let mut key: HKEY = std::ptr::null_mut();
    // SAFETY: valid strings and out-pointer.
    let rc = unsafe {
        RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            key_name.as_ptr(),
            0,
            std::ptr::null(),
            0,
            KEY_SET_VALUE,
            std::ptr::null(),
            &mut key,
            std::ptr::null_mut(),
        )
    };
    if rc != 0 {
        return Err(Error::win32("hide_user_registry", USER_LIST, rc));
    }
    let value = wide(name);
    let zero: u32 = 0;
    // SAFETY: `key` is open; the data is 4 bytes.
    let rc = unsafe {
        if hidden {
            RegSetValueExW(key, value.as_ptr(), 0, REG_DWORD, (&zero as *const u32).cast(), 4)
        } else {
            RegDeleteValueW(key, value.as_ptr())
        }
    };
    // SAFETY: closing the key opened above.
    unsafe { RegCloseKey(key) };
    if rc != 0 && (hidden || rc != 2) {
        return Err(Error::win32("hide_user_registry", name, rc));
    }
    Ok(())
}

/// Seals `pw` with DPAPI: user scope when the real user runs setup (only their logon can
/// unseal it), machine scope when an administrator provisions another user (that user cannot
/// be impersonated here; the file's DACL, the user and SYSTEM only, is then the protection).
fn store_password(dir: &Path, name: &str, pw: &str, real_user: &Sid, machine_scope: bool) -> Result<(), Error> {
    let flags = 0x1 | if machine_scope { 0x4 } else { 0 }; // UI_FORBIDDEN | LOCAL_MACHINE
    let mut plain = pw.as_bytes().to_vec();
    let input = CRYPT_INTEGER_BLOB { cbData: plain.len() as u32, pbData: plain.as_mut_ptr() };
    let mut out = CRYPT_INTEGER_BLOB { cbData: 0, pbData: std::ptr::null_mut() };
    // SAFETY: input blob valid; output allocated by the system with LocalAlloc.
    let ok = unsafe {
        CryptProtectData(
            &input,
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            flags,
            &mut out,
        )
    };
    if ok == 0 {
        return Err(Error::win32("dpapi_protect", name, last_error()));
    }
    // SAFETY: `out.pbData` is ours to free.
    let owner = unsafe { LocalBox::new(out.pbData.cast()) };
    // SAFETY: the system wrote `cbData` bytes.
    let sealed = unsafe { std::slice::from_raw_parts(out.pbData, out.cbData as usize) }.to_vec();
    drop(owner);
    let cred_dir = dir.join("credentials");
    std::fs::create_dir_all(&cred_dir)
        .map_err(|e| Error::State { path: cred_dir.display().to_string(), detail: e.to_string() })?;
    let file = cred_dir.join(format!("{name}.dpapi"));
    std::fs::write(&file, sealed)
        .map_err(|e| Error::State { path: file.display().to_string(), detail: e.to_string() })?;
    super::acl::set_exact(&WinPath::from_path(&file), &format!("D:P(A;;FA;;;SY)(A;;FA;;;{real_user})"))
}

/// Creates (or repairs) the users and group; returns their SIDs.
/// `machine_scope`: see `store_password`.
pub fn provision(
    state_dir: &Path,
    real_user: &Sid,
    machine_scope: bool,
    progress: &mut dyn FnMut(String),
) -> Result<Accounts, Error> {
    let [offline, online, group] = crate::ledger::account_names(real_user);
    for name in [offline.as_str(), online.as_str()] {
        let pw = password()?;
        ensure_user(name, &pw)?;
        store_password(state_dir, name, &pw, real_user, machine_scope)?;
        set_hidden(name, true)?;
        progress(format!("account `{name}` ready (hidden from the sign-in screen)"));
    }
    ensure_group(&group, &[&offline, &online])?;
    progress(format!("group `{group}` ready"));
    let account = |name: &str| lookup(name).map(|sid| Account { name: name.into(), sid });
    Ok(Accounts { offline: account(&offline)?, online: account(&online)?, group: account(&group)? })
}

/// Deletes the users and group (missing ones are fine) and their credential files.
pub fn remove(state_dir: &Path, accounts: &Accounts) -> Result<(), Error> {
    for a in [&accounts.offline, &accounts.online] {
        let w = wide(&a.name);
        // SAFETY: NUL-terminated name.
        let rc = unsafe { NetUserDel(std::ptr::null(), w.as_ptr()) };
        if rc != 0 && rc != NERR_USER_NOT_FOUND {
            return Err(Error::win32("net_user_del", a.name.clone(), rc));
        }
        set_hidden(&a.name, false)?;
        let _ = std::fs::remove_file(state_dir.join("credentials").join(format!("{}.dpapi", a.name)));
    }
    let w = wide(&accounts.group.name);
    // SAFETY: NUL-terminated name.
    let rc = unsafe { NetLocalGroupDel(std::ptr::null(), w.as_ptr()) };
    if rc != 0 && rc != NERR_GROUP_NOT_FOUND && rc != ERROR_NO_SUCH_ALIAS {
        return Err(Error::win32("net_local_group_del", accounts.group.name.clone(), rc));
    }
    Ok(())
}

/// The sandbox account's password, unsealed from its DPAPI file.
pub(crate) fn stored_password(state_dir: &Path, name: &str) -> Result<String, Error> {
    use windows_sys::Win32::Security::Cryptography::CryptUnprotectData;
    let file = state_dir.join("credentials").join(format!("{name}.dpapi"));
    let mut sealed =
        std::fs::read(&file).map_err(|e| Error::State { path: file.display().to_string(), detail: e.to_string() })?;
    let input = CRYPT_INTEGER_BLOB { cbData: sealed.len() as u32, pbData: sealed.as_mut_ptr() };
    let mut out = CRYPT_INTEGER_BLOB { cbData: 0, pbData: std::ptr::null_mut() };
    // SAFETY: input blob valid; the output is LocalAlloc'd for us.
    let ok = unsafe {
        CryptUnprotectData(
            &input,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            0x1,
            &mut out,
        )
    };
    if ok == 0 {
        return Err(Error::win32("dpapi_unprotect", name, last_error()));
    }
    // SAFETY: ours to free.
    let owner = unsafe { LocalBox::new(out.pbData.cast()) };
    // SAFETY: the system wrote `cbData` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(out.pbData, out.cbData as usize) }.to_vec();
    drop(owner);
    String::from_utf8(bytes).map_err(|_| Error::State { path: file.display().to_string(), detail: "not UTF-8".into() })
}

/// Starts `cmd /c exit 0` as the sandbox account `name` with
/// [`CreateProcessWithLogonW`](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-createprocesswithlogonw)
/// and waits for it: the only reliable test that the account can still log on (wrong
/// password 1326, expired 1907, locked 1909, broken profile 1168 all show up here).
pub fn logon_test(state_dir: &Path, name: &str) -> Result<(), Error> {
    use std::os::windows::io::AsRawHandle;

    use windows_sys::Win32::System::Threading::{
        CreateProcessWithLogonW, GetExitCodeProcess, WaitForSingleObject, PROCESS_INFORMATION, STARTUPINFOW,
    };
    let pw = wide(stored_password(state_dir, name)?);
    let user = wide(name);
    let domain = wide(".");
    let root = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\Windows".into());
    let app = wide(format!(r"{root}\System32\cmd.exe"));
    let mut line: Vec<u16> = "cmd.exe /c exit 0".encode_utf16().chain([0]).collect();
    let cwd = wide(&root);
    // SAFETY: all-zero plain data.
    let mut si: STARTUPINFOW = unsafe { std::mem::zeroed() };
    si.cb = std::mem::size_of::<STARTUPINFOW>() as u32;
    let mut pi = PROCESS_INFORMATION {
        hProcess: std::ptr::null_mut(),
        hThread: std::ptr::null_mut(),
        dwProcessId: 0,
        dwThreadId: 0,
    };
    // SAFETY: every pointer refers to a live local buffer; LOGON_WITH_PROFILE (1), CREATE_NO_WINDOW.
    let ok = unsafe {
        CreateProcessWithLogonW(
            user.as_ptr(),
            domain.as_ptr(),
            pw.as_ptr(),
            1,
            app.as_ptr(),
            line.as_mut_ptr(),
            0x0800_0000,
            std::ptr::null(),
            cwd.as_ptr(),
            &si,
            &mut pi,
        )
    };
    if ok == 0 {
        return Err(Error::win32("sandbox_logon", name, last_error()));
    }
    let process = super::sys::own_handle(pi.hProcess, "sandbox_logon", name)?;
    drop(super::sys::own_handle(pi.hThread, "sandbox_logon", name)?);
    let mut code = 1u32;
    // SAFETY: valid process handle.
    unsafe {
        WaitForSingleObject(process.as_raw_handle(), 30_000);
        GetExitCodeProcess(process.as_raw_handle(), &mut code);
    }
    if code != 0 {
        return Err(Error::win32("sandbox_logon_child", name, code));
    }
    Ok(())
}

/// The profile directory of the account with `sid` (`ProfileList\<SID>\ProfileImagePath`),
/// or `None` when that user has never logged on.
pub fn profile_dir(sid: &Sid) -> Option<std::path::PathBuf> {
    use windows_sys::Win32::System::Registry::RegGetValueW;
    let key = wide(format!(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\{sid}"));
    let value = wide("ProfileImagePath");
    let mut buf = vec![0u16; 1024];
    let mut len = (buf.len() * 2) as u32;
    // SAFETY: valid strings; the buffer holds `len` bytes. RRF_RT_REG_SZ | RRF_RT_REG_EXPAND_SZ
    // (expanded by the call).
    let rc = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            0x2 | 0x4,
            std::ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    let n = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    Some(std::path::PathBuf::from(String::from_utf16_lossy(&buf[..n])))
}
