//! The pure parts of launching: the child's environment, the `sandbox-exec` command line, and
//! finding the program before the sandbox starts.
//!
//! `sandbox-exec` reports a failed `execvp` only as text on the command's own stderr and a
//! non-zero exit, indistinguishable from the command's own failure. stockade therefore looks
//! the program up itself, on the *child's* `PATH`, before starting anything
//! ([`resolve_program`]), and reports 127 (not found) or 126 (not executable) like a shell
//! would. `execvp(3)`: <https://developer.apple.com/library/archive/documentation/System/Conceptual/ManPages_iPhoneOS/man3/execvp.3.html>.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use stockade_policy::env_filter::build_env;
use stockade_policy::{NetworkMode, Policy};

use crate::profile::{Profile, ProxyEndpoint};

/// `sandbox-exec`, always by absolute path: a `PATH` lookup could find an impostor.
pub const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

/// The command's environment: the policy's allowlist over the host environment
/// ([`build_env`]), then `TMPDIR` pointing at the private temp dir, then, with an allowlist
/// proxy, the proxy variables (both spellings, since tools disagree on case).
pub fn child_env(
    policy: &Policy,
    host_env: &[(OsString, OsString)],
    private_tmp: Option<&Path>,
    proxy: Option<&ProxyEndpoint>,
) -> Vec<(OsString, OsString)> {
    let mut env = build_env(&policy.env, host_env.iter().cloned());
    let mut set = |k: &str, v: OsString| {
        env.retain(|(name, _)| name != k);
        env.push((k.into(), v));
    };
    if let Some(tmp) = private_tmp {
        set("TMPDIR", tmp.as_os_str().to_owned());
    }
    if policy.network.mode == NetworkMode::Allow {
        if let Some(p) = proxy {
            // 127.0.0.1, not `localhost`: the sandbox has no DNS in this mode.
            let url = OsString::from(format!("http://127.0.0.1:{}", p.port));
            for k in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
                set(k, url.clone());
            }
            for k in ["NO_PROXY", "no_proxy"] {
                set(k, OsString::new());
            }
        }
    }
    env
}

/// The full `sandbox-exec` argument list: profile, parameters, `--`, program, arguments.
pub fn sandbox_exec_argv(profile: &Profile, program: &OsStr, args: &[OsString]) -> Vec<OsString> {
    let mut argv = profile.sandbox_exec_args();
    argv.push("--".into());
    argv.push(program.to_owned());
    argv.extend(args.iter().cloned());
    argv
}

/// What a file system entry is, as far as running it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Nothing there.
    Missing,
    /// A regular file with an execute bit for the user.
    Executable,
    /// Something that cannot be run (a directory, no execute bit).
    NotExecutable,
}

/// The result of looking the program up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Found; `sandbox-exec` will find the same file.
    Found(PathBuf),
    /// Nothing by that name: exit status 127.
    NotFound,
    /// Found but not runnable: exit status 126.
    NotExecutable(PathBuf),
}

/// Looks `program` up like `execvp`: a name with a `/` is taken relative to `cwd`, anything
/// else is searched in `path_var` (the child's `PATH`, default `/usr/bin:/bin`). A
/// non-executable match is remembered but the search continues, as `execvp` does.
pub fn resolve_program(
    program: &OsStr,
    path_var: Option<&OsStr>,
    cwd: &Path,
    probe: impl Fn(&Path) -> Probe,
) -> Resolution {
    let as_path = Path::new(program);
    if program.is_empty() {
        return Resolution::NotFound;
    }
    if program.as_encoded_bytes().contains(&b'/') {
        let full = cwd.join(as_path);
        return match probe(&full) {
            Probe::Executable => Resolution::Found(full),
            Probe::NotExecutable => Resolution::NotExecutable(full),
            Probe::Missing => Resolution::NotFound,
        };
    }
    let default = OsString::from("/usr/bin:/bin");
    let path_var = path_var.unwrap_or(&default);
    let mut not_exec = None;
    for dir in std::env::split_paths(path_var) {
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let full = if dir.is_absolute() { dir.join(as_path) } else { cwd.join(dir).join(as_path) };
        match probe(&full) {
            Probe::Executable => return Resolution::Found(full),
            Probe::NotExecutable if not_exec.is_none() => not_exec = Some(full),
            _ => {}
        }
    }
    not_exec.map_or(Resolution::NotFound, Resolution::NotExecutable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(p: &Path) -> Probe {
        let p: PathBuf = p.components().collect();
        match p.to_str() {
            Some("/usr/bin/git" | "/ws/run.sh" | "/opt/bin/tool") => Probe::Executable,
            Some("/ws/notes.txt" | "/usr/bin/tool") => Probe::NotExecutable,
            _ => Probe::Missing,
        }
    }

    #[test]
    fn resolves_like_execvp() {
        let path = OsStr::new("/usr/bin:/opt/bin");
        let ws = Path::new("/ws");
        assert_eq!(resolve_program("git".as_ref(), Some(path), ws, probe), Resolution::Found("/usr/bin/git".into()));
        // A non-executable earlier match does not hide an executable later one.
        assert_eq!(resolve_program("tool".as_ref(), Some(path), ws, probe), Resolution::Found("/opt/bin/tool".into()));
        assert_eq!(resolve_program("nope".as_ref(), Some(path), ws, probe), Resolution::NotFound);
        assert_eq!(
            resolve_program("./run.sh".as_ref(), Some(path), ws, probe),
            Resolution::Found("/ws/./run.sh".into())
        );
        assert_eq!(
            resolve_program("./notes.txt".as_ref(), Some(path), ws, probe),
            Resolution::NotExecutable("/ws/./notes.txt".into())
        );
        assert_eq!(resolve_program("".as_ref(), Some(path), ws, probe), Resolution::NotFound);
        assert_eq!(resolve_program("git".as_ref(), None, ws, probe), Resolution::Found("/usr/bin/git".into()));
        assert_eq!(
            resolve_program("tool".as_ref(), Some(OsStr::new("/usr/bin")), ws, probe),
            Resolution::NotExecutable("/usr/bin/tool".into())
        );
    }
}
