//! Plumbing tests that run on Windows and under Wine: SID and SDDL round-trips through the
//! real conversion APIs, ACLs built in memory, command-line quoting against
//! `CommandLineToArgvW`, environment blocks reaching a child, named pipes with a client-PID
//! check, job objects, process creation, exit codes and timeouts.
//!
//! Nothing here asserts a security property (Wine enforces none); see `windows_threats.rs`.
#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::windows::io::AsRawHandle;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use stockade_policy::{ExitStatus, Stdio};
use stockade_windows::acl_model::{AccessMask, Ace, AceFlags};
use stockade_windows::apply::sys::{running_under_wine, sddl_of, sid_from_psid, SecDesc, SidBuf};
use stockade_windows::apply::{job, launch, pipe, token};
use stockade_windows::launch_plan::{ui_limits, JobLimits};
use stockade_windows::sid::Sid;
use stockade_windows::{cmdline, env_block, sddl};

fn w(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

#[test]
fn reports_whether_it_runs_under_wine() {
    eprintln!("running under Wine: {}", running_under_wine());
}

#[test]
fn sids_round_trip_through_the_system() {
    let sids = ["S-1-1-0", "S-1-5-18", "S-1-5-32-544", "S-1-5-21-1-2-3-1001", "S-1-5-5-0-12345"];
    for s in sids.iter().map(|s| s.parse::<Sid>().unwrap()).chain([Sid::synthetic(&[9; 16], r"C:\src")]) {
        let buf = SidBuf::new(&s).unwrap();
        // SAFETY: `buf` holds a valid SID for this call.
        let back = unsafe { sid_from_psid(buf.psid()) }.unwrap();
        assert_eq!(back, s);
    }
}

#[test]
fn sddl_round_trips_and_acls_are_built_in_memory() {
    let write_sid = Sid::synthetic(&[3; 16], r"C:\src\app");
    let base = sddl::parse("O:SYD:AI(A;OICI;FA;;;SY)").unwrap();
    let merged = sddl::merge(
        &base,
        &[
            Ace::deny(write_sid.clone(), AccessMask::DELETE, AceFlags::NONE),
            Ace::allow(write_sid.clone(), AccessMask::ROOT_GRANT, AceFlags::TREE | AceFlags::IO),
        ],
        &[],
    );
    let text = format!("O:SY{}", sddl::render_dacl(&merged));
    let sd = SecDesc::from_sddl(&text).unwrap();
    assert!(!sd.dacl().unwrap().is_null(), "the DACL is present");
    // SAFETY: `sd` is a valid descriptor.
    let back = unsafe { sddl_of(sd.as_ptr(), 0x1 | 0x4) }.unwrap();
    let parsed = sddl::parse(&back).unwrap();
    assert_eq!(parsed.explicit(), merged.explicit(), "{back}");
    assert!(SecDesc::from_sddl("D:(Z;;;;;)").is_err());
}

#[test]
fn command_lines_split_back_the_same_with_command_line_to_argv() {
    use windows_sys::Win32::UI::Shell::CommandLineToArgvW;
    let args: Vec<Vec<u16>> =
        ["plain", "", "two words", "say \"hi\"", r"C:\dir\", r"C:\my dir\", "new\nline", "日本語 ü", r#"a\\"b"#]
            .iter()
            .map(|s| w(s))
            .collect();
    let mut line = cmdline::command_line(&w("prog.exe"), &args).unwrap();
    line.push(0);
    let mut n = 0;
    // SAFETY: NUL-terminated line; the result is a LocalAlloc'd array of `n` strings.
    let argv = unsafe { CommandLineToArgvW(line.as_ptr(), &mut n) };
    assert!(!argv.is_null());
    // SAFETY: the array has `n` entries.
    let parsed: Vec<String> =
        (0..n as usize).map(|i| unsafe { stockade_windows::apply::sys::wide_ptr_to_string(*argv.add(i)) }).collect();
    // SAFETY: the array was allocated by CommandLineToArgvW.
    drop(unsafe { stockade_windows::apply::sys::LocalBox::new(argv.cast()) });
    let want: Vec<String> =
        std::iter::once("prog.exe".to_owned()).chain(args.iter().map(|a| String::from_utf16(a).unwrap())).collect();
    assert_eq!(parsed, want);
}

fn test_token() -> std::os::windows::io::OwnedHandle {
    let base = token::process_token().unwrap();
    let id = token::identity(&base).unwrap();
    let mut restricting = vec![Sid::everyone()];
    restricting.extend(id.logon_sid.clone());
    token::restricted_token(&base, &restricting, &id).unwrap()
}

fn job_limits() -> JobLimits {
    JobLimits {
        kill_on_close: true,
        breakaway: false,
        die_on_unhandled_exception: true,
        active_processes: Some(16),
        job_memory: None,
        ui_limits: ui_limits::ALL,
    }
}

fn cmd_exe() -> String {
    let root = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
    format!(r"{root}\system32\cmd.exe")
}

fn run_cmd(script: &str, env: &[(String, String)], timeout: Option<Duration>) -> (ExitStatus, Duration) {
    let token = test_token();
    let job = job::create(&job_limits()).unwrap();
    let cmd = cmd_exe();
    let line = cmdline::command_line(&w(&cmd), &[w("/c"), w(script)]).unwrap();
    let mut vars: Vec<(String, String)> = env.to_vec();
    for k in ["SystemRoot", "windir", "PATH"] {
        if let Ok(v) = std::env::var(k) {
            vars.push((k.into(), v));
        }
    }
    let cwd: Vec<u16> = std::env::temp_dir().as_os_str().to_string_lossy().encode_utf16().chain([0]).collect();
    launch::run(launch::Launch {
        token: &token,
        application: Some(w(&cmd).into_iter().chain([0]).collect()),
        command_line: line,
        cwd,
        environment: env_block::encode(&vars),
        stdio: Stdio::Null,
        desktop: None,
        job: &job,
        timeout,
    })
    .unwrap()
}

#[test]
fn processes_report_their_exit_codes() {
    assert_eq!(run_cmd("exit 3", &[], None).0, ExitStatus::Exited { code: 3 });
    assert_eq!(run_cmd("exit 0", &[], None).0, ExitStatus::Exited { code: 0 });
}

#[test]
fn a_missing_program_is_not_found() {
    let token = test_token();
    let job = job::create(&job_limits()).unwrap();
    let app = r"C:\definitely\not\here.exe";
    let status = launch::run(launch::Launch {
        token: &token,
        application: Some(w(app).into_iter().chain([0]).collect()),
        command_line: w(app),
        cwd: w(r"C:\").into_iter().chain([0]).collect(),
        environment: env_block::encode(&[]),
        stdio: Stdio::Null,
        desktop: None,
        job: &job,
        timeout: None,
    })
    .unwrap()
    .0;
    assert_eq!(status, ExitStatus::NotFound);
}

#[test]
fn the_environment_block_reaches_the_child() {
    let env = vec![("STOCKADE_PLUMBING".to_owned(), "yes please".to_owned())];
    let script = r#"if "%STOCKADE_PLUMBING%"=="yes please" (exit 7) else (exit 8)"#;
    assert_eq!(run_cmd(script, &env, None).0, ExitStatus::Exited { code: 7 });
    assert_eq!(run_cmd(script, &[], None).0, ExitStatus::Exited { code: 8 }, "negative control: not inherited");
}

#[test]
fn a_timeout_ends_the_whole_job() {
    let started = Instant::now();
    let (status, _) = run_cmd("for /L %i in (1,0,2) do @rem", &[], Some(Duration::from_millis(700)));
    assert_eq!(status, ExitStatus::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[test]
fn jobs_can_be_created_terminated_and_closed() {
    let job = job::create(&job_limits()).unwrap();
    job::terminate(&job, 1).unwrap();
    drop(job);
}

#[test]
fn named_pipes_admit_the_client_and_report_its_pid() {
    let base = token::process_token().unwrap();
    let id = token::identity(&base).unwrap();
    let name = format!("stockade-test-{}", std::process::id());
    let server = pipe::create_server(&name, &id.user).unwrap();
    assert!(pipe::create_server(&name, &id.user).is_err(), "FIRST_PIPE_INSTANCE: the name cannot be taken twice");
    let client = std::thread::spawn(move || pipe::connect_client(&name).map(|h| h.as_raw_handle() as usize));
    pipe::accept(&server, std::process::id()).unwrap();
    assert_eq!(pipe::client_pid(&server).unwrap(), std::process::id());
    assert!(client.join().unwrap().is_ok());
}

/// The whole unelevated `run` path under Wine: ledger, probe, plan, ACL stamping, token, job,
/// desktop, environment, launch, exit code. Wine enforces none of it, but every call must
/// succeed and the exit code must come back.
#[test]
fn the_backend_runs_a_command_end_to_end() {
    use stockade_policy::*;
    let base = std::env::temp_dir().join(format!("stockade-e2e-{}", std::process::id()));
    let ws = base.join("ws");
    std::fs::create_dir_all(ws.join(".git").join("hooks")).unwrap();
    let s = |p: PathBuf| Sourced::new(p, Source::Default);
    let list = |l: &[&str]| l.iter().map(|v| Sourced::new((*v).to_owned(), Source::Default)).collect();
    let policy = Policy {
        mode: Mode::WorkspaceWrite,
        workspace: ws.clone(),
        filesystem: FsPolicy {
            readable: Readable::All,
            deny_read: vec![],
            writable_roots: vec![s(ws.clone())],
            protected: vec![s(ws.join(".git").join("hooks")), s(ws.join(".codex"))],
            deny_write: vec![],
            private_tmp: true,
        },
        network: NetworkPolicy { mode: NetworkMode::Off, allow: vec![], deny: vec![] },
        process: ProcessLimits {
            timeout: Some(Duration::from_secs(30)),
            memory_bytes: None,
            max_processes: Some(16),
            max_open_files: None,
        },
        env: EnvPolicy { allow: list(defaults::ENV_ALLOW), deny: list(defaults::ENV_DENY), set: vec![] },
        linux: LinuxSettings {
            implementation: LinuxImplementation::Namespaces,
            allow_fallback: false,
            allowed_implementations: LinuxImplementation::ALL.to_vec(),
        },
        windows: WindowsSettings {
            sandbox: WindowsImplementation::Unelevated,
            private_desktop: true,
            allowed_implementations: vec![WindowsImplementation::Unelevated],
        },
        allow_escalation: false,
        provenance: Provenance::default(),
    };
    let cmd = CommandSpec {
        program: "cmd.exe".into(),
        args: vec!["/c".into(), "echo hi> made.txt & exit 5".into()],
        cwd: None,
        host_env: std::env::vars_os().collect(),
        stdio: Stdio::Null,
    };
    let out = stockade_windows::WindowsBackend.run(&policy, &cmd).unwrap();
    assert_eq!(out.status, ExitStatus::Exited { code: 5 });
    assert!(ws.join("made.txt").exists());
    assert!(ws.join(".codex").is_dir(), "the missing protected dir was created before the run");
    let second = stockade_windows::WindowsBackend.run(&policy, &cmd).unwrap();
    assert_eq!(second.status, ExitStatus::Exited { code: 5 });
    // Per-command overhead after the first run (ledger check, token, job, desktop), printed
    // for the record; machines here are too noisy for a timed assertion. The two runs above
    // are the checks. Here, Wine's CreateProcess has failed once with ERROR_INTERNAL_ERROR
    // (1359) in about ninety calls (one CI run in seven): that run is repeated once, and said.
    let started = std::time::Instant::now();
    for _ in 0..5 {
        match stockade_windows::WindowsBackend.run(&policy, &cmd) {
            Err(stockade_windows::Error::Win32 { step: "create_process", code: 1359, .. }) if running_under_wine() => {
                eprintln!("wine: create_process failed with ERROR_INTERNAL_ERROR (1359); running it again");
                stockade_windows::WindowsBackend.run(&policy, &cmd).unwrap();
            }
            other => {
                other.unwrap();
            }
        }
    }
    eprintln!("per-command wall time through the backend: {:?}", started.elapsed() / 5);
    let _ = std::fs::remove_dir_all(&base);
}

/// The runner's side of the elevated launch, started here as the same user (the account
/// switch through `CreateProcessWithLogonW` needs a real Windows host): it connects to the
/// pipe, passes the PID check, restricts its own token, runs the command and reports its code.
#[test]
fn the_runner_serves_one_request_over_the_pipe() {
    use std::io::{BufRead, BufReader, Write};

    use stockade_windows::runner_protocol::{decode, encode, RunRequest, RunResponse, RunStatus};
    let base = token::process_token().unwrap();
    let id = token::identity(&base).unwrap();
    let name = format!("stockade-runner-test-{}", std::process::id());
    let server = pipe::create_server(&name, &id.user).unwrap();
    let child =
        std::process::Command::new(env!("CARGO_BIN_EXE_stockade-runner")).args(["--pipe", &name]).spawn().unwrap();
    pipe::accept(&server, child.id()).unwrap();
    let cmd = cmd_exe();
    let request = RunRequest {
        restricting_sids: vec![Sid::everyone()],
        application: cmd.clone(),
        command_line: cmdline::command_line(&w(&cmd), &[w("/c"), w("exit 4")]).unwrap(),
        cwd: std::env::temp_dir().display().to_string(),
        environment: ["SystemRoot", "PATH"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect(),
        job: job_limits(),
        desktop: None,
        timeout_ms: Some(30_000),
        stdio_null: true,
    };
    let mut conn = std::fs::File::from(server);
    conn.write_all(encode(&request).as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(&conn).read_line(&mut reply).unwrap();
    let response: RunResponse = decode(&reply).unwrap();
    assert_eq!(response.status, RunStatus::Exited { code: 4 });
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
}
