//! The elevated implementation's launch: stockade starts `stockade-runner.exe` as the sandbox
//! account and hands it the command over a named pipe; the runner restricts its own token and
//! starts the command (see [`crate::runner_protocol`] for why).
//!
//! stockade's side: a single-instance pipe admitting only the sandbox account (and SYSTEM); the
//! runner started
//! suspended with [`CreateProcessWithLogonW`](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-createprocesswithlogonw),
//! put in a kill-on-close job, resumed; the client's process id checked before anything is
//! sent. The runner's side: [`runner_main`], the whole of `stockade-runner.exe`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stockade_policy::{ExitStatus, Stdio};
use windows_sys::Win32::Foundation::{DuplicateHandle, DUPLICATE_SAME_ACCESS, HANDLE};
use windows_sys::Win32::System::JobObjects::AssignProcessToJobObject;
use windows_sys::Win32::System::Threading::{
    CreateProcessWithLogonW, GetCurrentProcess, GetCurrentThread, ResumeThread, TerminateProcess, WaitForSingleObject,
    PROCESS_INFORMATION, STARTUPINFOW,
};
use windows_sys::Win32::System::IO::CancelSynchronousIo;

use super::sys::{last_error, own_handle, wide};
use super::{job, launch, pipe, token, users};
use crate::cmdline;
use crate::env_block;
use crate::error::Error;
use crate::launch_plan::JobLimits;
use crate::runner_protocol::{decode, encode, RunRequest, RunResponse, RunStatus};

/// The runner's file name, next to the running executable.
pub const RUNNER_EXE: &str = "stockade-runner.exe";

const LOGON_WITH_PROFILE: u32 = 0x1;
const CREATE_SUSPENDED: u32 = 0x4;
const CREATE_NO_WINDOW: u32 = 0x0800_0000;
const STARTF_USESTDHANDLES: u32 = 0x100;

/// Where the runner is expected: next to the running executable, or one directory up (the
/// layout of `cargo test`, whose test binaries live in `target/<profile>/deps`).
pub fn runner_path() -> Result<PathBuf, Error> {
    let exe =
        std::env::current_exe().map_err(|e| Error::State { path: "current exe".into(), detail: e.to_string() })?;
    let next_to = exe.with_file_name(RUNNER_EXE);
    let up = exe.parent().and_then(Path::parent).map(|d| d.join(RUNNER_EXE));
    std::iter::once(next_to.clone()).chain(up).find(|p| p.is_file()).ok_or_else(|| Error::NoImplementation {
        detail: format!("`{}` is missing (install it next to stockade)", next_to.display()),
    })
}

fn io(step: &'static str, e: std::io::Error) -> Error {
    Error::win32(step, "runner pipe", e.raw_os_error().map_or(1, |c| c as u32))
}

/// Runs `request` through a runner started as `account`; returns how the command ended.
pub fn run_as(state: &Path, account: &str, request: &RunRequest, cwd: &Path) -> Result<(ExitStatus, Duration), Error> {
    let runner = runner_path()?;
    let account_sid = users::lookup(account)?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name = format!("stockade-runner-{}-{stamp}", std::process::id());
    let server = pipe::create_server(&name, &account_sid)?;

    let (stdin, stdout, stderr) = if request.stdio_null {
        (launch::open_null(false)?, launch::open_null(true)?, launch::open_null(true)?)
    } else {
        use windows_sys::Win32::System::Console::{STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE};
        (
            launch::inheritable_copy(STD_INPUT_HANDLE, false)?,
            launch::inheritable_copy(STD_OUTPUT_HANDLE, true)?,
            launch::inheritable_copy(STD_ERROR_HANDLE, true)?,
        )
    };
    let password = wide(users::stored_password(state, account)?);
    let waccount = wide(account);
    let domain = wide(".");
    let app = wide(&runner);
    let mut line = cmdline::command_line(
        &runner.display().to_string().encode_utf16().collect::<Vec<_>>(),
        &[wide("--pipe"), name.encode_utf16().collect()].map(|v| v.into_iter().filter(|&c| c != 0).collect()),
    )?;
    line.push(0);
    let wcwd = wide(cwd);
    // SAFETY: all-zero plain data; fields set below.
    let mut si: STARTUPINFOW = unsafe { std::mem::zeroed() };
    si.cb = std::mem::size_of::<STARTUPINFOW>() as u32;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = stdin.as_raw_handle();
    si.hStdOutput = stdout.as_raw_handle();
    si.hStdError = stderr.as_raw_handle();
    let mut pi = PROCESS_INFORMATION {
        hProcess: std::ptr::null_mut(),
        hThread: std::ptr::null_mut(),
        dwProcessId: 0,
        dwThreadId: 0,
    };
    // SAFETY: every pointer refers to a live local buffer; the command line is mutable.
    let ok = unsafe {
        CreateProcessWithLogonW(
            waccount.as_ptr(),
            domain.as_ptr(),
            password.as_ptr(),
            LOGON_WITH_PROFILE,
            app.as_ptr(),
            line.as_mut_ptr(),
            CREATE_SUSPENDED | CREATE_NO_WINDOW,
            std::ptr::null(),
            wcwd.as_ptr(),
            &si,
            &mut pi,
        )
    };
    if ok == 0 {
        return Err(Error::win32("sandbox_logon", account, last_error()));
    }
    let process = own_handle(pi.hProcess, "start_runner", account)?;
    let thread = own_handle(pi.hThread, "start_runner", account)?;
    // The runner and everything it starts die with this job, also if stockade dies.
    let outer = job::create(&JobLimits {
        kill_on_close: true,
        breakaway: false,
        die_on_unhandled_exception: true,
        active_processes: None,
        job_memory: None,
        ui_limits: 0,
    })?;
    // SAFETY: valid job and process handles.
    if unsafe { AssignProcessToJobObject(outer.as_raw_handle(), process.as_raw_handle()) } == 0 {
        let code = last_error();
        // SAFETY: valid process handle.
        unsafe { TerminateProcess(process.as_raw_handle(), 1) };
        return Err(Error::win32("assign_runner_job", account, code));
    }
    // SAFETY: valid thread handle of the suspended runner.
    unsafe { ResumeThread(thread.as_raw_handle()) };
    drop((stdin, stdout, stderr));

    // If the runner dies before connecting, a watchdog cancels the blocking accept. The scope
    // joins it once the runner has exited.
    let mut me: HANDLE = std::ptr::null_mut();
    // SAFETY: duplicating this thread's pseudo-handle into a real handle we own.
    unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            GetCurrentThread(),
            GetCurrentProcess(),
            &mut me,
            0,
            0,
            DUPLICATE_SAME_ACCESS,
        )
    };
    let me = own_handle(me, "runner_watchdog", "thread")?;
    let reply = std::thread::scope(|scope| -> Result<String, Error> {
        let process_ref = &process;
        let me_ref = &me;
        scope.spawn(move || {
            // SAFETY: both handles outlive the scope.
            unsafe {
                if WaitForSingleObject(process_ref.as_raw_handle(), 30_000) == 0 {
                    CancelSynchronousIo(me_ref.as_raw_handle());
                }
            }
        });
        let accepted = pipe::accept(&server, pi.dwProcessId);
        if accepted.is_err() {
            // SAFETY: valid process handle.
            unsafe { TerminateProcess(process.as_raw_handle(), 1) };
        }
        accepted?;
        let mut conn = File::from(server);
        let exchange = conn.write_all(encode(request).as_bytes()).map_err(|e| io("runner_send", e)).and_then(|()| {
            let mut reply = String::new();
            BufReader::new(&conn).read_line(&mut reply).map_err(|e| io("runner_receive", e))?;
            Ok(reply)
        });
        // SAFETY: valid process handle.
        unsafe {
            if WaitForSingleObject(process.as_raw_handle(), 10_000) != 0 {
                TerminateProcess(process.as_raw_handle(), 1);
            }
        }
        exchange
    })?;
    let response: RunResponse = decode(&reply)
        .map_err(|e| Error::State { path: "runner response".into(), detail: format!("{e}: {reply:?}") })?;
    match response.status.to_exit() {
        Some(status) => Ok((status, Duration::from_millis(response.duration_ms))),
        None => Err(Error::win32(
            "runner",
            account,
            match response.status {
                RunStatus::Failed { win32 } => win32,
                _ => 1,
            },
        )),
    }
}

fn serve(pipe_name: &str) -> Result<RunResponse, Error> {
    let conn = File::from(pipe::connect_client(pipe_name)?);
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line).map_err(|e| io("runner_receive", e))?;
    let req: RunRequest =
        decode(&line).map_err(|e| Error::State { path: "runner request".into(), detail: e.to_string() })?;
    let base = token::process_token()?;
    let id = token::identity(&base)?;
    let mut restricting = req.restricting_sids.clone();
    restricting.extend(id.logon_sid.clone());
    let restricted = token::restricted_token(&base, &restricting, &id)?;
    let job = job::create(&req.job)?;
    let result = launch::run(launch::Launch {
        token: &restricted,
        application: Some(wide(&req.application)),
        command_line: req.command_line.clone(),
        cwd: wide(&req.cwd),
        environment: env_block::encode(&req.environment),
        stdio: if req.stdio_null { Stdio::Null } else { Stdio::Inherit },
        desktop: req.desktop.as_ref().map(wide),
        job: &job,
        timeout: req.timeout_ms.map(Duration::from_millis),
    });
    let response = match result {
        Ok((status, d)) => RunResponse { status: RunStatus::from_exit(status), duration_ms: d.as_millis() as u64 },
        Err(Error::Win32 { code, .. }) => RunResponse { status: RunStatus::Failed { win32: code }, duration_ms: 0 },
        Err(_) => RunResponse { status: RunStatus::Failed { win32: 1 }, duration_ms: 0 },
    };
    (&conn).write_all(encode(&response).as_bytes()).map_err(|e| io("runner_send", e))?;
    drop(job);
    Ok(response)
}

/// The whole of `stockade-runner.exe`: `--pipe NAME`. Returns the process exit code.
pub fn runner_main(args: &[String]) -> i32 {
    let Some(name) = args.windows(2).find(|w| w[0] == "--pipe").map(|w| w[1].clone()) else {
        eprintln!("stockade-runner: usage: stockade-runner --pipe NAME (started by stockade, not by hand)");
        return 2;
    };
    match serve(&name) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("stockade-runner: {e}");
            1
        }
    }
}
