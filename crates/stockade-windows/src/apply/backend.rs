//! The [`Backend`](stockade_policy::Backend) methods on Windows: `run`, `setup`, `cleanup`,
//! `doctor`, composed from the pure plan and the apply modules.

use std::ffi::OsString;
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use stockade_policy::{
    Check, CheckStatus, CommandSpec, Diagnose, DoctorReport, Enforcement, LayerReport, LayerStatus, Mode, NetworkMode,
    Outcome, Policy, SetupOptions, SetupReport, WindowsImplementation,
};
use windows_sys::Win32::System::Threading::{GetExitCodeProcess, WaitForSingleObject, INFINITE};
use windows_sys::Win32::UI::Shell::{IsUserAnAdmin, ShellExecuteExW, SHELLEXECUTEINFOW};

use super::sys::{last_error, own_handle, wide};
use super::{acl, desktop, firewall, job, launch, probe, runner, store, token, users, wfp};
use crate::apply_steps::{execute, execute_cleanup, HostOps};
use crate::cmdline;
use crate::env_block::{self, EnvInputs};
use crate::error::Error;
use crate::firewall_plan::{FirewallRule, WfpFilter};
use crate::launch_plan::{choose_implementation, launch_plan, DesktopPlan};
use crate::ledger::Ledger;
use crate::ledger::PathAce;
use crate::plan::{self, WindowsPlan};
use crate::runner_protocol::RunRequest;
use crate::win_path::WinPath;

fn state_dir() -> Result<PathBuf, Error> {
    std::env::var_os("LOCALAPPDATA")
        .map(|d| PathBuf::from(d).join("stockade"))
        .ok_or_else(|| Error::State { path: "%LOCALAPPDATA%".into(), detail: "not set".into() })
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::State { path: path.display().to_string(), detail: e.to_string() }
}

/// The Windows side of [`HostOps`]: the state directory, and whether to show progress.
struct WinHost<'a> {
    state: &'a Path,
    progress: bool,
}

impl HostOps for WinHost<'_> {
    fn save_ledger(&mut self, ledger: &Ledger) -> Result<(), Error> {
        store::save(self.state, ledger)
    }

    fn create(&mut self, path: &WinPath, is_dir: bool) -> Result<(), Error> {
        let path = PathBuf::from(path.to_string());
        let r = if is_dir {
            std::fs::create_dir_all(&path)
        } else {
            std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map(drop)
        };
        match r {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(io_err(&path, e)),
            _ => Ok(()),
        }
    }

    fn stamp(&mut self, groups: &[Vec<PathAce>], adding: bool) -> Result<(), Error> {
        acl::change_groups(groups, adding, self.progress)
    }

    fn add_firewall(&mut self, rules: &[FirewallRule]) -> Result<(), Error> {
        if firewall::local_policy_modify_state()? == 1 {
            return Err(Error::FirewallOverridden { profile: "current" });
        }
        firewall::add(rules)?;
        if self.progress {
            eprintln!("stockade: added {} firewall rules for the offline account", rules.len());
        }
        Ok(())
    }

    fn add_wfp(&mut self, filters: &[WfpFilter]) -> Result<(), Error> {
        wfp::add(filters)?;
        if self.progress {
            eprintln!("stockade: added {} WFP filters (ICMP, DNS, SMB) for the offline account", filters.len());
        }
        Ok(())
    }

    fn fingerprint(&mut self, root: &WinPath) -> Option<String> {
        acl::fingerprint(root).ok()
    }
}

/// Applies `p` in the order of [`crate::apply_steps`].
fn apply_plan(p: &WindowsPlan, state: &Path, ledger: &mut Ledger, progress: bool) -> Result<(), Error> {
    execute(p, ledger, &mut WinHost { state, progress })
}

fn enforcement(policy: &Policy, imp: WindowsImplementation) -> Enforcement {
    let layer = |layer: &str, status, detail: &str| LayerReport { layer: layer.into(), status, detail: detail.into() };
    let mut e = Enforcement::default();
    e.layers.push(layer("acl", LayerStatus::Full, "write SIDs on the writable roots, deny ACEs on protected paths"));
    e.layers.push(layer("token", LayerStatus::Full, "write-restricted token without privileges"));
    e.layers.push(layer(
        "job",
        LayerStatus::Full,
        "job object assigned at creation, kill on close, no breakaway, UI limits",
    ));
    e.layers.push(if policy.windows.private_desktop {
        layer("desktop", LayerStatus::Full, "private desktop per launch")
    } else {
        layer("desktop", LayerStatus::None, "the policy opted out of a private desktop")
    });
    if policy.process.max_open_files.is_some() {
        // Job objects limit processes, memory and CPU, not a process's handle count.
        e.gaps.push("process.max_open_files is not enforced on Windows (a job object cannot limit handles)".into());
    }
    if imp == WindowsImplementation::Unelevated {
        if policy.network.mode != NetworkMode::On {
            e.layers.push(layer(
                "network",
                LayerStatus::None,
                "proxy variables only; not enforced without `stockade setup`",
            ));
            e.gaps.push("network access is discouraged, not blocked (unelevated)".into());
        }
        e.gaps.push("reads are not restricted: deny-read paths stay readable (unelevated)".into());
        e.gaps.push("other processes and named pipes of the same user stay reachable (unelevated)".into());
    }
    e
}

fn wide_os(s: &OsString) -> Vec<u16> {
    s.encode_wide().collect()
}

/// `Backend::run`.
pub fn run(policy: &Policy, cmd: &CommandSpec) -> Result<Outcome, Error> {
    if policy.mode == Mode::DangerFullAccess {
        return Err(Error::Unsandboxed);
    }
    if policy.network.mode == NetworkMode::Allow {
        return Err(Error::NetworkAllowUnavailable);
    }
    let state = state_dir()?;
    let mut ledger = store::load(&state)?;
    let imp = choose_implementation(policy, ledger.accounts.is_some())?;
    let facts = probe::facts(policy, &state, false)?;
    let p = plan::plan(policy, imp, &facts, &ledger)?;
    if !p.add.is_empty() {
        // Once per new root (or after its ACL was reset): say why this run takes longer.
        eprintln!("stockade: preparing {} writable root(s) for the sandbox (once)", p.fingerprints.len().max(1));
    }
    apply_plan(&p, &state, &mut ledger, false)?;

    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let run_name = format!("run-{}-{stamp}", std::process::id());
    let run_dir = PathBuf::from(p.temp_parent.to_string()).join(&run_name);
    std::fs::create_dir_all(&run_dir).map_err(|e| io_err(&run_dir, e))?;
    let result = launch_in(policy, cmd, imp, &p, &ledger, &state, &run_dir, &run_name);
    let _ = std::fs::remove_dir_all(&run_dir);
    let (status, duration) = result?;
    let mut e = enforcement(policy, imp);
    if !p.skipped.is_empty() {
        if let Some(acl) = e.layers.iter_mut().find(|l| l.layer == "acl") {
            acl.status = LayerStatus::Partial;
        }
        e.gaps.extend(plan::skipped_gaps(&p.skipped));
    }
    Ok(Outcome::new(status, duration, imp.as_str(), e))
}

/// Everything of a launch after the plan is applied: environment, program, token, job,
/// desktop, then the command (directly, or through the runner for `elevated`).
#[allow(clippy::too_many_arguments)]
fn launch_in(
    policy: &Policy,
    cmd: &CommandSpec,
    imp: WindowsImplementation,
    p: &WindowsPlan,
    ledger: &Ledger,
    state: &Path,
    run_dir: &Path,
    run_name: &str,
) -> Result<(stockade_policy::ExitStatus, std::time::Duration), Error> {
    let elevated = imp == WindowsImplementation::Elevated;
    let workspace = WinPath::from_path(&policy.workspace).to_string();
    let vars = env_block::build(
        &policy.env,
        &EnvInputs {
            host: &cmd.host_env,
            temp_dir: run_dir.display().to_string(),
            workspace,
            network: policy.network.mode,
            proxy_url: None,
            network_enforced: elevated,
        },
    )?;
    let get =
        |n: &str| vars.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone()).unwrap_or_default();
    let program = cmd.program.to_string_lossy().into_owned();
    let Some(app) = cmdline::resolve_program(&program, &get("PATH"), &get("PATHEXT"), &|c| Path::new(c).is_file())
    else {
        return Ok((stockade_policy::ExitStatus::NotFound, std::time::Duration::ZERO));
    };
    let args: Vec<Vec<u16>> = cmd.args.iter().map(wide_os).collect();
    let line = cmdline::command_line(&app.encode_utf16().collect::<Vec<_>>(), &args)?;
    let cwd = cmd.cwd.clone().unwrap_or_else(|| policy.workspace.clone());
    let lp = launch_plan(policy, imp);
    let base = token::process_token()?;
    let id = token::identity(&base)?;

    if elevated {
        let accounts = ledger.accounts.as_ref().ok_or(Error::SetupRequired)?;
        let account = if policy.network.mode == NetworkMode::On { &accounts.online } else { &accounts.offline };
        // The runner adds its own logon SID; the desktop admits the account (normal check)
        // and the sandbox SID (restricted check).
        let model = plan::elevated_token(p, accounts);
        let desk = match &lp.desktop {
            DesktopPlan::Private { prefix } => {
                Some(desktop::create(&format!("{prefix}-{run_name}"), &[&account.sid, &p.sandbox_sid])?)
            }
            DesktopPlan::Shared => None,
        };
        let request = RunRequest {
            restricting_sids: model.restricting_sids,
            application: app,
            command_line: line,
            cwd: cwd.display().to_string(),
            environment: vars,
            job: lp.job.clone(),
            desktop: desk.as_ref().map(|d| String::from_utf16_lossy(&d.full_name[..d.full_name.len() - 1])),
            timeout_ms: policy.process.timeout.map(|t| t.as_millis() as u64),
            stdio_null: cmd.stdio == stockade_policy::Stdio::Null,
        };
        let result = runner::run_as(state, &account.name, &request, &cwd);
        drop(desk);
        return result;
    }

    let model = plan::sandbox_token(p, id.user.clone(), id.groups.clone(), id.logon_sid.as_ref());
    let restricted = token::restricted_token(&base, &model.restricting_sids, &id)?;
    let job = job::create(&lp.job)?;
    let desk = match &lp.desktop {
        DesktopPlan::Private { prefix } => {
            let mut sids = vec![&id.user];
            sids.extend(id.logon_sid.as_ref());
            Some(desktop::create(&format!("{prefix}-{run_name}"), &sids)?)
        }
        DesktopPlan::Shared => None,
    };
    let result = launch::run(launch::Launch {
        token: &restricted,
        application: Some(wide(&app)),
        command_line: line,
        cwd: wide(&cwd),
        environment: env_block::encode(&vars),
        stdio: cmd.stdio,
        desktop: desk.as_ref().map(|d| d.full_name.clone()),
        job: &job,
        timeout: policy.process.timeout,
    });
    drop(job);
    drop(desk);
    result
}

fn is_admin() -> bool {
    // SAFETY: no arguments.
    unsafe { IsUserAnAdmin() != 0 }
}

/// Runs this executable again with `args` through the UAC prompt and waits for it.
fn elevate_self(args: &str) -> Result<(), Error> {
    let exe =
        std::env::current_exe().map_err(|e| Error::State { path: "current exe".into(), detail: e.to_string() })?;
    let file = wide(&exe);
    let verb = wide("runas");
    let params = wide(args);
    // SAFETY: all-zero plain data; fields set below.
    let mut info: SHELLEXECUTEINFOW = unsafe { std::mem::zeroed() };
    info.cbSize = std::mem::size_of::<SHELLEXECUTEINFOW>() as u32;
    info.fMask = 0x40; // SEE_MASK_NOCLOSEPROCESS
    info.lpVerb = verb.as_ptr();
    info.lpFile = file.as_ptr();
    info.lpParameters = params.as_ptr();
    info.nShow = 1;
    // The same working directory, so the elevated process resolves the same workspace (the
    // default for `runas` is the system directory).
    let cwd = std::env::current_dir().map(wide).unwrap_or_else(|_| wide("."));
    info.lpDirectory = cwd.as_ptr();
    // SAFETY: `info` points to strings alive for the call.
    if unsafe { ShellExecuteExW(&mut info) } == 0 {
        let code = last_error();
        return Err(if code == 1223 {
            Error::ElevationDeclined
        } else {
            Error::win32("elevate", exe.display().to_string(), code)
        });
    }
    let process = own_handle(info.hProcess, "elevate", "elevated stockade")?;
    use std::os::windows::io::AsRawHandle;
    let mut code = 1u32;
    // SAFETY: valid process handle.
    unsafe {
        WaitForSingleObject(process.as_raw_handle(), INFINITE);
        GetExitCodeProcess(process.as_raw_handle(), &mut code);
    }
    if code != 0 {
        return Err(Error::win32("elevated_setup", "administrator process", code));
    }
    Ok(())
}

fn parse_implementation(policy: &Policy, options: &SetupOptions) -> Result<WindowsImplementation, Error> {
    let imp = match options.implementation.as_deref() {
        Some(s) => {
            s.parse().map_err(|e: stockade_policy::UnknownName| Error::NoImplementation { detail: e.to_string() })?
        }
        None => policy.windows.sandbox,
    };
    if !policy.windows.allowed_implementations.contains(&imp) {
        return Err(Error::NoImplementation { detail: format!("`{imp}` is not allowed by the requirements") });
    }
    Ok(imp)
}

/// `Backend::setup`.
pub fn setup(policy: &Policy, options: &SetupOptions) -> Result<SetupReport, Error> {
    if let Some(name) = &options.for_user {
        return provision_for(name);
    }
    let imp = parse_implementation(policy, options)?;
    let state = state_dir()?;
    let mut ledger = store::load(&state)?;
    let mut report = SetupReport::default();
    // Accounts that exist but cannot log on (lockout, expired password, broken profile) are
    // re-provisioned: setup is also the repair.
    let healthy = ledger.accounts.as_ref().is_some_and(|a| users::logon_test(&state, &a.offline.name).is_ok());
    let had_accounts = ledger.accounts.is_some();
    if imp == WindowsImplementation::Elevated && (!healthy || is_admin()) {
        if !is_admin() {
            eprintln!("stockade: setup needs administrator rights once; Windows will ask");
            elevate_self("setup --elevated")?;
            report.actions.push("ran the elevated part of setup in an administrator process".into());
            ledger = store::load(&state)?;
        } else {
            let base = token::process_token()?;
            let id = token::identity(&base)?;
            let accounts = users::provision(&state, &id.user, false, &mut |m| {
                eprintln!("stockade: {m}");
                report.actions.push(m);
            })?;
            ledger.accounts = Some(accounts);
            store::save(&state, &ledger)?;
        }
    }
    let facts = probe::facts(policy, &state, true)?;
    let p = plan::plan(policy, imp, &facts, &ledger)?;
    report.actions.extend(p.firewall.iter().map(|r| format!("add firewall rule `{}`", r.name)));
    report.actions.extend(p.wfp.iter().map(|f| format!("add WFP filter `{}`", f.name)));
    report.already_done = had_accounts && p.is_noop();
    report.actions.extend(p.create.iter().map(|c| format!("create protected `{}`", c.path)));
    report.actions.push(format!("stamp {} ACEs", p.add.len()));
    report.actions.extend(p.skipped.iter().map(|s| format!("left `{}` unchanged: {}", s.path, s.reason)));
    apply_plan(&p, &state, &mut ledger, true)?;
    Ok(report)
}

/// `stockade setup --user NAME` (administrators): the accounts, group, firewall rules and WFP
/// filters for another user, recorded in *that user's* ledger. Their ACLs are stamped by their
/// own first run (they own their workspaces; an administrator's policy is not theirs).
fn provision_for(name: &str) -> Result<SetupReport, Error> {
    if !is_admin() {
        let mut args: Vec<u16> = "setup --elevated --user ".encode_utf16().collect();
        cmdline::push_arg(&mut args, &name.encode_utf16().collect::<Vec<_>>());
        elevate_self(&String::from_utf16_lossy(&args))?;
        return Ok(SetupReport {
            actions: vec![format!("provisioned `{name}` in an administrator process")],
            already_done: false,
        });
    }
    let user = users::lookup(name)?;
    let profile = users::profile_dir(&user).ok_or_else(|| Error::State {
        path: format!("profile of `{name}`"),
        detail: "that user has not logged on yet; log on once, then run setup again".into(),
    })?;
    let state = profile.join("AppData").join("Local").join("stockade");
    std::fs::create_dir_all(&state).map_err(|e| io_err(&state, e))?;
    let mut ledger = store::load(&state)?;
    let mut report = SetupReport::default();
    let accounts = users::provision(&state, &user, true, &mut |m| {
        eprintln!("stockade: {m}");
        report.actions.push(m);
    })?;
    let firewall = crate::firewall_plan::offline_rules(&accounts.offline.sid);
    let filters = crate::firewall_plan::offline_wfp_filters(&accounts.offline.sid);
    ledger.accounts = Some(accounts);
    ledger.firewall_rules.extend(firewall.iter().map(|r| r.name.clone()));
    ledger.wfp_filters.extend(filters.iter().map(|f| f.name.clone()));
    store::save(&state, &ledger)?;
    let mut host = WinHost { state: &state, progress: true };
    host.add_firewall(&firewall)?;
    host.add_wfp(&filters)?;
    report.actions.push(format!("recorded in `{}`", store::ledger_path(&state).display()));
    Ok(report)
}

/// `Backend::cleanup`.
pub fn cleanup(_policy: &Policy) -> Result<SetupReport, Error> {
    let state = state_dir()?;
    let ledger = store::load(&state)?;
    if ledger.is_empty() {
        return Ok(SetupReport { actions: vec!["nothing to clean up".into()], already_done: true });
    }
    let c = plan::cleanup_plan(&ledger);
    let mut report = SetupReport::default();
    if c.accounts.is_some() && !is_admin() {
        elevate_self("cleanup")?;
        report.actions.push("ran cleanup in an administrator process".into());
        return Ok(report);
    }
    execute_cleanup(&c, &mut WinHost { state: &state, progress: true })?;
    report.actions.push(format!("removed {} ACEs", c.remove_aces.len()));
    for d in &c.delete_created {
        let p = PathBuf::from(d.to_string());
        // Only empty objects stockade created are removed; anything with content stays.
        let removed = std::fs::remove_dir(&p).is_ok()
            || (std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.len() == 0) && std::fs::remove_file(&p).is_ok());
        if removed {
            report.actions.push(format!("removed `{d}`"));
        }
    }
    if let Some(a) = &c.accounts {
        users::remove(&state, a)?;
        report.actions.push("removed the sandbox users and group".into());
    }
    if !c.wfp_filters.is_empty() {
        wfp::remove(&c.wfp_filters)?;
        report.actions.push(format!("removed {} WFP filters", c.wfp_filters.len()));
    }
    if !c.firewall_rules.is_empty() {
        firewall::remove(&c.firewall_rules)?;
        report.actions.push(format!("removed {} firewall rules", c.firewall_rules.len()));
    }
    store::remove(&state)?;
    Ok(report)
}

/// `Backend::doctor`.
pub fn doctor(policy: &Policy) -> DoctorReport {
    let mut checks = Vec::new();
    let mut add = |name: &str, status, detail: String, fix: Option<String>| {
        checks.push(Check { name: name.into(), status, detail, fix })
    };
    let ledger = state_dir().and_then(|s| store::load(&s));
    match &ledger {
        Ok(l) => add(
            "state",
            CheckStatus::Ok,
            format!(
                "ledger v{}: {} roots, {} ACEs, accounts: {}",
                l.version,
                l.write_sids.len(),
                l.aces.len(),
                l.accounts.is_some()
            ),
            None,
        ),
        Err(e) => add("state", CheckStatus::Missing, e.to_string(), e.hint()),
    }
    let token_ok = token::process_token().and_then(|b| {
        let id = token::identity(&b)?;
        token::restricted_token(&b, &[crate::sid::Sid::everyone()], &id).map(drop)
    });
    match token_ok {
        Ok(()) => add("restricted token", CheckStatus::Ok, "write-restricted tokens can be created".into(), None),
        Err(e) => add("restricted token", CheckStatus::Missing, e.to_string(), e.hint()),
    }
    let names = token::process_token()
        .and_then(|t| token::identity(&t))
        .map(|id| crate::ledger::account_names(&id.user))
        .unwrap_or_default();
    for name in names.iter().filter(|n| !n.is_empty()) {
        match users::lookup(name) {
            Ok(sid) => add(name, CheckStatus::Ok, format!("exists ({sid})"), None),
            Err(_) => {
                add(name, CheckStatus::Warn, "not provisioned".into(), Some("run `stockade setup --elevated`".into()))
            }
        }
    }
    match (&ledger, state_dir()) {
        (Ok(l), Ok(state)) if l.accounts.is_some() => {
            match users::logon_test(&state, l.accounts.as_ref().map_or("", |a| a.offline.name.as_str())) {
                Ok(()) => add(
                    "sandbox logon",
                    CheckStatus::Ok,
                    "a child started as the offline account and exited 0".into(),
                    None,
                ),
                Err(e) => add("sandbox logon", CheckStatus::Missing, format!("{e} ({})", e.code()), e.hint()),
            }
        }
        _ => add("sandbox logon", CheckStatus::Warn, "no sandbox accounts provisioned".into(), None),
    }
    match firewall::local_policy_modify_state() {
        Ok(0) => add("firewall", CheckStatus::Ok, "local firewall rules take effect".into(), None),
        Ok(state) => add(
            "firewall",
            CheckStatus::Missing,
            format!("group policy overrides local firewall rules (modify state {state})"),
            Error::FirewallOverridden { profile: "current" }.hint(),
        ),
        Err(e) => add("firewall", CheckStatus::Missing, e.to_string(), e.hint()),
    }
    if let Ok(l) = &ledger {
        if l.accounts.is_some() {
            let status = if l.wfp_filters.is_empty() { CheckStatus::Missing } else { CheckStatus::Ok };
            add("wfp", status, format!("{} WFP filters recorded for the offline account", l.wfp_filters.len()), None);
        }
    }
    let ready = ledger.as_ref().is_ok_and(|l| l.accounts.is_some());
    let (implementation, enforcement) = match choose_implementation(policy, ready) {
        Ok(WindowsImplementation::Unelevated) => {
            (Some("unelevated".to_owned()), enforcement(policy, WindowsImplementation::Unelevated))
        }
        Ok(WindowsImplementation::Elevated) => match runner::runner_path() {
            Ok(path) => {
                add("runner", CheckStatus::Ok, format!("`{}`", path.display()), None);
                (Some("elevated".to_owned()), enforcement(policy, WindowsImplementation::Elevated))
            }
            Err(e) => {
                add("runner", CheckStatus::Missing, e.to_string(), e.hint());
                (None, Enforcement::default())
            }
        },
        Err(e) => {
            add("implementation", CheckStatus::Missing, e.to_string(), e.hint());
            (None, Enforcement::default())
        }
    };
    DoctorReport { platform: "windows".into(), checks, implementation, enforcement }
}
