//! # stockade-net: the network allowlist proxy
//!
//! When a policy's network mode is `allow`, a sandboxed command may reach exactly the hosts its
//! rules name and nothing else. The kernel layers (a private network namespace on Linux, the
//! Seatbelt profile on macOS, firewall rules on Windows) leave one way out: this proxy, running
//! in the supervisor. It speaks HTTP (absolute-form requests for plain HTTP, `CONNECT` for TLS
//! and any TCP) and SOCKS5 on the same listener, decides every connection against the rules,
//! and logs each decision.
//!
//! ## Terminology
//!
//! - **rule**: a [`HostRule`](stockade_policy::HostRule) from the policy (`github.com`,
//!   `*.npmjs.org`, `github.com:22`, `127.0.0.1:8080`); without a port it covers 80 and 443.
//! - **decision**: deny rules first (deny wins), then allow rules, on a strictly validated
//!   host ([`hostname`]); then, after the proxy's own lookup, on every address ([`decision`]).
//! - **special address**: loopback, link-local (cloud metadata), private, CGNAT, unspecified,
//!   broadcast, multicast, reserved; reachable only through a rule naming that IP.
//! - **bridge**: on Linux, a TCP listener on the sandbox's own loopback, made by the sandbox's
//!   pid 1 and handed to the supervisor outside, which serves it: the proxy adopts it, or
//!   [`bridge::serve_forwarder`] relays each connection to the proxy's unix socket.
//!
//! ## Modules
//!
//! [`hostname`] (pure validation), [`decision`] (pure rule evaluation), [`http`] and [`socks5`]
//! (protocol parsing), `relay` (bounded copying), `server` (one connection), [`log`] (decision
//! log), [`limits`], `proxy` ([`Proxy::start`] and [`ProxyHandle`]), [`bridge`] (unix only) and
//! [`env`](mod@env) ([`proxy_env`]).
//!
//! ## Platform notes
//!
//! The proxy itself is portable (tokio). The unix-socket listener and the forwarder exist on
//! Unix only; on Windows `listen_unix` yields [`Error::Unsupported`] and the proxy listens on a
//! loopback TCP port, which the firewall rules make the sandbox's only destination.
//!
//! ## Example
//!
//! ```
//! use stockade_net::{proxy_env, Proxy, ProxyConfig, Rules};
//!
//! let rules = Rules::new(["github.com".parse().unwrap()], ["gist.github.com".parse().unwrap()]);
//! let mut config = ProxyConfig::new(rules);
//! config.listen_tcp = Some("127.0.0.1:0".parse().unwrap());
//! config.on_denial = Some(std::sync::Arc::new(|n: &stockade_net::log::Notice| eprintln!("{}", n.message)));
//! let proxy = Proxy::start(config).unwrap();
//! let port = proxy.tcp_addr().unwrap().port();
//! let env = proxy_env(port); // give these to the command
//! assert!(env.iter().any(|(k, _)| k == "HTTPS_PROXY"));
//! let run = proxy.shutdown();
//! assert!(run.events.is_empty());
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[cfg(unix)]
pub mod bridge;
pub mod decision;
pub mod env;
mod error;
pub mod hostname;
pub mod http;
pub mod limits;
pub mod log;
mod proxy;
mod relay;
pub mod resolve;
mod server;
pub mod socks5;

pub use decision::Rules;
pub use env::proxy_env;
pub use error::Error;
pub use limits::Limits;
pub use proxy::{Adopter, Proxy, ProxyConfig, ProxyHandle, RunLog};
pub use resolve::{Resolve, SystemResolver};
