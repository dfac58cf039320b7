//! `stockade doctor` on Linux: what the host offers, and which implementation and layers
//! `run` would use under the given policy.

use stockade_policy::{
    Check, CheckStatus, DoctorReport, Enforcement, LayerReport, LayerStatus, LinuxImplementation, Policy,
};

use crate::host_facts;

fn check(name: &str, status: CheckStatus, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check { name: name.into(), status, detail: detail.into(), fix: fix.map(str::to_owned) }
}

/// Builds the report.
pub fn report(policy: &Policy, disable_userns: bool) -> DoctorReport {
    let caps = host_facts::capabilities(disable_userns);
    let mut checks = vec![check("kernel", CheckStatus::Ok, format!("Linux {}", caps.kernel), None)];
    checks.push(if caps.landlock_abi > 0 {
        check(
            "landlock",
            if caps.landlock_abi >= 6 { CheckStatus::Ok } else { CheckStatus::Warn },
            format!("ABI {}", caps.landlock_abi),
            (caps.landlock_abi < 6).then_some("Linux 6.12+ adds signal and abstract-socket scoping"),
        )
    } else {
        check(
            "landlock",
            CheckStatus::Missing,
            "not available",
            Some("Linux 5.13+ with `lsm=...,landlock` on the kernel command line"),
        )
    });
    checks.push(match &caps.userns {
        Ok(()) => check("user namespaces", CheckStatus::Ok, "available", None),
        Err(why) => check(
            "user namespaces",
            CheckStatus::Missing,
            why.clone(),
            Some("on Ubuntu install contrib/apparmor/stockade into /etc/apparmor.d/ and reload AppArmor (see docs/linux.md), or allow `landlock-only`"),
        ),
    });
    checks.push(check(
        "seccomp",
        if caps.seccomp { CheckStatus::Ok } else { CheckStatus::Missing },
        if caps.seccomp { "filters supported" } else { "not supported" },
        None,
    ));
    let (groups, words) = crate::cgroup::describe();
    checks.push(if groups {
        check("limits", CheckStatus::Ok, format!("{words}; RLIMIT_CORE=1 byte; RLIMIT_NOFILE per process"), None)
    } else {
        check(
            "limits",
            CheckStatus::Warn,
            format!("rlimits (RLIMIT_NPROC, RLIMIT_AS, RLIMIT_CORE=1 byte, RLIMIT_NOFILE) where no group covers a limit; {words}; {}", caps.cgroup.1),
            Some("tree-wide limits need cgroup v1 controllers (as root), or a caller in the root group of a cgroup v2 hierarchy that enables pids and memory below it (on systemd hosts that takes a delegated scope, which stockade does not ask for yet)"),
        )
    });
    let implementation = policy.linux.candidates().into_iter().find(|i| match i {
        LinuxImplementation::Namespaces => caps.userns.is_ok(),
        LinuxImplementation::LandlockOnly => caps.landlock_abi > 0,
    });
    let mut enforcement = Enforcement::default();
    match implementation {
        Some(LinuxImplementation::Namespaces) => {
            for l in [
                "userns", "mountns", "pidns", "netns", "ipcns", "utsns", "landlock", "seccomp", "nnp", "caps",
                "limits", "env",
            ] {
                let status = match l {
                    "landlock" if caps.landlock_abi == 0 => LayerStatus::None,
                    "netns" if policy.network.mode == stockade_policy::NetworkMode::On => LayerStatus::None,
                    "limits" => LayerStatus::Partial,
                    _ => LayerStatus::Full,
                };
                enforcement.layers.push(LayerReport {
                    layer: l.into(),
                    status,
                    detail: namespaces_detail(l, &caps).into(),
                });
            }
            // The same gaps every run of this implementation reports.
            if policy.network.mode == stockade_policy::NetworkMode::On {
                enforcement.gaps.push("network on: the command shares the host's network".into());
            }
            enforcement.gaps.extend(crate::supervisor::residual_gaps(caps.landlock_abi, true));
        }
        Some(LinuxImplementation::LandlockOnly) => {
            for (l, s) in [
                ("landlock", LayerStatus::Partial),
                ("seccomp", LayerStatus::Full),
                ("nnp", LayerStatus::Full),
                ("caps", LayerStatus::Full),
                ("limits", LayerStatus::Partial),
                ("env", LayerStatus::Full),
            ] {
                enforcement.layers.push(LayerReport { layer: l.into(), status: s, detail: String::new() });
            }
            enforcement.gaps = crate::supervisor::landlock_only_gaps(policy, caps.landlock_abi);
        }
        None => {}
    }
    DoctorReport {
        platform: "linux".into(),
        checks,
        implementation: implementation.map(|i| i.as_str().to_owned()),
        enforcement,
    }
}

fn namespaces_detail(layer: &str, caps: &host_facts::Capabilities) -> &'static str {
    match layer {
        "userns" => "the caller's uid/gid mapped to themselves",
        "mountns" => "read-only `/`, writable roots, protected paths read-only (plus each repository's worktree and submodule git metadata; a new `.git/commondir` cannot be stopped and is reported after the run); missing protected paths get placeholders on the host (empty agent config dirs; `.git/hooks`, or a missing `.git`, holding only a `.stockade-placeholder` note; a `.git` without `HEAD`, such as that placeholder, is read-only as a whole, and git's discovery ignores it)",
        "pidns" => "stockade's init is pid 1; the tree dies with the run",
        "netns" => "loopback only; with an allowlist, one listener leading to the proxy (none when network is on)",
        "ipcns" => "private System V IPC and message queues",
        "utsns" => "own hostname",
        "landlock" if caps.landlock_abi >= 6 => "filesystem rules plus signal and abstract-socket scoping",
        "landlock" if caps.landlock_abi > 0 => "filesystem rules (no scoping before ABI 6)",
        "landlock" => "unavailable; the mount namespace still enforces writes",
        "seccomp" => "deny list: mount/namespace syscalls, ptrace, io_uring, bpf, keyctl, TIOCSTI, socket families, foreign arches",
        "nnp" => "PR_SET_NO_NEW_PRIVS",
        "caps" => "empty capability sets in the command",
        "limits" => "a group per run: cgroup v1 pids/memory (root, where mounted) or cgroup v2 below the caller's group (a caller in the root group); otherwise rlimits (RLIMIT_NPROC, RLIMIT_AS); RLIMIT_CORE=1 byte; RLIMIT_NOFILE per process",
        "env" => "built from the policy's allowlist",
        _ => "",
    }
}
