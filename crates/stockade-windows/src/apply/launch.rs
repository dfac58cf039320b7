//! Starting the command: restricted token, job assigned at creation, only the stdio handles
//! inherited, private desktop, environment block from the policy, exit code and timeout.
//!
//! [`CreateProcessAsUserW`](https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-createprocessasuserw)
//! accepts a restricted version of the caller's own primary token without extra privileges.
//! [`UpdateProcThreadAttribute`](https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-updateprocthreadattribute)
//! sets `PROC_THREAD_ATTRIBUTE_JOB_LIST` (the job from the first instruction) and
//! `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` (exactly the three stdio handles, not every inheritable
//! handle of stockade).

use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::time::{Duration, Instant};

use stockade_policy::{ExitStatus, Stdio};
use windows_sys::Win32::Foundation::{DuplicateHandle, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING};
use windows_sys::Win32::System::Console::{GetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE};
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, DeleteProcThreadAttributeList, GetCurrentProcess, GetExitCodeProcess,
    InitializeProcThreadAttributeList, UpdateProcThreadAttribute, WaitForSingleObject, INFINITE,
    LPPROC_THREAD_ATTRIBUTE_LIST, PROCESS_INFORMATION, STARTUPINFOEXW,
};

use super::job;
use super::sys::{last_error, own_handle, wide};
use crate::error::Error;
use crate::launch_plan::NULL_DEVICE;

const PROC_THREAD_ATTRIBUTE_HANDLE_LIST: usize = 0x0002_0002;
const PROC_THREAD_ATTRIBUTE_JOB_LIST: usize = 0x0002_000D;
const EXTENDED_STARTUPINFO_PRESENT: u32 = 0x0008_0000;
const CREATE_UNICODE_ENVIRONMENT: u32 = 0x0000_0400;
const STARTF_USESTDHANDLES: u32 = 0x0000_0100;
const GENERIC_READ: u32 = 0x8000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const SYNCHRONIZE: u32 = 0x0010_0000;
/// The command gets a console of its own (hidden), never the user's: a process attached to a
/// console can open `CONIN$` with full access and type into the user's shell.
const CREATE_NO_WINDOW: u32 = 0x0800_0000;

/// What to start.
#[derive(Debug)]
pub struct Launch<'a> {
    /// The primary token (restricted).
    pub token: &'a OwnedHandle,
    /// The resolved program path (NUL-terminated), or `None` to let Windows search.
    pub application: Option<Vec<u16>>,
    /// The command line (without NUL).
    pub command_line: Vec<u16>,
    /// The working directory.
    pub cwd: Vec<u16>,
    /// The environment block.
    pub environment: Vec<u16>,
    /// Standard streams.
    pub stdio: Stdio,
    /// `winsta\desktop` (NUL-terminated), or `None` for the caller's.
    pub desktop: Option<Vec<u16>>,
    /// The job the process is created in.
    pub job: &'a OwnedHandle,
    /// Wall-clock limit.
    pub timeout: Option<Duration>,
}

/// An owned process attribute list, deleted on drop.
struct AttributeList {
    buf: Vec<u64>,
}

impl AttributeList {
    fn new(count: u32) -> Result<AttributeList, Error> {
        let mut size = 0usize;
        // SAFETY: size query with a null list.
        unsafe { InitializeProcThreadAttributeList(std::ptr::null_mut(), count, 0, &mut size) };
        let mut buf = vec![0u64; size.div_ceil(8)];
        // SAFETY: `buf` holds `size` bytes, aligned.
        if unsafe { InitializeProcThreadAttributeList(buf.as_mut_ptr().cast(), count, 0, &mut size) } == 0 {
            return Err(Error::win32("init_attribute_list", "launch", last_error()));
        }
        Ok(AttributeList { buf })
    }

    fn ptr(&mut self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buf.as_mut_ptr().cast()
    }

    /// # Safety
    /// `value` must stay valid until the list is dropped (the list stores the pointer).
    unsafe fn set<T>(&mut self, attribute: usize, value: *const T, count: usize) -> Result<(), Error> {
        // SAFETY: the caller keeps `value` alive; size is `count` elements of T.
        let ok = unsafe {
            UpdateProcThreadAttribute(
                self.ptr(),
                0,
                attribute,
                value.cast(),
                count * std::mem::size_of::<T>(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        if ok == 0 {
            return Err(Error::win32("update_attribute_list", format!("attribute {attribute:#x}"), last_error()));
        }
        Ok(())
    }
}

impl Drop for AttributeList {
    fn drop(&mut self) {
        // SAFETY: the list was initialised in `new`.
        unsafe { DeleteProcThreadAttributeList(self.ptr()) };
    }
}

pub(crate) fn open_null(write: bool) -> Result<OwnedHandle, Error> {
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: std::ptr::null_mut(),
        bInheritHandle: 1,
    };
    let name = wide(NULL_DEVICE);
    let access = if write { GENERIC_WRITE } else { GENERIC_READ };
    // SAFETY: NUL-terminated name, valid attributes.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            &sa,
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        )
    };
    own_handle(h, "open_nul", NULL_DEVICE)
}

/// An inheritable copy of one of stockade's standard handles with only the access the child
/// needs: read for stdin, write for stdout/stderr. A console input handle with write access
/// would let the command inject keystrokes into the user's console (`WriteConsoleInputW`, the
/// Windows form of `TIOCSTI`), and a console output handle with read access would let it read
/// the screen; the reduced copies allow neither. If the reduced copy cannot be made, the
/// stream is `\\.\NUL`, never a full-access copy.
pub(crate) fn inheritable_copy(std: u32, write: bool) -> Result<OwnedHandle, Error> {
    // SAFETY: returns a borrowed handle (or null/invalid without a console).
    let h = unsafe { GetStdHandle(std) };
    if h.is_null() || h == windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE {
        return open_null(write);
    }
    let access = SYNCHRONIZE | if write { GENERIC_WRITE } else { GENERIC_READ };
    let mut dup: HANDLE = std::ptr::null_mut();
    // SAFETY: duplicating a valid handle of our own process into our process, inheritable.
    let ok = unsafe { DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &mut dup, access, 1, 0) };
    if ok == 0 {
        return open_null(write);
    }
    own_handle(dup, "duplicate_stdio", "std handle")
}

/// Classifies a `CreateProcess*` failure as on Linux: not found (127) or not executable (126).
pub fn spawn_failure(code: u32) -> Option<ExitStatus> {
    match code {
        2 | 3 | 123 | 267 => Some(ExitStatus::NotFound),
        5 | 193 | 216 | 1392 => Some(ExitStatus::NotExecutable),
        _ => None,
    }
}

/// Starts and waits. Returns the exit status, or the status for a program that could not be
/// started (not found, not executable).
pub fn run(l: Launch<'_>) -> Result<(ExitStatus, Duration), Error> {
    let (stdin, stdout, stderr) = match l.stdio {
        Stdio::Null => (open_null(false)?, open_null(true)?, open_null(true)?),
        _ => (
            inheritable_copy(STD_INPUT_HANDLE, false)?,
            inheritable_copy(STD_OUTPUT_HANDLE, true)?,
            inheritable_copy(STD_ERROR_HANDLE, true)?,
        ),
    };
    let handles: Vec<HANDLE> = vec![stdin.as_raw_handle(), stdout.as_raw_handle(), stderr.as_raw_handle()];
    let job_handles: Vec<HANDLE> = vec![l.job.as_raw_handle()];
    let mut attrs = AttributeList::new(2)?;
    // SAFETY: `handles` and `job_handles` outlive `attrs` (declared before it, dropped after).
    unsafe {
        attrs.set(PROC_THREAD_ATTRIBUTE_HANDLE_LIST, handles.as_ptr(), handles.len())?;
        attrs.set(PROC_THREAD_ATTRIBUTE_JOB_LIST, job_handles.as_ptr(), job_handles.len())?;
    }
    // SAFETY: all-zero STARTUPINFOEXW is valid; fields are filled below.
    let mut si: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    si.StartupInfo.cb = std::mem::size_of::<STARTUPINFOEXW>() as u32;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = handles[0];
    si.StartupInfo.hStdOutput = handles[1];
    si.StartupInfo.hStdError = handles[2];
    let mut desktop = l.desktop.clone();
    if let Some(d) = desktop.as_mut() {
        si.StartupInfo.lpDesktop = d.as_mut_ptr();
    }
    si.lpAttributeList = attrs.ptr();
    let mut cmd = l.command_line.clone();
    cmd.push(0);
    let mut pi: PROCESS_INFORMATION = PROCESS_INFORMATION {
        hProcess: std::ptr::null_mut(),
        hThread: std::ptr::null_mut(),
        dwProcessId: 0,
        dwThreadId: 0,
    };
    let started = Instant::now();
    // SAFETY: every pointer refers to a live local buffer; the command line buffer is mutable
    // as the API requires; the environment block is double-NUL terminated.
    let ok = unsafe {
        CreateProcessAsUserW(
            l.token.as_raw_handle(),
            l.application.as_ref().map_or(std::ptr::null(), |a| a.as_ptr()),
            cmd.as_mut_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            1,
            EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT | CREATE_NO_WINDOW,
            l.environment.as_ptr().cast(),
            l.cwd.as_ptr(),
            &si.StartupInfo,
            &mut pi,
        )
    };
    if ok == 0 {
        let code = last_error();
        return match spawn_failure(code) {
            Some(status) => Ok((status, started.elapsed())),
            None => Err(Error::win32("create_process", String::from_utf16_lossy(&l.command_line), code)),
        };
    }
    let process = own_handle(pi.hProcess, "create_process", "process")?;
    drop(own_handle(pi.hThread, "create_process", "thread")?);
    drop((stdin, stdout, stderr));
    let ms = l.timeout.map_or(INFINITE, |t| u32::try_from(t.as_millis()).unwrap_or(INFINITE - 1));
    // SAFETY: valid process handle.
    let waited = unsafe { WaitForSingleObject(process.as_raw_handle(), ms) };
    if waited == WAIT_TIMEOUT {
        job::terminate(l.job, 1)?;
        // SAFETY: as above.
        unsafe { WaitForSingleObject(process.as_raw_handle(), 5_000) };
        return Ok((ExitStatus::TimedOut, started.elapsed()));
    }
    if waited != WAIT_OBJECT_0 {
        return Err(Error::win32("wait_process", "process", last_error()));
    }
    let mut code = 0u32;
    // SAFETY: valid process handle; `code` is a local.
    if unsafe { GetExitCodeProcess(process.as_raw_handle(), &mut code) } == 0 {
        return Err(Error::win32("exit_code", "process", last_error()));
    }
    Ok((ExitStatus::Exited { code: code as i32 }, started.elapsed()))
}
