//! The command's environment: built from the policy, never inherited, and encoded as the
//! block `CreateProcessAsUserW` takes.
//!
//! The block is `name=value\0` entries in UTF-16, sorted by name case-insensitively (as
//! [`CreateProcess`](https://learn.microsoft.com/en-us/windows/win32/procthread/changing-environment-variables)
//! documents for environment blocks), ending with an extra `\0`. Names are compared
//! case-insensitively on Windows, so a later entry replaces an earlier one that differs only by
//! case. A name may not contain `=` (except a leading one, as in `=C:`) or NUL; a value may not
//! contain NUL.
//!
//! On top of the policy's allowlist ([`stockade_policy::env_filter::build_env`]) the Windows
//! variables programs cannot start without pass when the host has them ([`WINDOWS_ESSENTIALS`]),
//! `TEMP`/`TMP` point at the run's private temp dir, and git is told the workspace is safe
//! through `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` (the sandbox user does not
//! own the repository in the elevated implementation, and git refuses such repositories
//! without `safe.directory`).

use std::ffi::OsString;

use stockade_policy::{EnvPolicy, NetworkMode};

use crate::error::Error;

/// Variables Windows programs need and that carry no secret. They pass from the host when set,
/// whatever the allowlist says.
pub const WINDOWS_ESSENTIALS: &[&str] = &[
    "SystemRoot",
    "SystemDrive",
    "windir",
    "ComSpec",
    "PATHEXT",
    "OS",
    "PROCESSOR_ARCHITECTURE",
    "PROCESSOR_IDENTIFIER",
    "PROCESSOR_LEVEL",
    "PROCESSOR_REVISION",
    "NUMBER_OF_PROCESSORS",
    "ProgramData",
    "ProgramFiles",
    "ProgramFiles(x86)",
    "ProgramW6432",
    "CommonProgramFiles",
    "CommonProgramFiles(x86)",
    "CommonProgramW6432",
    "PSModulePath",
    // Where the user's files and tools' per-user settings live: not secrets themselves, and
    // many tools (git, npm, pip, cargo) fail without them. What they point to is governed by
    // the ACLs, not by hiding the names.
    "USERPROFILE",
    "HOMEDRIVE",
    "HOMEPATH",
    "APPDATA",
    "LOCALAPPDATA",
    "PUBLIC",
    "ALLUSERSPROFILE",
    "USERNAME",
    "USERDOMAIN",
    "COMPUTERNAME",
];

/// Proxy variables pointing at a closed port, for the unelevated implementation with network
/// off (discouragement only: nothing enforces them).
const NOWHERE_PROXY: &str = "http://127.0.0.1:9";

/// Inputs of the environment besides the policy.
#[derive(Debug, Clone)]
pub struct EnvInputs<'a> {
    /// The host environment.
    pub host: &'a [(OsString, OsString)],
    /// The run's private temp dir.
    pub temp_dir: String,
    /// The workspace, for `safe.directory`.
    pub workspace: String,
    /// The policy's network mode.
    pub network: NetworkMode,
    /// The proxy URL when the policy has an allowlist.
    pub proxy_url: Option<String>,
    /// Whether network-off is enforced (elevated) or only discouraged (unelevated).
    pub network_enforced: bool,
}

/// The environment as ordered `(name, value)` pairs.
pub fn build(policy: &EnvPolicy, inputs: &EnvInputs<'_>) -> Result<Vec<(String, String)>, Error> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |name: &str, value: String, vars: &mut Vec<(String, String)>| {
        vars.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        vars.push((name.to_owned(), value));
    };
    for (k, v) in inputs.host {
        if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
            if WINDOWS_ESSENTIALS.iter().any(|e| e.eq_ignore_ascii_case(k)) {
                set(k, v.to_owned(), &mut vars);
            }
        }
    }
    // The allowlist compares names case-sensitively; Windows spells `Path`, so match
    // allowlist entries ignoring case here.
    let host_upper: Vec<(OsString, OsString)> = inputs
        .host
        .iter()
        .filter_map(|(k, v)| k.to_str().map(|k| (OsString::from(k.to_ascii_uppercase()), v.clone())))
        .collect();
    for (k, v) in stockade_policy::env_filter::build_env(policy, host_upper) {
        let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else { continue };
        let original =
            inputs.host.iter().filter_map(|(h, _)| h.to_str()).find(|h| h.eq_ignore_ascii_case(k)).unwrap_or(k);
        set(original, v.to_owned(), &mut vars);
    }
    set("TEMP", inputs.temp_dir.clone(), &mut vars);
    set("TMP", inputs.temp_dir.clone(), &mut vars);
    set("GIT_CONFIG_COUNT", "1".into(), &mut vars);
    set("GIT_CONFIG_KEY_0", "safe.directory".into(), &mut vars);
    set("GIT_CONFIG_VALUE_0", inputs.workspace.replace('\\', "/"), &mut vars);
    match (inputs.network, &inputs.proxy_url) {
        (NetworkMode::Allow, Some(url)) => {
            for n in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
                set(n, url.clone(), &mut vars);
            }
        }
        (NetworkMode::Off, _) if !inputs.network_enforced => {
            for n in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
                set(n, NOWHERE_PROXY.into(), &mut vars);
            }
            set("NO_PROXY", String::new(), &mut vars);
        }
        _ => {}
    }
    for (n, v) in &vars {
        validate(n, v)?;
    }
    vars.sort_by_key(|(n, _)| n.to_uppercase());
    Ok(vars)
}

fn validate(name: &str, value: &str) -> Result<(), Error> {
    let bad = |detail| Err(Error::BadEnvironment { name: name.to_owned(), detail });
    if name.is_empty() {
        return bad("empty name");
    }
    if name[1..].contains('=') {
        return bad("`=` in the name");
    }
    if name.contains('\0') || value.contains('\0') {
        return bad("NUL character");
    }
    Ok(())
}

/// Encodes pairs as a `CREATE_UNICODE_ENVIRONMENT` block.
pub fn encode(vars: &[(String, String)]) -> Vec<u16> {
    let mut out = Vec::new();
    for (n, v) in vars {
        out.extend(n.encode_utf16());
        out.push(b'=' as u16);
        out.extend(v.encode_utf16());
        out.push(0);
    }
    if vars.is_empty() {
        out.push(0);
    }
    out.push(0);
    out
}

/// Decodes a block (the inverse of [`encode`], for tests and for reading
/// `GetEnvironmentStringsW` in the runner).
pub fn decode(block: &[u16]) -> Vec<(String, String)> {
    block
        .split(|&c| c == 0)
        .take_while(|e| !e.is_empty())
        .map(|e| {
            let s = String::from_utf16_lossy(e);
            // A leading `=` belongs to the name (`=C:=C:\dir`).
            let split = s.char_indices().skip(1).find(|(_, c)| *c == '=').map(|(i, _)| i);
            match split {
                Some(i) => (s[..i].to_owned(), s[i + 1..].to_owned()),
                None => (s, String::new()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use stockade_policy::{defaults, Source, Sourced};

    use super::*;

    fn policy() -> EnvPolicy {
        let list = |l: &[&str]| l.iter().map(|s| Sourced::new((*s).to_owned(), Source::Default)).collect();
        EnvPolicy { allow: list(defaults::ENV_ALLOW), deny: list(defaults::ENV_DENY), set: vec![] }
    }

    fn host() -> Vec<(OsString, OsString)> {
        [
            ("Path", r"C:\Windows\system32;C:\tools"),
            ("SystemRoot", r"C:\Windows"),
            ("GITHUB_TOKEN", "ghp_secret"),
            ("USERPROFILE", r"C:\Users\me"),
            ("TEMP", r"C:\Users\me\AppData\Local\Temp"),
            ("ComSpec", r"C:\Windows\system32\cmd.exe"),
        ]
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
    }

    fn inputs(h: &[(OsString, OsString)], network: NetworkMode, enforced: bool) -> EnvInputs<'_> {
        EnvInputs {
            host: h,
            temp_dir: r"C:\Users\me\AppData\Local\stockade\tmp\r1".into(),
            workspace: r"C:\src\app".into(),
            network,
            proxy_url: None,
            network_enforced: enforced,
        }
    }

    #[test]
    fn only_allowed_and_essential_variables_pass_and_temp_is_private() {
        let h = host();
        let vars = build(&policy(), &inputs(&h, NetworkMode::Off, true)).unwrap();
        let get = |n: &str| vars.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
        assert_eq!(get("Path"), Some(r"C:\Windows\system32;C:\tools"));
        assert_eq!(vars.iter().find(|(k, _)| k.eq_ignore_ascii_case("path")).unwrap().0, "Path", "host spelling kept");
        assert_eq!(get("SystemRoot"), Some(r"C:\Windows"));
        assert_eq!(get("GITHUB_TOKEN"), None);
        assert_eq!(get("USERPROFILE"), Some(r"C:\Users\me"), "tools need it; the ACLs decide what it reaches");
        assert_eq!(get("TEMP"), Some(r"C:\Users\me\AppData\Local\stockade\tmp\r1"));
        assert_eq!(get("GIT_CONFIG_KEY_0"), Some("safe.directory"));
        assert_eq!(get("GIT_CONFIG_VALUE_0"), Some("C:/src/app"));
        assert_eq!(get("HTTP_PROXY"), None, "elevated network-off is enforced by the firewall");
        let names: Vec<String> = vars.iter().map(|(k, _)| k.to_uppercase()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn unelevated_network_off_points_proxies_nowhere() {
        let h = host();
        let vars = build(&policy(), &inputs(&h, NetworkMode::Off, false)).unwrap();
        assert!(vars.contains(&("HTTP_PROXY".into(), NOWHERE_PROXY.into())));
    }

    #[test]
    fn block_round_trips_and_rejects_bad_names() {
        let vars =
            vec![("=C:".to_owned(), r"C:\x".to_owned()), ("A".into(), "b=c".into()), ("Ü".into(), "日本".into())];
        let block = encode(&vars);
        assert_eq!(&block[block.len() - 2..], &[0, 0]);
        assert_eq!(decode(&block), vars);
        assert_eq!(encode(&[]), vec![0, 0]);
        assert!(validate("A=B", "x").is_err());
        assert!(validate("A", "x\0y").is_err());
        assert!(validate("=C:", "x").is_ok());
    }
}
