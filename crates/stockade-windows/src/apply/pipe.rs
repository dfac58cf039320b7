//! Named pipes between stockade and the runner: a DACL admitting one SID only, and a check
//! that the client is the process stockade started.
//!
//! [`CreateNamedPipeW`](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-createnamedpipew)
//! with `FILE_FLAG_FIRST_PIPE_INSTANCE` (no one can pre-create the name) and
//! `PIPE_REJECT_REMOTE_CLIENTS`; [`GetNamedPipeClientProcessId`](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-getnamedpipeclientprocessid)
//! verifies who connected.

use std::os::windows::io::{AsRawHandle, OwnedHandle};

use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, OPEN_EXISTING};
use windows_sys::Win32::System::Pipes::{ConnectNamedPipe, CreateNamedPipeW, GetNamedPipeClientProcessId};

use super::sys::{last_error, own_handle, wide, SecDesc};
use crate::error::Error;
use crate::sid::Sid;

const PIPE_ACCESS_DUPLEX: u32 = 0x3;
const FILE_FLAG_FIRST_PIPE_INSTANCE: u32 = 0x0008_0000;
const PIPE_TYPE_BYTE: u32 = 0x0;
const PIPE_WAIT: u32 = 0x0;
const PIPE_REJECT_REMOTE_CLIENTS: u32 = 0x8;
const GENERIC_READ: u32 = 0x8000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const ERROR_PIPE_CONNECTED: u32 = 535;

/// The full name of pipe `name` (`\\.\pipe\name`).
pub fn pipe_path(name: &str) -> String {
    format!(r"\\.\pipe\{name}")
}

/// Creates the server end of pipe `name`, usable only by `client` (and SYSTEM).
pub fn create_server(name: &str, client: &Sid) -> Result<OwnedHandle, Error> {
    create_server_for(name, &[client])
}

/// Creates the server end of pipe `name`, usable only by `clients` (and SYSTEM).
pub fn create_server_for(name: &str, clients: &[&Sid]) -> Result<OwnedHandle, Error> {
    let mut sddl = "D:P(A;;GA;;;SY)".to_owned();
    for c in clients {
        sddl.push_str(&format!("(A;;GA;;;{c})"));
    }
    let sd = SecDesc::from_sddl(&sddl)?;
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.as_ptr(),
        bInheritHandle: 0,
    };
    let path = wide(pipe_path(name));
    // SAFETY: NUL-terminated name; `sa` points to a descriptor alive for the call.
    let h = unsafe {
        CreateNamedPipeW(
            path.as_ptr(),
            PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
            PIPE_TYPE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            1,
            65536,
            65536,
            0,
            &sa,
        )
    };
    own_handle(h, "create_pipe", name)
}

/// Opens the client end of pipe `name`.
pub fn connect_client(name: &str) -> Result<OwnedHandle, Error> {
    let path = wide(pipe_path(name));
    // SAFETY: NUL-terminated name.
    let h = unsafe {
        CreateFileW(
            path.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            std::ptr::null(),
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        )
    };
    own_handle(h, "open_pipe", name)
}

/// Waits for a client on `server` and checks that it is process `expected_pid`.
pub fn accept(server: &OwnedHandle, expected_pid: u32) -> Result<(), Error> {
    // SAFETY: valid pipe handle, synchronous mode.
    let ok = unsafe { ConnectNamedPipe(server.as_raw_handle(), std::ptr::null_mut()) };
    if ok == 0 && last_error() != ERROR_PIPE_CONNECTED {
        return Err(Error::win32("connect_pipe", "server", last_error()));
    }
    let pid = client_pid(server)?;
    if pid != expected_pid {
        return Err(Error::win32("pipe_client_check", format!("pid {pid}, expected {expected_pid}"), 5));
    }
    Ok(())
}

/// The process id of the client connected to `server`.
pub fn client_pid(server: &OwnedHandle) -> Result<u32, Error> {
    let mut pid = 0u32;
    // SAFETY: valid pipe handle; `pid` is a local.
    if unsafe { GetNamedPipeClientProcessId(server.as_raw_handle(), &mut pid) } == 0 {
        return Err(Error::win32("pipe_client_pid", "server", last_error()));
    }
    Ok(pid)
}
