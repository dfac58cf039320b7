//! `stockade doctor`: what this machine supports and what `run` would use.

use std::fmt::Write as _;

use stockade::{Check, CheckStatus, DoctorReport, HostEnv, Locations, Sandbox};

use super::args::DoctorArgs;
use super::{resolve, Failure};

/// Runs `doctor`.
pub fn doctor(a: &DoctorArgs) -> Result<(), Failure> {
    let env = HostEnv::from_process().map_err(|e| Failure::other("cwd_unavailable", e.into(), None))?;
    let locations = Locations::for_this_os(&env);
    let mut checks = vec![file_check("user config", locations.user_config.as_deref(), "built-in defaults apply")];
    checks.push(file_check("requirements", Some(&locations.system_requirements), "no administrator constraints"));

    let policy = match resolve(&a.policy) {
        Ok(p) => {
            checks.push(Check {
                name: "policy".into(),
                status: CheckStatus::Ok,
                detail: format!("resolves: mode {}, network {}", p.mode, p.network.mode),
                fix: None,
            });
            p
        }
        Err(f) => {
            checks.push(Check {
                name: "policy".into(),
                status: CheckStatus::Missing,
                detail: format!("{:#}", f.error),
                fix: f.hint.clone(),
            });
            // Still report the machine: use a read-only default policy for the backend checks.
            let fallback = stockade::Overrides { mode: Some(stockade::Mode::ReadOnly), ..Default::default() };
            stockade::resolve(&fallback, None, &[], &env, &locations).map_err(stockade::Error::from)?
        }
    };
    let mut report = Sandbox::new(policy).doctor();
    checks.append(&mut report.checks);
    report.checks = checks;
    if a.json {
        super::print_out(&format!("{}\n", serde_json::to_string_pretty(&report).unwrap_or_default()))
    } else {
        super::print_out(&render(&report))
    }
}

fn file_check(name: &str, path: Option<&std::path::Path>, absent: &str) -> Check {
    match path {
        None => Check {
            name: name.into(),
            status: CheckStatus::Warn,
            detail: "location unknown (no home directory)".into(),
            fix: Some("set `HOME`".into()),
        },
        Some(p) if p.exists() => {
            Check { name: name.into(), status: CheckStatus::Ok, detail: format!("`{}`", p.display()), fix: None }
        }
        Some(p) => Check {
            name: name.into(),
            status: CheckStatus::Ok,
            detail: format!("`{}` not present; {absent}", p.display()),
            fix: None,
        },
    }
}

/// The human-readable form.
pub fn render(r: &DoctorReport) -> String {
    let mut out = format!("stockade doctor ({})\n", r.platform);
    for c in &r.checks {
        let status = match c.status {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Missing => "missing",
        };
        let _ = writeln!(out, "  {status:<8} {}: {}", c.name, c.detail);
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "           fix: {fix}");
        }
    }
    match &r.implementation {
        Some(i) => {
            let _ = writeln!(out, "\nrun would use: {i}");
            for l in &r.enforcement.layers {
                let _ = writeln!(out, "  {:<10} {:?}: {}", l.layer, l.status, l.detail);
            }
            for g in &r.enforcement.gaps {
                let _ = writeln!(out, "  gap: {g}");
            }
        }
        None => {
            let _ = writeln!(out, "\nrun would refuse: no sandbox implementation is available here (exit 125)");
        }
    }
    out
}
