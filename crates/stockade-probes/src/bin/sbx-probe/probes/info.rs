//! Information probes (I1-I6, P9): posture, process visibility, environment, hostname.

use super::*;

pub(super) fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim_start_matches(':').trim().to_owned()))
        .unwrap_or_else(|| "?".to_owned())
}

/// P9: capabilities, no_new_privs, seccomp mode and ids. "allowed" means the posture is weak.
pub(super) fn posture() -> Probe {
    let s = std::fs::read_to_string("/proc/self/status").map_err(io_fail("read /proc/self/status"))?;
    let f = |k| status_field(&s, k);
    let (eff, prm, amb, inh, bnd, nnp, sec) =
        (f("CapEff"), f("CapPrm"), f("CapAmb"), f("CapInh"), f("CapBnd"), f("NoNewPrivs"), f("Seccomp"));
    let zero = |v: &str| v.chars().all(|c| c == '0');
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let setgroups = std::fs::read_to_string("/proc/self/setgroups").unwrap_or_default();
    // SAFETY: getuid/getgid/geteuid cannot fail.
    let (uid, euid, gid) = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid()) };
    let detail = format!(
        "CapEff={eff} CapPrm={prm} CapAmb={amb} CapInh={inh} CapBnd={bnd} NoNewPrivs={nnp} Seccomp={sec} uid={uid} euid={euid} gid={gid} uid_map=[{}] setgroups={}",
        uid_map.split_whitespace().collect::<Vec<_>>().join(" "),
        setgroups.trim()
    );
    // The bounding set is in the detail for the caller to judge: a process without
    // capabilities in its user namespace cannot empty it (an unprivileged `landlock-only`
    // command), and under no_new_privs it grants nothing.
    let weak = [&eff, &prm, &amb, &inh].iter().any(|v| !zero(v)) || nnp != "1" || sec != "2";
    if weak {
        Ok(detail)
    } else {
        Err(Fail { errno: 0, detail })
    }
}

/// `reversed` is the token reversed, so that the probe's own argv does not match.
pub(super) fn find_token(reversed: &str) -> Probe {
    let token: String = reversed.chars().rev().collect();
    let token = token.as_str();
    let mut seen = 0;
    let dir = std::fs::read_dir("/proc").map_err(io_fail("readdir /proc"))?;
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        seen += 1;
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if c.windows(token.len()).any(|w| w == token.as_bytes()) {
                return Ok(format!("process {pid} with `{token}` in its argv is visible ({seen}+ pids listed)"));
            }
        }
    }
    Err(Fail { errno: libc::ESRCH, detail: format!("no process with `{token}` among {seen} visible pids") })
}

pub(super) fn env_has(names: &[String]) -> Probe {
    let env = std::fs::read("/proc/self/environ").map_err(io_fail("read /proc/self/environ"))?;
    let vars: Vec<String> =
        env.split(|b| *b == 0).filter(|v| !v.is_empty()).map(|v| String::from_utf8_lossy(v).into_owned()).collect();
    let hits: Vec<&String> =
        vars.iter().filter(|v| names.iter().any(|n| v.split('=').next() == Some(n.as_str()))).collect();
    let all: Vec<&str> = vars.iter().filter_map(|v| v.split('=').next()).collect();
    if hits.is_empty() {
        Err(Fail { errno: 0, detail: format!("none present; environment names: {}", all.join(",")) })
    } else {
        Ok(format!("present: {}", hits.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")))
    }
}

pub(super) fn hostname() -> Probe {
    // SAFETY: u is a valid out buffer.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    check(unsafe { libc::uname(&mut u) } as i64, "uname")?;
    let name: String = u.nodename.iter().take_while(|c| **c != 0).map(|c| *c as u8 as char).collect();
    Ok(name)
}
