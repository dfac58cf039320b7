//! Turning Seatbelt's unified-log reports into [`Denial`] events (pure; tested everywhere).
//!
//! When a sandboxed process is refused, the Sandbox kernel extension logs a line such as
//! `Sandbox: cat(4242) deny(1) file-read-data /Users/dev/.ssh/id_ed25519`, followed by the
//! message of the rule that denied it. stockade's rules carry the run's [`Tag`] as that
//! message, and the launcher runs
//! `log stream --style ndjson --predicate <predicate(tag)>` for the duration of the run
//! (see `man log`, and Apple's "Viewing Log Messages":
//! <https://developer.apple.com/documentation/os/viewing-log-messages>). Each NDJSON line is
//! parsed here with [`parse_line`] and classified with [`classify`].
//!
//! Only entries whose sender is the Sandbox kernel extension (or, without that field, the
//! kernel, process id 0) are accepted, so a sandboxed command cannot forge denials by
//! writing the tag to the log itself.

use std::path::{Path, PathBuf};

use serde::Serialize;
use stockade_policy::{decide, Denial, DenialKind, Grant, Policy, Rule};

use crate::tag::Tag;

/// The layer name used in [`Denial::layer`] and the enforcement report.
pub const LAYER: &str = "seatbelt";

/// The Sandbox kernel extension's image, the sender of every real report. It sits on the
/// sealed system volume, so no user process can log under this name.
pub const SANDBOX_KEXT: &str = "/System/Library/Extensions/Sandbox.kext/Contents/MacOS/Sandbox";

/// The `log stream` predicate for one run: kernel sandbox reports that carry the tag.
pub fn predicate(tag: &Tag) -> String {
    format!("sender == \"Sandbox\" AND eventMessage CONTAINS \"{tag}\"")
}

/// The `log` command line (after `/usr/bin/log`) that streams this run's reports.
pub fn log_stream_args(tag: &Tag) -> Vec<String> {
    vec!["stream".into(), "--style".into(), "ndjson".into(), "--predicate".into(), predicate(tag)]
}

/// One sandbox report, as parsed from the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The process name Seatbelt printed.
    pub process: String,
    /// Its process id.
    pub pid: u32,
    /// The Seatbelt operation (`file-read-data`, `network-outbound`, `mach-lookup`, ...).
    pub operation: String,
    /// The object: a path, `address:port`, a service or sysctl name; may be empty.
    pub target: String,
}

/// Parses one NDJSON line of `log stream`. Returns `None` for anything that is not a kernel
/// sandbox denial carrying `tag` (headers, other runs, forged user-space messages).
pub fn parse_line(line: &str, tag: &Tag) -> Option<Report> {
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let from_kext = v.get("senderImagePath").and_then(serde_json::Value::as_str) == Some(SANDBOX_KEXT);
    let from_kernel = v.get("processID").and_then(serde_json::Value::as_u64) == Some(0);
    if !(from_kext || from_kernel) {
        return None;
    }
    let msg = v.get("eventMessage").or_else(|| v.get("composedMessage"))?.as_str()?;
    parse_message(msg, tag)
}

/// Parses an event message: `Sandbox: NAME(PID) deny(N) OPERATION TARGET`, with the rule's
/// message (the tag) appended, on the next line. The `N duplicate reports for ...` summaries
/// repeat a report already delivered and are skipped.
pub fn parse_message(msg: &str, tag: &Tag) -> Option<Report> {
    let (before, after) = msg.split_once(tag.as_str())?;
    let msg = format!("{}{}", before.trim_end(), after.trim_end()).trim().to_owned();
    let rest = msg.strip_prefix("Sandbox: ")?;
    let (proc_part, rest) = rest.split_once(") ")?;
    let (process, pid) = proc_part.rsplit_once('(')?;
    let pid = pid.parse().ok()?;
    let rest = rest.trim_start().strip_prefix("deny")?;
    let rest = rest.strip_prefix('(').and_then(|r| r.split_once(')')).map_or(rest, |(_, r)| r);
    let rest = rest.trim_start();
    let (operation, target) = rest.split_once(' ').unwrap_or((rest, ""));
    if operation.is_empty() {
        return None;
    }
    Some(Report { process: process.to_owned(), pid, operation: operation.to_owned(), target: target.trim().to_owned() })
}

/// The kind of action a Seatbelt operation is.
pub fn kind(operation: &str) -> DenialKind {
    if operation.starts_with("file-read") || operation == "file-map-executable" {
        DenialKind::FileRead
    } else if operation.starts_with("file-write") || operation.starts_with("file-link") {
        DenialKind::FileWrite
    } else if operation.starts_with("network") {
        DenialKind::Network
    } else if operation.starts_with("process") || operation.starts_with("signal") {
        DenialKind::Process
    } else {
        // mach-lookup, sysctl-read, iokit-open, file-ioctl, ipc-*: system services and calls.
        DenialKind::Syscall
    }
}

/// Classifies a report under `policy`: kind, target, the policy rule responsible (from
/// [`stockade_policy::decide`], so the words match `stockade explain`) and a scoped grant.
pub fn classify(policy: &Policy, r: &Report) -> Denial {
    let kind = kind(&r.operation);
    let path = Path::new(&r.target);
    let (rule, suggested_grant) = match kind {
        DenialKind::FileRead | DenialKind::FileWrite if path.is_absolute() => {
            let d = decide(policy, path);
            let fs = &policy.filesystem;
            let carved_child = fs
                .protected
                .iter()
                .chain(&fs.deny_write)
                .chain(&fs.deny_read)
                .find(|c| c.value.starts_with(path) && c.value != path);
            let words = match (&d.rule, carved_child) {
                (Rule::WritableRoot { .. }, Some(c)) => {
                    format!("parent of the carve-out `{}`: it cannot be renamed or removed", c.value.display())
                }
                (rule, _) => rule_words(rule),
            };
            let grant = match kind {
                DenialKind::FileRead => Grant::ReadPath { path: path.to_owned() },
                _ => Grant::WritePath { path: path.to_owned() },
            };
            (Some(format!("{}: {words}", r.operation)), Some(grant))
        }
        DenialKind::Network => match host_port(&r.target) {
            Some(hp) => (
                Some(format!("{}: network mode `{}`", r.operation, policy.network.mode)),
                Some(Grant::Host { rule: hp }),
            ),
            None if path.is_absolute() => (Some(format!("{}: host unix sockets are closed", r.operation)), None),
            None => (Some(format!("{}: network mode `{}`", r.operation, policy.network.mode)), None),
        },
        _ => (Some(format!("{}: not in the profile's allowlist", r.operation)), None),
    };
    Denial { layer: LAYER.to_owned(), kind, target: r.target.clone(), rule, suggested_grant }
}

/// `1.2.3.4:443`, `[::1]:80`, `example.com:22`, or `None` when the target is not host:port.
fn host_port(target: &str) -> Option<String> {
    let t = target.strip_prefix("tcp ").or_else(|| target.strip_prefix("udp ")).unwrap_or(target).trim();
    let (host, port) = t.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    (!host.is_empty() && !host.starts_with('/') && !host.contains(' ')).then(|| t.to_owned())
}

fn rule_words(rule: &Rule) -> String {
    let p = |p: &PathBuf| format!("`{}`", p.display());
    match rule {
        Rule::FullAccess => "danger-full-access".into(),
        Rule::DenyRead { path, source } => format!("deny-read {} ({source})", p(path)),
        Rule::Protected { path, source } => format!("protected {} ({source})", p(path)),
        Rule::DenyWrite { path, source } => format!("deny-write {} ({source})", p(path)),
        Rule::WritableRoot { path, .. } => {
            format!("under writable root {} (a platform service or device rule)", p(path))
        }
        Rule::Readable { .. } => "not under a writable root".into(),
        Rule::NotReadable => "not under a readable root".into(),
        Rule::HiddenBySandbox { hidden_dir, reason } => format!("hidden by the sandbox: {} is {reason}", p(hidden_dir)),
    }
}

/// Collects denials for one run, dropping repeats of the same kind and target.
#[derive(Debug, Default)]
pub struct Collector {
    denials: Vec<Denial>,
}

impl Collector {
    /// Parses and records one log line; returns whether it was a new denial.
    pub fn push_line(&mut self, policy: &Policy, tag: &Tag, line: &str) -> bool {
        let Some(r) = parse_line(line, tag) else { return false };
        let d = classify(policy, &r);
        if self.denials.iter().any(|e| e.kind == d.kind && e.target == d.target) {
            return false;
        }
        self.denials.push(d);
        true
    }

    /// The denials, in the order first seen.
    pub fn finish(self) -> Vec<Denial> {
        self.denials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag() -> Tag {
        Tag::parse("stockade-0123abcd").unwrap()
    }

    /// A log line in the shape `log stream --style ndjson` prints (written for this test).
    fn line(pid: u64, msg: &str) -> String {
        line_from(pid, SANDBOX_KEXT, msg)
    }

    fn line_from(pid: u64, sender: &str, msg: &str) -> String {
        serde_json::json!({
            "timestamp": "2026-11-29 03:00:00.000000+0000",
            "messageType": "Error",
            "eventType": "logEvent",
            "processID": pid,
            "processImagePath": "/kernel",
            "senderImagePath": sender,
            "subsystem": "",
            "category": "",
            "eventMessage": msg,
        })
        .to_string()
    }

    #[test]
    fn parses_file_network_and_service_reports() {
        let t = tag();
        let r = parse_line(
            &line(0, "Sandbox: cat(4242) deny(1) file-read-data /Users/dev/.ssh/id_ed25519 stockade-0123abcd"),
            &t,
        )
        .unwrap();
        assert_eq!(
            r,
            Report {
                process: "cat".into(),
                pid: 4242,
                operation: "file-read-data".into(),
                target: "/Users/dev/.ssh/id_ed25519".into()
            }
        );
        // The tag on its own line, as Seatbelt appends a rule's message.
        let msg = "Sandbox: curl(77) deny(1) network-outbound 93.184.216.34:443\nstockade-0123abcd";
        let r = parse_line(&line(0, msg), &t).unwrap();
        assert_eq!((r.operation.as_str(), r.target.as_str()), ("network-outbound", "93.184.216.34:443"));
        // Spaces and parentheses in the process name and the path survive.
        let r = parse_line(
            &line(
                0,
                "Sandbox: my (tool)(9) deny(1) file-write-create /Users/dev/My Project/out put.txt stockade-0123abcd",
            ),
            &t,
        )
        .unwrap();
        assert_eq!((r.process.as_str(), r.pid), ("my (tool)", 9));
        assert_eq!(r.target, "/Users/dev/My Project/out put.txt");
        let r = parse_line(&line(0, "Sandbox: node(5) deny(1) mach-lookup com.apple.FSEvents stockade-0123abcd"), &t)
            .unwrap();
        assert_eq!(kind(&r.operation), DenialKind::Syscall);
        // Without a count and with the tag separated by a colon.
        let r = parse_line(&line(0, "Sandbox: sh(5) deny signal: stockade-0123abcd"), &t).unwrap();
        assert_eq!((r.operation.as_str(), r.target.as_str()), ("signal:", ""));
    }

    #[test]
    fn ignores_other_runs_headers_and_forgeries() {
        let t = tag();
        assert!(parse_line("Filtering the log data using \"sender == \\\"Sandbox\\\"\"", &t).is_none());
        assert!(parse_line("", &t).is_none());
        assert!(parse_line(&line(0, "Sandbox: cat(1) deny(1) file-read-data /x stockade-ffff"), &t).is_none());
        // A user-space process writing the tag into the log is not the Sandbox extension.
        let forged = "Sandbox: cat(1) deny(1) file-read-data /x stockade-0123abcd";
        assert!(parse_line(&line_from(4242, "/usr/bin/logger", forged), &t).is_none());
        assert!(parse_line(&line_from(4242, "/Users/x/Sandbox.kext/Contents/MacOS/Sandbox", forged), &t).is_none());
        // The kext's reports are accepted whatever process id the entry carries.
        assert!(parse_line(&line(4242, forged), &t).is_some());
        assert!(parse_line(&line(0, "stockade-0123abcd something else"), &t).is_none());
        let dup = "2 duplicate reports for Sandbox: cat(1) deny(1) file-read-data /x\nstockade-0123abcd";
        assert!(parse_line(&line(0, dup), &t).is_none());
        // `composedMessage` when `eventMessage` is absent.
        let msg = "Sandbox: a(1) deny(1) file-read-data /x\nstockade-0123abcd";
        let composed = serde_json::json!({"processID": 0, "composedMessage": msg});
        assert!(parse_line(&composed.to_string(), &t).is_some());
        assert!(parse_line("{\"eventMessage\": 3}", &t).is_none());
    }

    #[test]
    fn kinds() {
        for (op, k) in [
            ("file-read-data", DenialKind::FileRead),
            ("file-read-metadata", DenialKind::FileRead),
            ("file-map-executable", DenialKind::FileRead),
            ("file-write-create", DenialKind::FileWrite),
            ("file-write-unlink", DenialKind::FileWrite),
            ("network-outbound", DenialKind::Network),
            ("network-bind", DenialKind::Network),
            ("signal", DenialKind::Process),
            ("process-info-pidinfo", DenialKind::Process),
            ("process-exec*", DenialKind::Process),
            ("sysctl-read", DenialKind::Syscall),
            ("file-ioctl", DenialKind::Syscall),
            ("iokit-open", DenialKind::Syscall),
        ] {
            assert_eq!(kind(op), k, "{op}");
        }
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(host_port("1.2.3.4:443").as_deref(), Some("1.2.3.4:443"));
        assert_eq!(host_port("[::1]:80").as_deref(), Some("[::1]:80"));
        assert_eq!(host_port("tcp example.com:22").as_deref(), Some("example.com:22"));
        assert_eq!(host_port("/private/var/run/docker.sock"), None);
        assert_eq!(host_port("host:notaport"), None);
        assert!(predicate(&tag()).contains("\"stockade-0123abcd\""));
        assert_eq!(log_stream_args(&tag())[..3], ["stream", "--style", "ndjson"]);
    }
}
