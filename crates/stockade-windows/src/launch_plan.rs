//! How one command is launched: job limits, desktop, and which implementation runs it.
//!
//! The command runs in a [job object](https://learn.microsoft.com/en-us/windows/win32/procthread/job-objects)
//! assigned at creation (`PROC_THREAD_ATTRIBUTE_JOB_LIST`), so no child can escape before the
//! limits apply; `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` ends the whole tree when stockade lets go
//! of the job (also when stockade itself dies), and breakaway is never allowed. UI limits keep
//! the command away from the clipboard, global atoms and other desktops' windows. Each launch
//! gets a private [desktop](https://learn.microsoft.com/en-us/windows/win32/winstation/desktops)
//! unless the policy opts out.

use serde::{Deserialize, Serialize};
use stockade_policy::{Policy, WindowsImplementation};

use crate::error::Error;

/// `JOB_OBJECT_UILIMIT_*` flags stockade sets.
pub mod ui_limits {
    /// `JOB_OBJECT_UILIMIT_HANDLES`: no USER handles of processes outside the job.
    pub const HANDLES: u32 = 0x1;
    /// `JOB_OBJECT_UILIMIT_READCLIPBOARD`.
    pub const READ_CLIPBOARD: u32 = 0x2;
    /// `JOB_OBJECT_UILIMIT_WRITECLIPBOARD`.
    pub const WRITE_CLIPBOARD: u32 = 0x4;
    /// `JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS`.
    pub const SYSTEM_PARAMETERS: u32 = 0x8;
    /// `JOB_OBJECT_UILIMIT_DISPLAYSETTINGS`.
    pub const DISPLAY_SETTINGS: u32 = 0x10;
    /// `JOB_OBJECT_UILIMIT_GLOBALATOMS`.
    pub const GLOBAL_ATOMS: u32 = 0x20;
    /// `JOB_OBJECT_UILIMIT_DESKTOP`: no switching or creating desktops.
    pub const DESKTOP: u32 = 0x40;
    /// `JOB_OBJECT_UILIMIT_EXITWINDOWS`.
    pub const EXIT_WINDOWS: u32 = 0x80;
    /// Everything above.
    pub const ALL: u32 = 0xff;
}

/// The job object's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLimits {
    /// `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`; always true.
    pub kill_on_close: bool,
    /// `JOB_OBJECT_LIMIT_BREAKAWAY_OK`/`SILENT_BREAKAWAY_OK`; always false.
    pub breakaway: bool,
    /// `JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION`: no Windows Error Reporting dialog on a
    /// crash (it would wait for a click on an invisible desktop).
    pub die_on_unhandled_exception: bool,
    /// `JOB_OBJECT_LIMIT_ACTIVE_PROCESS`.
    pub active_processes: Option<u32>,
    /// `JOB_OBJECT_LIMIT_JOB_MEMORY`, in bytes.
    pub job_memory: Option<u64>,
    /// `JOB_OBJECT_UILIMIT_*`.
    pub ui_limits: u32,
}

impl JobLimits {
    /// The `LimitFlags` of `JOBOBJECT_BASIC_LIMIT_INFORMATION`.
    pub fn limit_flags(&self) -> u32 {
        let mut f = 0;
        if self.kill_on_close {
            f |= 0x2000;
        }
        if self.die_on_unhandled_exception {
            f |= 0x400;
        }
        if self.active_processes.is_some() {
            f |= 0x8;
        }
        if self.job_memory.is_some() {
            f |= 0x200;
        }
        f
    }
}

/// Where the command's windows live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DesktopPlan {
    /// A new desktop on the current window station, whose DACL admits only the command's
    /// logon SID; created per launch, closed after it.
    Private {
        /// The name prefix (a random suffix is added per launch).
        prefix: String,
    },
    /// The user's desktop (`winsta0\default`): the policy opted out.
    Shared,
}

/// How to launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchPlan {
    /// The implementation.
    pub implementation: WindowsImplementation,
    /// Job limits.
    pub job: JobLimits,
    /// Desktop.
    pub desktop: DesktopPlan,
    /// The device opened for `Stdio::Null`: exactly `\\.\NUL`.
    pub null_device: &'static str,
}

/// The exact path of the NUL device. A wrong spelling (`NUL:` relative paths, `\\?\NUL`)
/// resolves through the file system and cost seconds per command elsewhere.
pub const NULL_DEVICE: &str = r"\\.\NUL";

/// The launch plan for `policy` with `implementation`.
pub fn launch_plan(policy: &Policy, implementation: WindowsImplementation) -> LaunchPlan {
    LaunchPlan {
        implementation,
        job: JobLimits {
            kill_on_close: true,
            breakaway: false,
            die_on_unhandled_exception: true,
            active_processes: policy.process.max_processes,
            job_memory: policy.process.memory_bytes,
            ui_limits: ui_limits::ALL,
        },
        desktop: if policy.windows.private_desktop {
            DesktopPlan::Private { prefix: "stockade".into() }
        } else {
            DesktopPlan::Shared
        },
        null_device: NULL_DEVICE,
    }
}

/// Chooses the implementation: the policy's choice if the requirements allow it, otherwise
/// the other allowed one, elevated first. `elevated_ready` says whether `stockade setup` has
/// provisioned the elevated implementation. Never falls back to running unsandboxed.
pub fn choose_implementation(policy: &Policy, elevated_ready: bool) -> Result<WindowsImplementation, Error> {
    let allowed = &policy.windows.allowed_implementations;
    let mut order = vec![policy.windows.sandbox];
    order.extend(WindowsImplementation::ALL.iter().copied().filter(|i| *i != policy.windows.sandbox));
    let Some(first) = order.into_iter().find(|i| allowed.contains(i)) else {
        return Err(Error::NoImplementation { detail: "the requirements allow no Windows implementation".into() });
    };
    if first == WindowsImplementation::Elevated && !elevated_ready {
        return Err(Error::SetupRequired);
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> JobLimits {
        JobLimits {
            kill_on_close: true,
            breakaway: false,
            die_on_unhandled_exception: true,
            active_processes: Some(8),
            job_memory: Some(1 << 30),
            ui_limits: ui_limits::ALL,
        }
    }

    /// WINDOWS.md: "job object allowed breakaway" → no breakaway, ever.
    #[test]
    fn regression_job_never_allows_breakaway_and_kills_on_close() {
        let f = limits().limit_flags();
        assert_eq!(f & 0x800, 0, "JOB_OBJECT_LIMIT_BREAKAWAY_OK");
        assert_eq!(f & 0x1000, 0, "JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK");
        assert_ne!(f & 0x2000, 0, "JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE");
        assert_eq!(f, 0x2000 | 0x400 | 0x8 | 0x200);
        let none = JobLimits { active_processes: None, job_memory: None, ..limits() };
        assert_eq!(none.limit_flags(), 0x2000 | 0x400);
    }

    /// WINDOWS.md: "the NUL device path written wrongly cost 15 s per command".
    #[test]
    fn regression_null_device_is_exactly_dot_nul() {
        assert_eq!(NULL_DEVICE, "\\\\.\\NUL");
        assert_eq!(NULL_DEVICE.len(), 7);
    }
}
