//! `stockade explain`: the resolved policy with provenance, and the access of given paths.

use std::fmt::Write as _;

use stockade::paths::{absolutize, canonicalize_lenient};
use stockade::{decide, hidden_by_sandbox, Decision, Policy, Readable, Rule, Source, Sourced};

use super::args::ExplainArgs;
use super::{resolve, Failure};

/// Runs `explain`.
pub fn explain(a: &ExplainArgs) -> Result<(), Failure> {
    let policy = resolve(&a.policy)?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| policy.workspace.clone());
    // What the policy says, then what this platform's sandbox hides whatever it says.
    let hidden = stockade::hidden_dirs(&policy);
    let decisions: Vec<Decision> = a
        .paths
        .iter()
        .map(|p| hidden_by_sandbox(&policy, decide(&policy, &canonicalize_lenient(&absolutize(p, &cwd))), &hidden))
        .collect();
    if a.json {
        let v = serde_json::json!({ "policy": policy, "paths": decisions });
        super::print_out(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()))
    } else {
        super::print_out(&render(&policy, &decisions))
    }
}

/// The human-readable form.
pub fn render(p: &Policy, decisions: &[Decision]) -> String {
    let mut out = String::new();
    let prov = &p.provenance;
    let _ = writeln!(out, "workspace   `{}`  ({})", p.workspace.display(), prov.get("workspace"));
    let _ = writeln!(out, "mode        {}  ({})", p.mode, prov.get("mode"));
    let _ = writeln!(out, "network     {}  ({})", p.network.mode, prov.get("network.mode"));
    let opt = |v: Option<String>| v.unwrap_or_else(|| "none".into());
    let _ = writeln!(
        out,
        "timeout     {}  ({})",
        opt(p.process.timeout.map(|t| format!("{}s", t.as_secs()))),
        prov.get("process.timeout")
    );
    let _ = writeln!(
        out,
        "memory      {}  ({})",
        opt(p.process.memory_bytes.map(|b| format!("{b} bytes"))),
        prov.get("process.memory")
    );
    let _ = writeln!(
        out,
        "processes   {}  ({})",
        opt(p.process.max_processes.map(|n| n.to_string())),
        prov.get("process.max_processes")
    );
    let _ = writeln!(
        out,
        "open files  {}  ({})",
        opt(p.process.max_open_files.map(|n| format!("{n} per process"))),
        prov.get("process.max_open_files")
    );
    let _ = writeln!(out, "private tmp {}  ({})", p.filesystem.private_tmp, prov.get("filesystem.private_tmp"));
    let _ = writeln!(
        out,
        "linux       {} (fallback to landlock-only: {}; allowed: {})  ({})",
        p.linux.implementation,
        p.linux.allow_fallback,
        join(&p.linux.allowed_implementations),
        prov.get("linux.implementation")
    );
    let _ = writeln!(
        out,
        "windows     {} (private desktop: {}; allowed: {})  ({})",
        p.windows.sandbox,
        p.windows.private_desktop,
        join(&p.windows.allowed_implementations),
        prov.get("windows.sandbox")
    );
    let _ = writeln!(
        out,
        "escalation  {}  ({})",
        if p.allow_escalation { "allowed" } else { "forbidden" },
        prov.get("allow_escalation")
    );

    match &p.filesystem.readable {
        Readable::All => {
            let _ = writeln!(
                out,
                "\nreadable: everything the user can read, except deny-read  ({})",
                prov.get("filesystem.readable")
            );
        }
        Readable::Roots(roots) => section(&mut out, "readable roots", roots.iter().map(path_item)),
    }
    section(&mut out, "writable roots", p.filesystem.writable_roots.iter().map(path_item));
    section(&mut out, "protected (read-only inside writable roots)", p.filesystem.protected.iter().map(path_item));
    section(&mut out, "deny-read", p.filesystem.deny_read.iter().map(path_item));
    section(&mut out, "deny-write", p.filesystem.deny_write.iter().map(path_item));
    section(&mut out, "network allow", p.network.allow.iter().map(|s| (s.value.to_string(), s.source.clone())));
    section(&mut out, "network deny", p.network.deny.iter().map(|s| (s.value.to_string(), s.source.clone())));
    section(&mut out, "environment allow", p.env.allow.iter().map(|s| (s.value.clone(), s.source.clone())));
    section(
        &mut out,
        "environment deny (wins over allow)",
        p.env.deny.iter().map(|s| (s.value.clone(), s.source.clone())),
    );
    section(
        &mut out,
        "environment set",
        p.env.set.iter().map(|s| (format!("{}={}", s.value.0, s.value.1), s.source.clone())),
    );

    if !decisions.is_empty() {
        let _ = writeln!(out, "\npaths:");
        for d in decisions {
            let access =
                serde_json::to_value(d.access).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let _ = writeln!(out, "  `{}`  {}  {}", d.path.display(), access, rule_text(&d.rule));
        }
    }
    out
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn path_item(s: &Sourced<std::path::PathBuf>) -> (String, Source) {
    (format!("`{}`", s.value.display()), s.source.clone())
}

fn section(out: &mut String, title: &str, items: impl Iterator<Item = (String, Source)>) {
    let items: Vec<_> = items.collect();
    let _ = writeln!(out, "\n{title}:{}", if items.is_empty() { " none" } else { "" });
    for (v, src) in items {
        let _ = writeln!(out, "  {v}  ({src})");
    }
}

fn rule_text(r: &Rule) -> String {
    match r {
        Rule::FullAccess => "by mode danger-full-access".into(),
        Rule::DenyRead { path, source } => format!("by deny-read `{}` ({source})", path.display()),
        Rule::Protected { path, source } => format!("by protected path `{}` ({source})", path.display()),
        Rule::DenyWrite { path, source } => format!("by deny-write `{}` ({source})", path.display()),
        Rule::WritableRoot { path, source } => format!("by writable root `{}` ({source})", path.display()),
        Rule::Readable { path } => format!("readable under `{}`", path.display()),
        Rule::NotReadable => "outside every readable root".into(),
        Rule::HiddenBySandbox { hidden_dir, reason } => {
            format!("hidden by the sandbox: `{}` is {reason}", hidden_dir.display())
        }
    }
}
