//! A private desktop per launch.
//!
//! Windows on the same desktop can send each other messages (input injection, hooks).
//! [`CreateDesktopW`](https://learn.microsoft.com/en-us/windows/win32/api/winuser/nf-winuser-createdesktopw)
//! with a DACL naming only the launching logon SID (and SYSTEM) gives the command a desktop of
//! its own; it is closed when the [`Desktop`] drops.

use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::System::StationsAndDesktops::{
    CloseDesktop, CreateDesktopW, GetProcessWindowStation, GetUserObjectInformationW, HDESK, UOI_NAME,
};

use super::sys::{last_error, wide, SecDesc};
use crate::error::Error;
use crate::sid::Sid;

const GENERIC_ALL: u32 = 0x1000_0000;

/// An open desktop, closed on drop.
#[derive(Debug)]
pub struct Desktop {
    handle: HDESK,
    /// `winstation\desktop`, for `STARTUPINFOW::lpDesktop` (NUL-terminated).
    pub full_name: Vec<u16>,
}

impl Drop for Desktop {
    fn drop(&mut self) {
        // SAFETY: the handle came from CreateDesktopW and is closed once.
        unsafe { CloseDesktop(self.handle) };
    }
}

fn window_station_name() -> Result<String, Error> {
    // SAFETY: returns a handle owned by the process; not closed.
    let ws = unsafe { GetProcessWindowStation() };
    let mut buf = [0u16; 256];
    let mut needed = 0u32;
    // SAFETY: `buf` is valid for its size in bytes.
    let ok = unsafe {
        GetUserObjectInformationW(ws, UOI_NAME, buf.as_mut_ptr().cast(), (buf.len() * 2) as u32, &mut needed)
    };
    if ok == 0 {
        return Err(Error::win32("window_station_name", "process window station", last_error()));
    }
    let len = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    Ok(String::from_utf16_lossy(&buf[..len]))
}

/// Creates desktop `name` that only SYSTEM and `sids` may use. For a restricted token the
/// list must hold one SID of the token's user or groups and one of its restricting SIDs (the
/// logon SID, or stockade's sandbox SID).
pub fn create(name: &str, sids: &[&Sid]) -> Result<Desktop, Error> {
    let mut sddl = "D:P(A;;GA;;;SY)".to_owned();
    for s in sids {
        sddl.push_str(&format!("(A;;GA;;;{s})"));
    }
    let sd = SecDesc::from_sddl(&sddl)?;
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.as_ptr(),
        bInheritHandle: 0,
    };
    let wname = wide(name);
    // SAFETY: the name is NUL-terminated and `sa` points to a descriptor alive for the call.
    let h = unsafe { CreateDesktopW(wname.as_ptr(), std::ptr::null(), std::ptr::null(), 0, GENERIC_ALL, &sa) };
    if h.is_null() {
        return Err(Error::win32("create_desktop", name, last_error()));
    }
    let full = format!("{}\\{name}", window_station_name().unwrap_or_else(|_| "WinSta0".into()));
    Ok(Desktop { handle: h, full_name: wide(full) })
}
