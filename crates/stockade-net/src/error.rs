//! The crate's one error type.
//!
//! Only operations that the *supervisor* asked for fail with [`Error`]: starting the proxy,
//! binding its listeners, running the in-sandbox forwarder. A refused or broken client
//! connection is not an error of the proxy; it becomes a [`NetworkEvent`](stockade_policy::NetworkEvent)
//! in the decision log instead.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a proxy or forwarder operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding the loopback TCP listener failed (port in use, address not local).
    #[error("cannot listen on tcp address {addr}")]
    BindTcp {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Binding the unix-socket listener (the bridge into the sandbox) failed.
    #[error("cannot listen on unix socket `{}`", path.display())]
    BindUnix {
        /// The socket path asked for.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The configuration asked for a listener kind this platform does not have.
    #[error("{feature} is not supported on {platform}")]
    Unsupported {
        /// What was asked for.
        feature: &'static str,
        /// The platform it is missing on.
        platform: &'static str,
    },
    /// [`ProxyConfig`](crate::ProxyConfig) names no listener at all, so nothing could connect.
    #[error("the proxy configuration names no listener (neither a unix socket nor a tcp address)")]
    NoListener,
    /// A listener could not be handed to the running proxy.
    #[error("cannot hand a listener to the proxy")]
    Adopt {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Creating the proxy's background runtime or thread failed.
    #[error("cannot start the proxy runtime")]
    StartRuntime {
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Opening the JSON-lines decision log file failed.
    #[error("cannot open network log `{}`", path.display())]
    OpenLog {
        /// The log path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The in-sandbox forwarder could not accept on its TCP listener.
    #[error("the forwarder cannot accept connections")]
    ForwarderAccept {
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// A stable snake_case code for `--json` output and tests (messages may change, codes do not).
    pub fn code(&self) -> &'static str {
        match self {
            Error::BindTcp { .. } => "net_bind_tcp",
            Error::BindUnix { .. } => "net_bind_unix",
            Error::Unsupported { .. } => "net_unsupported",
            Error::NoListener => "net_no_listener",
            Error::Adopt { .. } => "net_adopt_listener",
            Error::StartRuntime { .. } => "net_start_runtime",
            Error::OpenLog { .. } => "net_open_log",
            Error::ForwarderAccept { .. } => "net_forwarder_accept",
        }
    }
}
