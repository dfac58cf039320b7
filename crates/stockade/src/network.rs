//! The network allowlist for one run: start the proxy, hand its endpoint to the backend, and
//! fold its decisions into the outcome.
//!
//! The proxy listens on a unix socket in a fresh directory that only this process can write
//! (mode 0700, created exclusively), so neither the sandboxed command nor another local user
//! can replace it. On macOS and Windows, whose sandboxes have no private network namespace,
//! it listens on a loopback TCP port that the platform's rules single out.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stockade_net::{Proxy, ProxyConfig, ProxyHandle, Rules};
use stockade_policy::{ListenerSink, Outcome, Policy, ProxyEndpoint};

use crate::Error;

/// How the CLI wants network decisions surfaced.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Append every decision as a JSON line to this file (`--net-log FILE`).
    pub log_file: Option<PathBuf>,
    /// Print one line on stderr for each blocked connection, as it happens.
    pub print_denials: bool,
}

/// A running proxy for one run.
pub(crate) struct RunProxy {
    handle: ProxyHandle,
    print_denials: bool,
    dir: Option<PathBuf>,
    endpoint: ProxyEndpoint,
}

impl RunProxy {
    /// Starts the proxy for `policy`'s allow and deny rules.
    pub(crate) fn start(policy: &Policy, options: &NetOptions) -> Result<Self, Error> {
        let mut config = ProxyConfig::new(Rules::from_policy(&policy.network));
        config.log_file = options.log_file.clone();
        if options.print_denials {
            config.on_denial = Some(Arc::new(|notice: &stockade_net::log::Notice| eprintln!("{}", notice.message)));
        }
        let dir = private_dir()?;
        match &dir {
            Some(d) => config.listen_unix = Some(d.join("proxy.sock")),
            None => config.listen_tcp = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        }
        let handle = match Proxy::start(config) {
            Ok(h) => h,
            Err(source) => {
                if let Some(d) = &dir {
                    let _ = std::fs::remove_dir(d);
                }
                return Err(Error::Network { source });
            }
        };
        let adopter = handle.adopter();
        let adopt =
            ListenerSink(Arc::new(move |l: std::net::TcpListener| adopter.adopt(l).map_err(std::io::Error::other)));
        let endpoint = ProxyEndpoint {
            unix_socket: handle.unix_path().map(Path::to_path_buf),
            tcp: handle.tcp_addr(),
            adopt: Some(adopt),
        };
        Ok(RunProxy { handle, print_denials: options.print_denials, dir, endpoint })
    }

    /// Where the backend should send the command's traffic.
    pub(crate) fn endpoint(&self) -> &ProxyEndpoint {
        &self.endpoint
    }

    /// Stops the proxy and records its decisions (and its denials) in `outcome`. The details a
    /// refusal kept from the command while it ran (the address an allowed name resolved to) are
    /// printed now, once it has ended, with the rule that would allow them.
    pub(crate) fn finish(self, outcome: Option<&mut Outcome>) {
        let log = self.handle.shutdown();
        if self.print_denials {
            for line in log.notices.iter().filter_map(stockade_net::log::Notice::withheld_message) {
                eprintln!("{line}");
            }
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_file(d.join("proxy.sock"));
            let _ = std::fs::remove_dir(d);
        }
        if let Some(outcome) = outcome {
            outcome.denials.extend(log.denials());
            outcome.network = log.events;
        }
    }
}

/// A new directory that only this process's user can enter, for the proxy socket. Only Linux
/// bridges through a unix socket; macOS and Windows sandboxes reach a loopback TCP port.
#[cfg(target_os = "linux")]
fn private_dir() -> Result<Option<PathBuf>, Error> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("stockade-net-{}-{nanos:08x}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|source| Error::NetworkDir { path: dir.clone(), source })?;
    Ok(Some(dir))
}

#[cfg(not(target_os = "linux"))]
fn private_dir() -> Result<Option<PathBuf>, Error> {
    Ok(None)
}
