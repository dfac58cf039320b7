//! Building the command's environment from the policy.
//!
//! The environment is built from nothing (an allowlist), never by removing known-bad names
//! from the host's (a denylist misses the next secret's name). A host variable passes when its
//! name matches an `allow` pattern and no `deny` pattern; deny patterns compare ignoring ASCII
//! case so `github_token` is caught like `GITHUB_TOKEN`. Then `set` entries are applied.

use std::ffi::OsString;

use crate::policy::EnvPolicy;

/// Whether `name` matches `pattern`, where `*` matches any run of characters (including none).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    glob(pattern.as_bytes(), name.as_bytes(), &|a, b| a == b)
}

/// [`name_matches`] ignoring ASCII case (deny rules catch `Aws_Secret` as well as `AWS_SECRET`).
fn name_matches_ignore_case(pattern: &str, name: &str) -> bool {
    glob(pattern.as_bytes(), name.as_bytes(), &|a, b| a.eq_ignore_ascii_case(b))
}

fn glob(p: &[u8], n: &[u8], same: &impl Fn(&u8, &u8) -> bool) -> bool {
    match p.split_first() {
        None => n.is_empty(),
        Some((b'*', rest)) => (0..=n.len()).any(|i| glob(rest, &n[i..], same)),
        Some((c, rest)) => n.split_first().is_some_and(|(d, nrest)| same(c, d) && glob(rest, nrest, same)),
    }
}

/// Whether a host variable named `name` may pass under `policy`.
pub fn passes(policy: &EnvPolicy, name: &str) -> bool {
    policy.allow.iter().any(|p| name_matches(&p.value, name))
        && !policy.deny.iter().any(|p| name_matches_ignore_case(&p.value, name))
}

/// The command's environment: allowed host variables (UTF-8 names only) in host order, then
/// the policy's fixed `set` values, which replace a host value of the same name.
pub fn build_env(
    policy: &EnvPolicy,
    host: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut out: Vec<(OsString, OsString)> = host
        .into_iter()
        .filter(|(k, _)| k.to_str().is_some_and(|k| passes(policy, k)))
        .filter(|(k, _)| !policy.set.iter().any(|s| k.to_str() == Some(s.value.0.as_str())))
        .collect();
    out.extend(policy.set.iter().map(|s| (OsString::from(&s.value.0), OsString::from(&s.value.1))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults;
    use crate::provenance::{Source, Sourced};

    fn policy() -> EnvPolicy {
        let list = |l: &[&str]| l.iter().map(|s| Sourced::new((*s).to_owned(), Source::Default)).collect();
        EnvPolicy {
            allow: list(defaults::ENV_ALLOW),
            deny: list(defaults::ENV_DENY),
            set: vec![Sourced::new(("STOCKADE".into(), "1".into()), Source::Default)],
        }
    }

    #[test]
    fn wildcard_matching() {
        assert!(name_matches("LC_*", "LC_ALL"));
        assert!(name_matches("*_TOKEN", "GITHUB_TOKEN"));
        assert!(name_matches("*_TOKEN", "_TOKEN"));
        assert!(!name_matches("*_TOKEN", "TOKEN"));
        assert!(name_matches("a*b*c", "aXXbYc"));
        assert!(!name_matches("PATH", "PATHX"));
    }

    #[test]
    fn secrets_never_pass_by_default() {
        let p = policy();
        for secret in [
            "GITHUB_TOKEN",
            "AWS_ACCESS_KEY_ID",
            "GH_TOKEN",
            "SSH_AUTH_SOCK",
            "OPENAI_API_KEY",
            "MY_SECRET",
            "npm_config__authToken",
            "DBUS_SESSION_BUS_ADDRESS",
        ] {
            assert!(!passes(&p, secret), "{secret} must not pass");
        }
        for ok in ["PATH", "HOME", "LANG", "LC_ALL", "TERM", "CARGO_HOME"] {
            assert!(passes(&p, ok), "{ok} should pass");
        }
        assert!(!passes(&p, "RANDOM_UNLISTED"), "unlisted variables do not pass");
    }

    #[test]
    fn deny_is_case_insensitive_and_set_replaces() {
        let mut p = policy();
        p.allow.push(Sourced::new("*".into(), Source::Default));
        assert!(!passes(&p, "github_token"));
        let env = build_env(&p, [("STOCKADE".into(), "host".into()), ("X".into(), "y".into())]);
        assert_eq!(env, vec![("X".into(), "y".into()), ("STOCKADE".into(), "1".into())]);
    }
}
