//! Added start-up latency of the backend alone (no CLI, policy resolved once), side by side
//! with `bwrap` in the same run: `cargo run --release -p stockade-linux --example startup [N]`.
//! Runs are interleaved so a noisy machine affects both alike; prints medians and the ratio.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(target_os = "linux")]
fn main() {
    use std::process::{Command, Stdio as PStdio};
    use std::time::{Duration, Instant};

    use stockade_policy::{Backend, CommandSpec, HostEnv, Locations, Overrides, Stdio};

    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    // A scratch workspace: a run creates placeholders for missing protected paths in it.
    let ws = std::env::temp_dir().join("stockade-startup-bench");
    std::fs::create_dir_all(&ws).unwrap();
    let ws = std::fs::canonicalize(ws).unwrap();
    let env = HostEnv { cwd: ws.clone(), ..HostEnv::from_process().unwrap() };
    let policy = stockade_policy::resolve(&Overrides::default(), None, &[], &env, &Locations::linux(&env)).unwrap();
    let backend = stockade_linux::LinuxBackend::default();
    let spec = CommandSpec {
        program: "/bin/true".into(),
        args: vec![],
        cwd: None,
        host_env: std::env::vars_os().collect(),
        stdio: Stdio::Null,
    };
    let wsd = ws.display().to_string();
    let bwrap = [
        "--ro-bind",
        "/",
        "/",
        "--bind",
        &wsd,
        &wsd,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "/bin/true",
    ];
    let (mut t_true, mut t_st, mut t_bw) = (Vec::new(), Vec::new(), Vec::new());
    let time = |f: &mut dyn FnMut()| {
        let s = Instant::now();
        f();
        s.elapsed()
    };
    for _ in 0..n {
        t_true.push(time(&mut || {
            Command::new("/bin/true").stdout(PStdio::null()).status().unwrap();
        }));
        t_st.push(time(&mut || {
            backend.run(&policy, &spec).unwrap();
        }));
        t_bw.push(time(&mut || {
            Command::new("bwrap").args(bwrap).stdout(PStdio::null()).status().unwrap();
        }));
    }
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let (a, b, c) = (med(&mut t_true), med(&mut t_st), med(&mut t_bw));
    println!(
        "/bin/true {a:.2} ms; stockade backend {b:.2} ms (+{:.2}); bwrap {c:.2} ms (+{:.2}); ratio {:.2}",
        b - a,
        c - a,
        (b - a) / (c - a)
    );
}

#[cfg(not(target_os = "linux"))]
fn main() {}
