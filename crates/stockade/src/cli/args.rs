//! The command-line contract (clap derive). Tests outside the project drive these flags: keep
//! them stable.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use stockade::{LinuxImplementation, Mode, NetworkMode, Overrides};

/// Run an AI coding agent's shell commands in an OS sandbox.
#[derive(Debug, Parser)]
#[command(name = "stockade", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `stockade run ...` parsed by a parser that knows only `run`'s options, or `None` for any
/// other command line and for any `run` line it does not accept as it is (help, errors).
///
/// Building clap's parser for every subcommand costs about a fifth of a millisecond at each
/// start, more than the rest of argument handling; an agent starts `stockade run` for every
/// command. Anything but a clean parse goes to the full parser ([`Cli`]), so help, errors and
/// their exit codes are exactly the full parser's; a clean parse gives what the full parser
/// would (a test compares them).
pub fn parse_run_only(args: &[OsString]) -> Option<Cli> {
    use clap::FromArgMatches;
    if args.get(1).is_none_or(|a| a != "run") {
        return None;
    }
    if let Some(a) = simple_run(&args[2..]) {
        return Some(Cli { command: Command::Run(a) });
    }
    let cmd = RunArgs::augment_args(clap::Command::new("run").no_binary_name(true));
    let mut m = cmd.try_get_matches_from(&args[2..]).ok()?;
    RunArgs::from_arg_matches_mut(&mut m).ok().map(|a| Cli { command: Command::Run(a) })
}

/// The commonest `run` lines, read without clap: `[-C DIR | --workspace DIR | --workspace=DIR]
/// -- CMD [ARGS...]` (what follows `run`), or `None` for anything else.
///
/// The run-only clap parser took 44 µs of the supervisor's path before the go message
/// (timestamps): building it, and running code the process touches nowhere else. Without it a
/// run was 3 to 84 µs shorter, about 25 µs typically (A/B, seven times 500 runs back to back). A `DIR` that is
/// empty or starts with `-` is left to clap, which decides whether it is a value; a test checks
/// that every line read here gives what the full parser gives.
fn simple_run(rest: &[OsString]) -> Option<RunArgs> {
    let (workspace, rest) = match rest.first().map(|a| a.to_str()) {
        Some(Some("-C" | "--workspace")) => {
            let dir = rest.get(1)?;
            if dir.is_empty() || dir.as_encoded_bytes().starts_with(b"-") {
                return None;
            }
            (Some(PathBuf::from(dir)), &rest[2..])
        }
        Some(Some(a)) if a.starts_with("--workspace=") => {
            let dir = &a["--workspace=".len()..];
            if dir.is_empty() {
                return None;
            }
            (Some(PathBuf::from(dir)), &rest[1..])
        }
        _ => (None, rest),
    };
    if rest.first().is_none_or(|a| a != "--") || rest.len() < 2 {
        return None;
    }
    let policy = PolicyArgs { workspace, ..PolicyArgs::default() };
    Some(RunArgs { policy, report: None, json: false, net_log: None, command: rest[1..].to_vec() })
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in the sandbox: `stockade run [OPTIONS] -- CMD [ARGS...]`.
    Run(RunArgs),
    /// Show the resolved policy with provenance, and the access of given paths.
    Explain(ExplainArgs),
    /// Show what this machine supports and what `run` would use.
    Doctor(DoctorArgs),
    /// Prepare this machine once (Windows: sandbox users, ACLs, firewall; elevates).
    Setup(SetupArgs),
    /// Remove everything stockade added to this machine.
    Cleanup(CleanupArgs),
}

/// Options that shape the policy; shared by `run` and `explain`.
#[derive(Debug, Args, Clone, Default)]
pub struct PolicyArgs {
    /// The workspace: writable in `workspace-write` mode, and the command's working directory.
    #[arg(short = 'C', long = "workspace", value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Sandbox mode: read-only, workspace-write or danger-full-access.
    #[arg(short = 's', long = "sandbox", value_name = "MODE")]
    pub mode: Option<Mode>,
    /// An extra writable root (repeatable).
    #[arg(short = 'w', long = "writable", value_name = "PATH")]
    pub writable: Vec<PathBuf>,
    /// An extra path the command may not read (repeatable).
    #[arg(long = "deny-read", value_name = "PATH")]
    pub deny_read: Vec<PathBuf>,
    /// Network: off or on (use `--allow-host` for an allowlist).
    #[arg(short = 'n', long = "network", value_name = "off|on")]
    pub network: Option<NetworkMode>,
    /// Allow this host through the proxy (repeatable); implies an allowlist network.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_host: Vec<String>,
    /// Use the named profile from the config file.
    #[arg(short = 'p', long = "profile", value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Read this config file instead of the user config.
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// An extra requirements file; it can only add constraints (repeatable).
    #[arg(long = "requirements", value_name = "FILE")]
    pub requirements: Vec<PathBuf>,
    /// Kill the command and everything it started after this many seconds.
    #[arg(long = "timeout", value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Linux implementation: namespaces or landlock-only.
    #[arg(long = "implementation", value_name = "NAME")]
    pub implementation: Option<LinuxImplementation>,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("the timeout must be at least 1 second".into()),
        Ok(n) if n > stockade_policy::MAX_TIMEOUT_SECS => {
            Err(format!("the timeout must be at most a year ({} seconds)", stockade_policy::MAX_TIMEOUT_SECS))
        }
        Ok(n) => Ok(Duration::from_secs(n)),
        Err(_) => Err(format!("`{s}` is not a whole number of seconds")),
    }
}

impl PolicyArgs {
    /// The command-line layer of policy resolution.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            workspace: self.workspace.clone(),
            mode: self.mode,
            writable_roots: self.writable.clone(),
            deny_read: self.deny_read.clone(),
            network: self.network,
            allow_hosts: self.allow_host.clone(),
            profile: self.profile.clone(),
            timeout: self.timeout,
            linux_implementation: self.implementation,
        }
    }
}

/// `stockade run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Policy options.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Write the outcome as JSON to this file.
    #[arg(long = "report", value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print the outcome (or the error) as JSON on stderr when the run ends.
    #[arg(long = "json")]
    pub json: bool,
    /// Append every network decision of the allowlist proxy to this file as JSON lines.
    #[arg(long = "net-log", value_name = "FILE")]
    pub net_log: Option<std::path::PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `stockade explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Policy options.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Print JSON instead of text.
    #[arg(long = "json")]
    pub json: bool,
    /// Paths whose effective access to show.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `stockade doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Policy options (doctor reports what `run` would do with them).
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Print JSON instead of text.
    #[arg(long = "json")]
    pub json: bool,
}

/// `stockade setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Policy options (setup prepares for the implementation they select).
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Prepare the elevated implementation (dedicated sandbox users; needs administrator once).
    #[arg(long, conflicts_with = "unelevated")]
    pub elevated: bool,
    /// Prepare the unelevated implementation (restricted token only).
    #[arg(long)]
    pub unelevated: bool,
    /// Prepare for another user (`DOMAIN\NAME`); for administrators provisioning machines.
    #[arg(long, value_name = "DOMAIN\\NAME")]
    pub user: Option<String>,
    /// Print JSON instead of text.
    #[arg(long = "json")]
    pub json: bool,
}

impl SetupArgs {
    /// The backend's setup options.
    pub fn options(&self) -> stockade::SetupOptions {
        let implementation = if self.elevated {
            Some("elevated".to_owned())
        } else if self.unelevated {
            Some("unelevated".to_owned())
        } else {
            None
        };
        stockade::SetupOptions { implementation, for_user: self.user.clone() }
    }
}

/// `stockade cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Policy options.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Print JSON instead of text.
    #[arg(long = "json")]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn line(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    /// The run-only parser gives exactly what the full parser gives for every line it accepts,
    /// and declines (so the full parser answers) help, errors and other subcommands.
    #[test]
    fn run_only_parse_matches_the_full_parser() {
        let accepted = [
            "stockade run -- true",
            "stockade run -C /srv/ws -s read-only -w /a -w /b --deny-read /c -n off -- sh -c x",
            "stockade run --allow-host example.com:443 --profile p --config /c.toml -- git status",
            "stockade run --requirements /r.toml --timeout 5 --implementation landlock-only -- a -- b",
            "stockade run --report /tmp/r.json --json --net-log /tmp/n.jsonl -- ls -l",
            "stockade run -C=/x --network=on -- --looks-like-a-flag",
        ];
        for l in accepted {
            let fast = parse_run_only(&line(l)).unwrap_or_else(|| panic!("declined: {l}"));
            let full = Cli::try_parse_from(line(l)).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{l}");
        }
        // Read without clap (`simple_run`), and still what the full parser gives.
        let simple = [
            "stockade run -- true",
            "stockade run -- sh -c x",
            "stockade run -C /srv/ws -- git status",
            "stockade run --workspace /w -- true",
            "stockade run --workspace=/w -- a b",
            "stockade run -- -- x",
            "stockade run -- --help",
            "stockade run -C ws -- -C x",
        ];
        for l in simple {
            let args = line(l);
            let fast = simple_run(&args[2..]).unwrap_or_else(|| panic!("not simple: {l}"));
            let full = Cli::try_parse_from(&args).unwrap();
            assert_eq!(format!("{:?}", Cli { command: Command::Run(fast) }), format!("{full:?}"), "{l}");
        }
        // Left to clap.
        for l in [
            "stockade run -C -x -- true",
            "stockade run --workspace= -- true",
            "stockade run -C /w",
            "stockade run --",
            "stockade run --json -- true",
            "stockade run -C /w -s read-only -- true",
            "stockade run -Cdir -- true",
        ] {
            assert!(simple_run(&line(l)[2..]).is_none(), "read without clap: {l}");
        }
        let declined = [
            "stockade run --help",
            "stockade run -h",
            "stockade run",
            "stockade run --no-such-flag -- true",
            "stockade run --timeout 0 -- true",
            "stockade run -s nonsense -- true",
            "stockade explain",
            "stockade doctor --json",
            "stockade --version",
            "stockade",
        ];
        for l in declined {
            assert!(parse_run_only(&line(l)).is_none(), "accepted: {l}");
        }
    }
}
