//! Job objects: the whole process tree of a run, killed when stockade lets go of it.
//!
//! [`JOBOBJECT_EXTENDED_LIMIT_INFORMATION`](https://learn.microsoft.com/en-us/windows/win32/api/winnt/ns-winnt-jobobject_extended_limit_information)
//! with `KILL_ON_JOB_CLOSE` and without `BREAKAWAY_OK`, plus
//! [UI restrictions](https://learn.microsoft.com/en-us/windows/win32/api/winnt/ns-winnt-jobobject_basic_ui_restrictions).
//! The job is assigned at process creation (`PROC_THREAD_ATTRIBUTE_JOB_LIST`, see
//! [`super::launch`]), never after, so there is no window in which a child could escape.

use std::os::windows::io::{AsRawHandle, OwnedHandle};

use windows_sys::Win32::System::JobObjects::{
    CreateJobObjectW, JobObjectBasicUIRestrictions, JobObjectExtendedLimitInformation, SetInformationJobObject,
    TerminateJobObject, JOBOBJECT_BASIC_UI_RESTRICTIONS, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
};

use super::sys::{last_error, own_handle};
use crate::error::Error;
use crate::launch_plan::JobLimits;

/// Creates an unnamed job with `limits`.
pub fn create(limits: &JobLimits) -> Result<OwnedHandle, Error> {
    // SAFETY: no security attributes, no name.
    let job = own_handle(unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) }, "create_job", "job")?;
    // SAFETY: an all-zero JOBOBJECT_EXTENDED_LIMIT_INFORMATION is valid plain data.
    let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
    info.BasicLimitInformation.LimitFlags = limits.limit_flags();
    info.BasicLimitInformation.ActiveProcessLimit = limits.active_processes.unwrap_or(0);
    info.JobMemoryLimit = limits.job_memory.map_or(0, |m| usize::try_from(m).unwrap_or(usize::MAX));
    // SAFETY: `info` is a valid structure of the size passed.
    let ok = unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JobObjectExtendedLimitInformation,
            (&info as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    };
    if ok == 0 {
        return Err(Error::win32("set_job_limits", "job", last_error()));
    }
    let ui = JOBOBJECT_BASIC_UI_RESTRICTIONS { UIRestrictionsClass: limits.ui_limits };
    // SAFETY: as above.
    let ok = unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JobObjectBasicUIRestrictions,
            (&ui as *const JOBOBJECT_BASIC_UI_RESTRICTIONS).cast(),
            std::mem::size_of::<JOBOBJECT_BASIC_UI_RESTRICTIONS>() as u32,
        )
    };
    if ok == 0 {
        return Err(Error::win32("set_job_ui_limits", "job", last_error()));
    }
    Ok(job)
}

/// Ends every process in the job.
pub fn terminate(job: &OwnedHandle, code: u32) -> Result<(), Error> {
    // SAFETY: `job` is a valid job handle.
    if unsafe { TerminateJobObject(job.as_raw_handle(), code) } == 0 {
        return Err(Error::win32("terminate_job", "job", last_error()));
    }
    Ok(())
}
