//! The decision log: every allowed and denied connection as a [`NetworkEvent`].
//!
//! Events go to three places: an in-memory list the supervisor collects at the end of the run
//! (for the `--report` outcome), an optional JSON-lines file (`--net-log FILE`), and, for
//! denials, an optional callback that receives a [`Notice`] with the one-line message the CLI
//! prints on stderr. The library itself never prints.
//!
//! An allowed connection is logged when it ends (so the byte counts are final); a denial is
//! logged when it is decided.
//!
//! # What the sandbox can read
//!
//! The JSON-lines file is written while the command runs, usually somewhere the command can
//! read (often its own workspace), and the callback's line goes to the stderr the command
//! shares (which a command redirected to a file can read back). So neither carries what a
//! refusal withholds from the sandbox: the address an allowed name resolved to ([`Withheld`]).
//! Only the in-memory list keeps it, for the supervisor's report after the run.

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use stockade_policy::{Denial, DenialKind, Grant, NetworkEvent};

/// What the supervisor is told about each denial, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The logged event.
    pub event: NetworkEvent,
    /// Why it was refused, in words (`no rule`, `denied by rule ...`).
    pub reason: String,
    /// The `--allow-host` rule that would allow exactly this, when one makes sense.
    pub suggestion: Option<String>,
    /// One line for stderr, without a trailing newline:
    /// `stockade: blocked connection to evil.example:443 (no rule); allow it with --allow-host evil.example:443`.
    /// The same line is the client's refusal, so it never names a withheld address.
    pub message: String,
    /// What the refusal keeps from the sandbox, for the supervisor's report only.
    pub withheld: Option<Withheld>,
}

/// The details of a refusal that the sandboxed command must not learn: when an allowed name
/// resolved only to refused addresses (private, loopback, or named by a deny rule), which
/// address it was. Telling the client would map the host's internal network for it (that
/// `registry.corp` is `10.1.2.3`), so [`Notice::reason`], [`Notice::message`], the client's
/// refusal and the JSON-lines file say only the class of reason; [`Notice::denial`], which
/// feeds the run's report written by the supervisor after the command has exited, uses these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withheld {
    /// The full reason, naming the address: `private address 10.1.2.3 needs a rule naming that address`.
    pub reason: String,
    /// The `--allow-host` rule for that address (the name's own rule already matched).
    pub suggestion: Option<String>,
}

/// `line` followed by the `--allow-host` rule that would allow the connection, if there is one.
fn with_fix(mut line: String, suggestion: Option<&str>) -> String {
    if let Some(s) = suggestion {
        line.push_str(&format!("; allow it with --allow-host {s}"));
    }
    line
}

impl Notice {
    /// The line for stderr once the command has ended, naming what this refusal withheld from
    /// it (see [`Withheld`]): `stockade: registry.corp:443 was refused: private address 10.1.2.3
    /// needs a rule naming that address; allow it with --allow-host 10.1.2.3:443`. `None` when
    /// nothing was withheld.
    pub fn withheld_message(&self) -> Option<String> {
        let w = self.withheld.as_ref()?;
        let line = format!("stockade: {} was refused: {}", target(&self.event.host, self.event.port), w.reason);
        Some(with_fix(line, w.suggestion.as_deref()))
    }

    /// The same denial as the facade's [`Denial`] record, layer `proxy`, with the withheld
    /// details when there are any: the record is for the user's report, not for the sandbox.
    pub fn denial(&self) -> Denial {
        let (reason, suggestion) = match &self.withheld {
            Some(w) => (&w.reason, &w.suggestion),
            None => (&self.reason, &self.suggestion),
        };
        Denial {
            layer: "proxy".to_owned(),
            kind: DenialKind::Network,
            target: target(&self.event.host, self.event.port),
            rule: Some(reason.clone()),
            suggested_grant: suggestion.clone().map(|rule| Grant::Host { rule }),
        }
    }
}

/// `host:port`, bracketing IPv6 literals.
pub(crate) fn target(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A callback for denials; called on the proxy's thread, so it must be quick (e.g. `eprintln!`).
pub type NoticeFn = Arc<dyn Fn(&Notice) + Send + Sync>;

/// The shared log. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub(crate) struct EventLog {
    inner: Arc<Mutex<Inner>>,
    on_denial: Option<NoticeFn>,
}

struct Inner {
    events: Vec<NetworkEvent>,
    notices: Vec<Notice>,
    dropped: u64,
    max: usize,
    file: Option<File>,
}

/// Seconds since the epoch with millisecond precision.
pub(crate) fn now() -> f64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

impl EventLog {
    pub(crate) fn new(max: usize, file: Option<File>, on_denial: Option<NoticeFn>) -> Self {
        EventLog {
            inner: Arc::new(Mutex::new(Inner { events: Vec::new(), notices: Vec::new(), dropped: 0, max, file })),
            on_denial,
        }
    }

    /// Records an allowed connection that has ended.
    pub(crate) fn allowed(&self, host: &str, port: u16, rule: String, bytes_out: u64, bytes_in: u64) {
        let event = NetworkEvent {
            time: now(),
            host: host.to_owned(),
            port,
            allowed: true,
            rule: Some(rule),
            bytes_out,
            bytes_in,
        };
        self.push(event, None);
    }

    /// Records a denial, tells the callback, and returns the one-line message. `reason`,
    /// `suggestion` and `rule` reach the client and the file; `withheld` only the memory list.
    pub(crate) fn denied(
        &self,
        host: &str,
        port: u16,
        rule: Option<String>,
        reason: String,
        suggestion: Option<String>,
        withheld: Option<Withheld>,
    ) -> String {
        let host = &shortened(host);
        let event =
            NetworkEvent { time: now(), host: host.to_owned(), port, allowed: false, rule, bytes_out: 0, bytes_in: 0 };
        let message = with_fix(
            format!("stockade: blocked connection to {} ({reason})", target(host, port)),
            suggestion.as_deref(),
        );
        let notice = Notice { event: event.clone(), reason, suggestion, message, withheld };
        self.push(event, Some(notice.clone()));
        if let Some(f) = &self.on_denial {
            f(&notice);
        }
        notice.message
    }

    fn push(&self, event: NetworkEvent, notice: Option<Notice>) {
        let Ok(mut inner) = self.inner.lock() else { return };
        if let Some(file) = inner.file.as_mut() {
            let mut line = serde_json::to_value(&event).unwrap_or(serde_json::Value::Null);
            if let (Some(n), Some(obj)) = (&notice, line.as_object_mut()) {
                obj.insert("reason".to_owned(), n.reason.clone().into());
            }
            // A full disk must not take the proxy down; the in-memory log still has the event.
            let _ = writeln!(file, "{line}");
        }
        if inner.events.len() >= inner.max {
            inner.dropped += 1;
            return;
        }
        inner.events.push(event);
        if let Some(n) = notice {
            inner.notices.push(n);
        }
    }

    pub(crate) fn events(&self) -> Vec<NetworkEvent> {
        self.inner.lock().map(|i| i.events.clone()).unwrap_or_default()
    }

    pub(crate) fn notices(&self) -> Vec<Notice> {
        self.inner.lock().map(|i| i.notices.clone()).unwrap_or_default()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.inner.lock().map(|i| i.dropped).unwrap_or_default()
    }

    pub(crate) fn flush(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            if let Some(f) = inner.file.as_mut() {
                let _ = f.flush();
            }
        }
    }
}

/// The most of a refused host name kept in the log: the sandbox chooses what it sends, and a
/// 32 KiB request target logged whole, several times per denial, let it grow the supervisor's
/// memory (and the `--net-log` file) by hundreds of kilobytes per request.
pub(crate) const MAX_LOGGED_HOST: usize = 256;

/// `host` cut to [`MAX_LOGGED_HOST`] bytes (on a character boundary), saying how long it was.
pub(crate) fn shortened(host: &str) -> String {
    if host.len() <= MAX_LOGGED_HOST {
        return host.to_owned();
    }
    let mut end = MAX_LOGGED_HOST;
    while !host.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &host[..end], host.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_refused_host_is_logged_short() {
        let log = EventLog::new(10, None, None);
        let long = "\\".repeat(65_000);
        let msg = log.denied(&long, 80, None, "invalid host".into(), None, None);
        assert!(msg.len() < 1_000, "{}", msg.len());
        let events = log.events();
        assert!(events[0].host.len() < MAX_LOGGED_HOST + 32 && events[0].host.ends_with("(65000 bytes)"));
        assert_eq!(shortened("é".repeat(200).as_str()).chars().count(), 128 + " (400 bytes)".len() + 1);
        assert_eq!(shortened("example.com"), "example.com", "control: short names are kept");
    }

    #[test]
    fn denial_message_names_host_and_fix() {
        let log = EventLog::new(10, None, None);
        log.denied("evil.example", 443, None, "no rule".into(), Some("evil.example:443".into()), None);
        let n = &log.notices()[0];
        assert_eq!(
            n.message,
            "stockade: blocked connection to evil.example:443 (no rule); allow it with --allow-host evil.example:443"
        );
        assert_eq!(n.denial().target, "evil.example:443");
        assert_eq!(n.denial().suggested_grant, Some(Grant::Host { rule: "evil.example:443".into() }));
        log.denied("::1", 22, None, "x".into(), None, None);
        assert_eq!(log.notices()[1].message, "stockade: blocked connection to [::1]:22 (x)");
    }

    #[test]
    fn memory_log_is_bounded() {
        let log = EventLog::new(2, None, None);
        for _ in 0..5 {
            log.allowed("a.example", 443, "a.example".into(), 1, 2);
        }
        assert_eq!(log.events().len(), 2);
        assert_eq!(log.dropped(), 3);
    }
}
