//! What the macOS backend enforces for a policy, and `stockade doctor`'s report (pure).
//!
//! Seatbelt mediates files, network, Mach services, sysctls, signals and process
//! inspection, which covers most of stockade's promise. What it cannot do is stated here
//! once, so `doctor`, every run's [`Enforcement`] and `docs/macos.md` say the same thing:
//! there is no pid namespace (a command can start a new session and outlive its run's
//! timeout kill), no memory or process-count limit, and no private view of `/tmp`.
//! `sandbox-exec(1)` is marked deprecated in its man page (and `sandbox_init` in the SDK
//! headers) but still ships, and Apple's services and browsers build on the same kernel
//! sandbox (Chromium:
//! <https://chromium.googlesource.com/chromium/src/+/main/sandbox/mac/README.md>).

use stockade_policy::{
    Check, CheckStatus, DoctorReport, Enforcement, LayerReport, LayerStatus, Mode, NetworkMode, Policy, Readable,
};

/// What the launcher found on the host, for [`doctor_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProbe {
    /// `/usr/bin/sandbox-exec` exists and is executable.
    pub sandbox_exec: Result<(), String>,
    /// `sw_vers -productVersion`, when it ran.
    pub os_version: Option<String>,
    /// Whether `sandbox-exec` accepted this policy's profile (`None` when not tried).
    pub profile_compiles: Option<Result<(), String>>,
    /// `/usr/bin/log` exists (denial reports).
    pub log_available: bool,
    /// An allowlist proxy is wired to the backend.
    pub proxy_available: bool,
}

/// The layers and gaps of a run under `policy`.
pub fn enforcement(policy: &Policy, proxy_available: bool, log_available: bool) -> Enforcement {
    let fs = &policy.filesystem;
    let reads = match &fs.readable {
        Readable::All => "reads everything except deny-read paths".to_owned(),
        Readable::Roots(r) => format!("reads {} readable roots and the system paths programs need", r.len()),
    };
    let writes = match policy.mode {
        Mode::ReadOnly if fs.private_tmp => "writes only the private temp dir".to_owned(),
        Mode::ReadOnly => "writes nothing".to_owned(),
        _ => format!(
            "writes {} writable roots minus {} protected and {} deny-write paths",
            fs.writable_roots.len(),
            fs.protected.len(),
            fs.deny_write.len()
        ),
    };
    let (net_status, net) = match (policy.network.mode, proxy_available) {
        (NetworkMode::Off, _) => (LayerStatus::Full, "no network, no DNS, no host unix sockets".to_owned()),
        (NetworkMode::Allow, true) => {
            (LayerStatus::Full, "only the allowlist proxy's loopback port; no DNS, no host unix sockets".to_owned())
        }
        (NetworkMode::Allow, false) => {
            (LayerStatus::None, "the allowlist proxy is not wired in; `allow` is refused".to_owned())
        }
        (NetworkMode::On, _) => (LayerStatus::Full, "any IP address; host unix sockets stay closed".to_owned()),
    };
    let mut layers = vec![
        LayerReport {
            layer: "seatbelt".into(),
            status: LayerStatus::Full,
            detail: format!(
                "deny-default profile: {reads}; {writes}; signals and process info only inside the sandbox; \
                 Mach services and sysctls from an allowlist"
            ),
        },
        LayerReport { layer: "seatbelt-network".into(), status: net_status, detail: net },
        LayerReport {
            layer: "process-group".into(),
            status: LayerStatus::Partial,
            detail: "own session and process group, killed as a whole on timeout and at exit; \
                     a process that starts a new session escapes that kill"
                .into(),
        },
        LayerReport {
            layer: "env".into(),
            status: LayerStatus::Full,
            detail: "environment built from the policy's allowlist".into(),
        },
        LayerReport {
            layer: "denial-log".into(),
            status: if log_available { LayerStatus::Full } else { LayerStatus::None },
            detail: if log_available {
                "denials read from the unified log (`log stream`) by this run's tag".into()
            } else {
                "`/usr/bin/log` is missing; denials are enforced but not reported".into()
            },
        },
    ];
    layers.push(LayerReport {
        layer: "rlimits".into(),
        status: LayerStatus::Full,
        detail: match policy.process.max_open_files {
            Some(n) => format!("RLIMIT_CORE=0; RLIMIT_NOFILE at most {n} per process"),
            None => "RLIMIT_CORE=0".into(),
        },
    });
    if fs.private_tmp {
        layers.push(LayerReport {
            layer: "private-tmp".into(),
            status: LayerStatus::Partial,
            detail: "a fresh TMPDIR per run; `/tmp` itself stays readable (not writable)".into(),
        });
    }
    let mut gaps = vec![
        "no pid namespace: the command sees that other processes exist (their details are refused) \
         and can outlive its run by starting a new session"
            .to_owned(),
        "no separate loopback: with network off the command cannot reach even its own TCP servers".to_owned(),
        "hard links that already exist inside a writable root reach their target".to_owned(),
    ];
    if policy.process.memory_bytes.is_some() {
        gaps.push("process.memory is not enforced on macOS".into());
    }
    if policy.process.max_processes.is_some() {
        gaps.push(
            "process.max_processes is not enforced on macOS (RLIMIT_NPROC counts all of the user's processes)".into(),
        );
    }
    if fs.private_tmp && matches!(fs.readable, Readable::All) {
        gaps.push("`/tmp` and other users' shared temp files stay readable".into());
    }
    Enforcement { layers, gaps }
}

/// `stockade doctor` for macOS from what the launcher probed.
pub fn doctor_report(policy: &Policy, probe: &HostProbe) -> DoctorReport {
    let mut checks = Vec::new();
    checks.push(match &probe.sandbox_exec {
        Ok(()) => check("sandbox-exec", CheckStatus::Ok, "`/usr/bin/sandbox-exec` is present".into(), None),
        Err(e) => check(
            "sandbox-exec",
            CheckStatus::Missing,
            format!("`/usr/bin/sandbox-exec`: {e}"),
            Some("restore `/usr/bin/sandbox-exec`; it ships with macOS"),
        ),
    });
    checks.push(match &probe.os_version {
        Some(v) => check("macos version", CheckStatus::Ok, format!("macOS {v}"), None),
        None => check("macos version", CheckStatus::Warn, "`sw_vers` did not answer".into(), None),
    });
    if let Some(c) = &probe.profile_compiles {
        checks.push(match c {
            Ok(()) => check("profile", CheckStatus::Ok, "this policy's profile compiles and applies".into(), None),
            Err(e) => check(
                "profile",
                CheckStatus::Missing,
                format!("`sandbox-exec` rejected the profile: {e}"),
                Some("report the macOS version and this message; the profile uses an SBPL feature it lacks"),
            ),
        });
    }
    checks.push(if probe.log_available {
        check("denial log", CheckStatus::Ok, "`/usr/bin/log` is present".into(), None)
    } else {
        check("denial log", CheckStatus::Warn, "`/usr/bin/log` is missing; denials will not be reported".into(), None)
    });
    if policy.network.mode == NetworkMode::Allow {
        checks.push(if probe.proxy_available {
            check("allowlist proxy", CheckStatus::Ok, "wired in".into(), None)
        } else {
            check(
                "allowlist proxy",
                CheckStatus::Missing,
                "network mode `allow` needs the proxy, which this build does not wire to macOS".into(),
                Some("use `--network off` or `--network on`"),
            )
        });
    }
    let usable = probe.sandbox_exec.is_ok()
        && !matches!(probe.profile_compiles, Some(Err(_)))
        && (policy.network.mode != NetworkMode::Allow || probe.proxy_available);
    // `danger-full-access` runs without a sandbox (the facade's direct mode), never here.
    let implementation = match policy.mode {
        Mode::DangerFullAccess => Some("none".to_owned()),
        _ => usable.then(|| "seatbelt".to_owned()),
    };
    DoctorReport {
        platform: "macos".into(),
        checks,
        implementation,
        enforcement: enforcement(policy, probe.proxy_available, probe.log_available),
    }
}

fn check(name: &str, status: CheckStatus, detail: String, fix: Option<&str>) -> Check {
    Check { name: name.into(), status, detail, fix: fix.map(str::to_owned) }
}
