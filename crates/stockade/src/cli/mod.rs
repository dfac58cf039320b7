//! Parsing, dispatch, and the exit-code contract:
//! the command's code; 128+N for signal N; 124 timeout; 125 stockade failed or refused;
//! 126 cannot execute; 127 not found.

mod args;
mod doctor_view;
mod explain_view;
mod report_file;

use clap::Parser;
use stockade::{CommandSpec, HostEnv, Locations, Policy, Sandbox};

use args::{Cli, Command, PolicyArgs, RunArgs};

/// Exit status when stockade itself fails or refuses the policy.
pub const EXIT_STOCKADE_FAILED: u8 = 125;

/// Entry point: parse `argv` (the program name first), dispatch, map errors to exit 125 with
/// hints. Returns the process's exit status.
pub fn main(argv: Vec<std::ffi::OsString>) -> u8 {
    if prelaunch_would_help(&argv) {
        stockade::prelaunch();
    }
    let cli = match args::parse_run_only(&argv).map_or_else(|| Cli::try_parse_from(&argv), Ok) {
        Ok(cli) => cli,
        Err(e) => {
            if e.use_stderr() && asks_for_json(&argv) {
                // A caller that reads `--json` gets its error in that form, with a code, also
                // when the arguments themselves are what is wrong.
                let text = e.kind().to_string();
                let detail = e.to_string();
                let message = detail.lines().next().unwrap_or(&text).trim_start_matches("error: ").to_owned();
                Failure {
                    code: "invalid_arguments",
                    error: anyhow::anyhow!(message),
                    hint: Some("see `stockade help`".into()),
                }
                .print(true);
            } else {
                let _ = e.print();
            }
            return if e.use_stderr() { EXIT_STOCKADE_FAILED } else { 0 };
        }
    };
    let (result, json) = match cli.command {
        Command::Run(a) => {
            let json = a.json;
            (run(a), json)
        }
        Command::Explain(a) => (explain_view::explain(&a).map(|()| 0), a.json),
        Command::Doctor(a) => (doctor_view::doctor(&a).map(|()| 0), a.json),
        Command::Setup(a) => (setup(&a.policy, Some(a.options()), a.json), a.json),
        Command::Cleanup(a) => (setup(&a.policy, None, a.json), a.json),
    };
    result.unwrap_or_else(|failure| {
        failure.print(json);
        EXIT_STOCKADE_FAILED
    })
}

/// Whether `--json` appears among stockade's own arguments (before `--`).
fn asks_for_json(argv: &[std::ffi::OsString]) -> bool {
    argv.iter().skip(1).take_while(|a| *a != "--").any(|a| a == "--json")
}

/// Whether `run`'s sandbox should get its head start before the arguments are even parsed (see
/// `stockade::prelaunch`): only for `run`, and not when its own options already show that the
/// prelaunched sandbox would be discarded (another implementation, no sandbox, network on or an
/// allowlist). Only speed depends on this guess; the run checks what it gets.
fn prelaunch_would_help(argv: &[std::ffi::OsString]) -> bool {
    let args = argv.get(1..).unwrap_or_default();
    let args = &args[..args.iter().position(|a| a == "--").unwrap_or(args.len())];
    if args.first().is_none_or(|a| a != "run") {
        return false;
    }
    let discarded = |a: &std::ffi::OsString, prev: Option<&std::ffi::OsString>| {
        let a = a.to_string_lossy();
        a.ends_with("landlock-only")
            || a.ends_with("danger-full-access")
            || a.starts_with("--allow-host")
            || a == "--network=on"
            || (a == "on" && prev.is_some_and(|p| p == "-n" || p == "--network"))
    };
    !args.iter().enumerate().any(|(i, a)| discarded(a, i.checked_sub(1).map(|j| &args[j])))
}

/// A failure of stockade itself, printed with its code and hint.
pub struct Failure {
    code: &'static str,
    error: anyhow::Error,
    hint: Option<String>,
}

impl Failure {
    fn print(&self, json: bool) {
        if json {
            let v = serde_json::json!({"error": {"code": self.code, "message": format!("{:#}", self.error), "hint": self.hint}});
            eprintln!("{v}");
        } else {
            eprintln!("error: {:#}", self.error);
            if let Some(h) = &self.hint {
                eprintln!("hint: {h}");
            }
        }
    }

    /// The JSON form written to `--report` files.
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code, "message": format!("{:#}", self.error), "hint": self.hint}})
    }
}

impl From<stockade::Error> for Failure {
    fn from(e: stockade::Error) -> Self {
        Failure { code: e.code(), hint: e.hint(), error: e.into() }
    }
}

impl Failure {
    /// A failure of the CLI layer itself (I/O on report files, environment).
    fn other(code: &'static str, error: anyhow::Error, hint: Option<String>) -> Self {
        Failure { code, error, hint }
    }
}

/// Writes `text` to stdout. When the reader has gone away (`stockade explain | head`), the rest
/// of the output is dropped quietly, as for a tool that `SIGPIPE` ends (stockade ignores that
/// signal: a run must not die halfway); any other write error is a failure.
pub(crate) fn print_out(text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::other("stdout_write", anyhow::Error::new(e).context("cannot write to stdout"), None))
        }
        _ => Ok(()),
    }
}

/// Resolves the policy for the given flags.
pub fn resolve(args: &PolicyArgs) -> Result<Policy, Failure> {
    let env = HostEnv::from_process().map_err(|e| {
        Failure::other("cwd_unavailable", anyhow::Error::new(e).context("cannot read the current directory"), None)
    })?;
    let locations = Locations::for_this_os(&env);
    Ok(stockade::load_policy(&args.overrides(), args.config.as_deref(), &args.requirements, &env, &locations)?)
}

fn run(a: RunArgs) -> Result<u8, Failure> {
    // The report's directory is opened before the command runs, so the command cannot redirect
    // where stockade writes afterwards (a symlink planted in a writable directory).
    let report = a.report.as_deref().map(report_file::ReportTarget::open).transpose()?;
    let outcome = resolve(&a.policy).and_then(|policy| {
        let mut cmd = CommandSpec::from_argv(&a.command)
            .ok_or_else(|| Failure::other("no_command", anyhow::anyhow!("no command given after `--`"), None))?;
        cmd.cwd = None;
        // Blocked connections are printed as they happen (one line each, with the fix); the
        // summary below skips them.
        let net = stockade::NetOptions { log_file: a.net_log.clone(), print_denials: true };
        Ok(Sandbox::new(policy).with_net_options(net).run(&cmd)?)
    });
    match outcome {
        Ok(outcome) => {
            for d in outcome.denials.iter().filter(|d| d.kind != stockade::DenialKind::Network) {
                eprintln!(
                    "stockade: denied {} `{}` ({}){}",
                    serde_json::to_value(d.kind).unwrap_or_default().as_str().unwrap_or("action"),
                    d.target,
                    d.layer,
                    d.rule.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
                );
            }
            for w in &outcome.warnings {
                eprintln!("stockade: warning: {}", w.message);
            }
            // The shell's words for 127 and 126, since no shell ran to say them; the sandbox may
            // be what hides the program (a deny-read path, a directory outside the view).
            let program = a.command.first().map(|p| p.to_string_lossy()).unwrap_or_default();
            match outcome.status {
                stockade::ExitStatus::NotFound => eprintln!(
                    "stockade: `{program}`: command not found in the sandbox (looked up in the `PATH` it passes in; `stockade explain /path/to/program` tells whether the sandbox may read a path)"
                ),
                stockade::ExitStatus::NotExecutable => {
                    eprintln!("stockade: `{program}`: cannot be executed in the sandbox (permission denied or not a program)")
                }
                _ => {}
            }
            if a.json || report.is_some() {
                let value = serde_json::to_value(&outcome).unwrap_or_default();
                if a.json {
                    eprintln!("{value}");
                }
                if let Some(r) = report {
                    if let Err(f) = r.write(&value) {
                        // The failure's exit code (125) replaces the command's: say what it was.
                        eprintln!(
                            "stockade: the command finished with exit status {}, but its report could not be written",
                            outcome.status.cli_code()
                        );
                        return Err(f);
                    }
                }
            }
            Ok((outcome.status.cli_code() & 0xff) as u8)
        }
        Err(failure) => {
            if let Some(r) = report {
                // Best effort: the original failure matters more than a failed report write.
                let _ = r.write(&failure.to_json());
            }
            Err(failure)
        }
    }
}

/// `setup` (with options) or `cleanup` (without).
fn setup(args: &PolicyArgs, options: Option<stockade::SetupOptions>, json: bool) -> Result<u8, Failure> {
    let sandbox = Sandbox::new(resolve(args)?);
    let report = match &options {
        Some(o) => sandbox.setup(o)?,
        None => sandbox.cleanup()?,
    };
    let text = if json {
        format!("{}\n", serde_json::to_string_pretty(&report).unwrap_or_default())
    } else {
        report.actions.iter().map(|a| format!("{a}\n")).collect()
    };
    print_out(&text)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::prelaunch_would_help;

    fn helps(line: &str) -> bool {
        prelaunch_would_help(&line.split(' ').map(std::ffi::OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn prelaunch_only_for_runs_that_can_use_it() {
        assert!(helps("stockade run -- true"));
        assert!(helps("stockade run -C ws -n off -- true"));
        assert!(helps("stockade run -- curl --network on"), "the command's own arguments do not count");
        assert!(!helps("stockade explain ."));
        assert!(!helps("stockade doctor"));
        assert!(!helps("stockade"));
        assert!(!helps("stockade run --implementation landlock-only -- true"));
        assert!(!helps("stockade run --implementation=landlock-only -- true"));
        assert!(!helps("stockade run --sandbox=danger-full-access -- true"));
        assert!(!helps("stockade run -s danger-full-access -- true"));
        assert!(!helps("stockade run -n on -- true"));
        assert!(!helps("stockade run --network=on -- true"));
        assert!(!helps("stockade run --allow-host example.com -- true"));
    }
}
