//! The environment variables that point real tools at the proxy.
//!
//! There is no single convention, so the set is broad: the de-facto `*_proxy` variables (curl,
//! wget, python `requests`/`urllib`, Go, Rust `reqwest`, apt), their lowercase twins (curl
//! ignores uppercase `HTTP_PROXY` for security reasons), and tool-specific ones that do not read
//! the generic names. `NO_PROXY` covers loopback only, so the command's own local servers inside
//! the sandbox stay reachable directly and everything else goes through the proxy.
//!
//! ssh does not read proxy variables; `GIT_SSH_COMMAND` sets a `ProxyCommand` that uses
//! `nc -X 5 -x 127.0.0.1:PORT %h %p` (package `netcat-openbsd` on Debian/Ubuntu; macOS ships
//! this `nc`), which speaks SOCKS5 with the host name, so the proxy resolves and checks it.
//! `git@github.com:...` then needs a rule such as `github.com:22`.

/// The variables for a proxy reachable at `127.0.0.1:port` (inside the sandbox, the
/// forwarder's port; on macOS/Windows, the proxy's own loopback port).
///
/// `GIT_CONFIG_COUNT` is set to 1 with `http.proxy`: callers should not merge a user's own
/// `GIT_CONFIG_*` variables with these (the environment is built from an allowlist anyway).
pub fn proxy_env(port: u16) -> Vec<(String, String)> {
    let http = format!("http://127.0.0.1:{port}");
    let socks = format!("socks5h://127.0.0.1:{port}");
    let no_proxy = "localhost,127.0.0.1,::1".to_owned();
    let mut v: Vec<(&str, String)> = Vec::new();
    for (name, value) in [("HTTP_PROXY", &http), ("HTTPS_PROXY", &http), ("ALL_PROXY", &socks), ("NO_PROXY", &no_proxy)]
    {
        v.push((name, value.clone()));
    }
    for (name, value) in [("http_proxy", &http), ("https_proxy", &http), ("all_proxy", &socks), ("no_proxy", &no_proxy)]
    {
        v.push((name, value.clone()));
    }
    v.extend([
        // npm and yarn classic read npm_config_*; yarn berry reads YARN_*; Node's own fetch
        // honours the generic variables only with NODE_USE_ENV_PROXY (Node 24+).
        ("npm_config_proxy", http.clone()),
        ("npm_config_https_proxy", http.clone()),
        ("YARN_HTTP_PROXY", http.clone()),
        ("YARN_HTTPS_PROXY", http.clone()),
        ("NODE_USE_ENV_PROXY", "1".to_owned()),
        ("PIP_PROXY", http.clone()),
        ("CARGO_HTTP_PROXY", http.clone()),
        ("GIT_CONFIG_COUNT", "1".to_owned()),
        ("GIT_CONFIG_KEY_0", "http.proxy".to_owned()),
        ("GIT_CONFIG_VALUE_0", http.clone()),
        ("GIT_SSH_COMMAND", format!("ssh -o ProxyCommand='nc -X 5 -x 127.0.0.1:{port} %h %p'")),
    ]);
    v.into_iter().map(|(k, val)| (k.to_owned(), val)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let env = proxy_env(3128);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("HTTPS_PROXY"), Some("http://127.0.0.1:3128"));
        assert_eq!(get("https_proxy"), Some("http://127.0.0.1:3128"));
        assert_eq!(get("ALL_PROXY"), Some("socks5h://127.0.0.1:3128"));
        assert_eq!(get("no_proxy"), Some("localhost,127.0.0.1,::1"));
        assert_eq!(get("GIT_CONFIG_KEY_0"), Some("http.proxy"));
        assert_eq!(get("GIT_SSH_COMMAND"), Some("ssh -o ProxyCommand='nc -X 5 -x 127.0.0.1:3128 %h %p'"));
        for k in ["npm_config_proxy", "npm_config_https_proxy", "PIP_PROXY", "CARGO_HTTP_PROXY", "GIT_CONFIG_COUNT"] {
            assert!(get(k).is_some(), "{k}");
        }
        let mut names: Vec<_> = env.iter().map(|(n, _)| n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), env.len(), "no duplicates");
    }
}
