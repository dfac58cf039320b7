//! Starting and stopping the proxy: listeners, the background runtime, the handle.
//!
//! The supervisor is synchronous, so the proxy owns a single-threaded tokio runtime on its own
//! thread. Listeners are bound before [`Proxy::start`] returns, so a bad address or an existing
//! socket path is reported to the caller immediately and a client may connect as soon as the
//! call returns.

use std::fs::OpenOptions;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use stockade_policy::{Denial, NetworkEvent};
use tokio::sync::{oneshot, Semaphore};

use crate::decision::Rules;
use crate::error::Error;
use crate::limits::Limits;
use crate::log::{EventLog, Notice, NoticeFn};
use crate::relay::BufferBudget;
use crate::resolve::{Resolve, SystemResolver};
use crate::server::{serve, Shared, Stream};

/// Everything [`Proxy::start`] needs.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The allow and deny rules.
    pub rules: Rules,
    /// A unix socket path to listen on: the bridge into a Linux sandbox. The path must not
    /// exist yet; it is removed again at shutdown.
    pub listen_unix: Option<PathBuf>,
    /// A loopback TCP address to listen on (port 0 picks a free one): for macOS, Windows and
    /// tests. Non-loopback addresses are refused, so the proxy is never an open relay.
    pub listen_tcp: Option<SocketAddr>,
    /// Resource limits.
    pub limits: Limits,
    /// Name resolution; [`SystemResolver`] unless a test substitutes a fake.
    pub resolver: Arc<dyn Resolve>,
    /// Append every event as a JSON line to this file (`--net-log FILE`).
    pub log_file: Option<PathBuf>,
    /// Called for each denial (on the proxy thread), e.g. to print [`Notice::message`].
    pub on_denial: Option<NoticeFn>,
}

impl ProxyConfig {
    /// A configuration with default limits, the system resolver, no listener yet and no log file.
    pub fn new(rules: Rules) -> Self {
        ProxyConfig {
            rules,
            listen_unix: None,
            listen_tcp: None,
            limits: Limits::default(),
            resolver: Arc::new(SystemResolver),
            log_file: None,
            on_denial: None,
        }
    }
}

/// The proxy; see [`Proxy::start`].
#[derive(Debug)]
pub struct Proxy;

/// A running proxy. Dropping it shuts the proxy down (like [`ProxyHandle::shutdown`]).
pub struct ProxyHandle {
    tcp_addr: Option<SocketAddr>,
    unix_path: Option<PathBuf>,
    adopt: tokio::sync::mpsc::UnboundedSender<std::net::TcpListener>,
    log: EventLog,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Gives listeners to a running proxy; see [`ProxyHandle::adopt_listener`].
#[derive(Clone, Debug)]
pub struct Adopter(tokio::sync::mpsc::UnboundedSender<std::net::TcpListener>);

impl Adopter {
    /// Serves connections accepted on `listener` until the proxy shuts down.
    pub fn adopt(&self, listener: std::net::TcpListener) -> Result<(), Error> {
        listener.set_nonblocking(true).map_err(|source| Error::Adopt { source })?;
        self.0.send(listener).map_err(|_| Error::Adopt { source: std::io::Error::other("the proxy has stopped") })
    }
}

/// What a run's proxy decided, collected at shutdown for the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLog {
    /// Every decision, allowed and denied, in order.
    pub events: Vec<NetworkEvent>,
    /// The denials with their messages.
    pub notices: Vec<Notice>,
    /// Events not kept in memory because of [`Limits::max_events`].
    pub dropped_events: u64,
}

impl RunLog {
    /// The denials as the facade's [`Denial`] records (layer `proxy`).
    pub fn denials(&self) -> Vec<Denial> {
        self.notices.iter().map(Notice::denial).collect()
    }
}

impl Proxy {
    /// Binds the listeners and starts serving on a background thread.
    pub fn start(config: ProxyConfig) -> Result<ProxyHandle, Error> {
        if config.listen_unix.is_none() && config.listen_tcp.is_none() {
            return Err(Error::NoListener);
        }
        let file = match &config.log_file {
            Some(path) => {
                let mut options = OpenOptions::new();
                options.create(true).append(true);
                // The log often lives in the workspace, which earlier sandboxed commands could
                // write: never follow a symlink planted at its name (THREATS.md F4), and do not
                // wait on a FIFO planted there (opening one for writing blocks until a reader
                // comes, which would hang the run before its command starts).
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::custom_flags(
                    &mut options,
                    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
                );
                let open_err = |source| Error::OpenLog { path: path.clone(), source };
                let file = options.open(path).map_err(open_err)?;
                if !file.metadata().map_err(open_err)?.is_file() {
                    return Err(open_err(io::Error::other(
                        "not a regular file (a FIFO, device or socket); name a new or regular file",
                    )));
                }
                #[cfg(unix)]
                rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::APPEND).map_err(|e| open_err(e.into()))?;
                Some(file)
            }
            None => None,
        };
        let log = EventLog::new(config.limits.max_events, file, config.on_denial.clone());
        let (tcp, tcp_addr) = match config.listen_tcp {
            Some(addr) => {
                let l = bind_tcp(addr)?;
                let bound = l.local_addr().map_err(|source| Error::BindTcp { addr, source })?;
                (Some(l), Some(bound))
            }
            None => (None, None),
        };
        let unix = match &config.listen_unix {
            Some(path) => Some(unix::bind(path)?),
            None => None,
        };
        // Name lookups are the only blocking work; with as many blocking threads as lookup slots,
        // the thread count stays bounded even in the moment a finished lookup's thread is not
        // yet idle again (the next lookup then waits in tokio's queue, within its deadline).
        let lookup_slots = config.limits.lookup_slots();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(lookup_slots)
            .enable_io()
            .enable_time()
            .build()
            .map_err(|source| Error::StartRuntime { source })?;
        let shared = Arc::new(Shared {
            rules: config.rules.clone(),
            limits: config.limits.clone(),
            resolver: config.resolver.clone(),
            log: log.clone(),
            buffers: BufferBudget::new(config.limits.buffer_budget),
            lookups: Arc::new(Semaphore::new(lookup_slots)),
            overdue: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        });
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let (adopt_tx, mut adopt_rx) = tokio::sync::mpsc::unbounded_channel::<std::net::TcpListener>();
        let thread = std::thread::Builder::new()
            .name("stockade-proxy".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let slots = Arc::new(Semaphore::new(shared.limits.max_connections));
                    // Registration only fails if the runtime has no I/O driver, which it has.
                    if let Some(Ok(l)) = tcp.map(tokio::net::TcpListener::from_std) {
                        tokio::spawn(accept_tcp(l, shared.clone(), slots.clone()));
                    }
                    if let Some(l) = unix {
                        unix::spawn_accept(l, shared.clone(), slots.clone());
                    }
                    loop {
                        tokio::select! {
                            _ = &mut stop_rx => break,
                            adopted = adopt_rx.recv() => match adopted.map(tokio::net::TcpListener::from_std) {
                                Some(Ok(l)) => {
                                    tokio::spawn(accept_tcp(l, shared.clone(), slots.clone()));
                                }
                                Some(Err(_)) => {}
                                None => {
                                    let _ = (&mut stop_rx).await;
                                    break;
                                }
                            },
                        }
                    }
                });
                // Dropping the tasks runs their log guards, so open tunnels are logged too.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|source| Error::StartRuntime { source })?;
        Ok(ProxyHandle {
            tcp_addr,
            unix_path: config.listen_unix,
            adopt: adopt_tx,
            log,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

fn bind_tcp(addr: SocketAddr) -> Result<std::net::TcpListener, Error> {
    if !addr.ip().is_loopback() {
        let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "the proxy listens on loopback only");
        return Err(Error::BindTcp { addr, source });
    }
    let l = std::net::TcpListener::bind(addr).map_err(|source| Error::BindTcp { addr, source })?;
    l.set_nonblocking(true).map_err(|source| Error::BindTcp { addr, source })?;
    Ok(l)
}

/// How long an accept loop waits after a failed `accept` (EMFILE and friends) instead of
/// spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves an accepted client if a connection slot is free; otherwise closes it at once.
fn admit<S: Stream + 'static>(stream: S, shared: &Arc<Shared>, slots: &Arc<Semaphore>) {
    let Ok(permit) = slots.clone().try_acquire_owned() else {
        return;
    };
    let sh = shared.clone();
    tokio::spawn(async move {
        serve(sh, stream).await;
        drop(permit);
    });
}

async fn accept_tcp(listener: tokio::net::TcpListener, shared: Arc<Shared>, slots: Arc<Semaphore>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        admit(stream, &shared, &slots);
    }
}

#[cfg(unix)]
mod unix {
    use super::*;

    pub(super) fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, Error> {
        let l = std::os::unix::net::UnixListener::bind(path)
            .map_err(|source| Error::BindUnix { path: path.to_owned(), source })?;
        l.set_nonblocking(true).map_err(|source| Error::BindUnix { path: path.to_owned(), source })?;
        Ok(l)
    }

    pub(super) fn spawn_accept(l: std::os::unix::net::UnixListener, shared: Arc<Shared>, slots: Arc<Semaphore>) {
        let Ok(listener) = tokio::net::UnixListener::from_std(l) else { return };
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                };
                // Downloads into the sandbox flow from here through this socket.
                #[cfg(target_os = "linux")]
                let _ = rustix::net::sockopt::set_socket_send_buffer_size(&stream, crate::bridge::UNIX_SEND_BUFFER);
                admit(stream, &shared, &slots);
            }
        });
    }
}

#[cfg(not(unix))]
mod unix {
    use super::*;

    /// Placeholder listener type: unix sockets are not offered on this platform.
    pub(super) enum Never {}

    pub(super) fn bind(_path: &Path) -> Result<Never, Error> {
        Err(Error::Unsupported { feature: "a unix-socket proxy listener", platform: std::env::consts::OS })
    }

    pub(super) fn spawn_accept(l: Never, _shared: Arc<Shared>, _slots: Arc<Semaphore>) {
        match l {}
    }
}

impl ProxyHandle {
    /// The loopback TCP address actually bound (with the real port when 0 was asked for).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The unix socket path, when listening on one.
    pub fn unix_path(&self) -> Option<&Path> {
        self.unix_path.as_deref()
    }

    /// A snapshot of the events so far (allowed connections appear when they end).
    pub fn events(&self) -> Vec<NetworkEvent> {
        self.log.events()
    }

    /// A snapshot of the denials so far, with their messages.
    pub fn notices(&self) -> Vec<Notice> {
        self.log.notices()
    }

    /// Serves connections accepted on `listener` too, from now until shutdown.
    ///
    /// This is how the Linux sandbox's bridge avoids a relay hop: its pid 1 creates a listener
    /// inside the sandbox's private network namespace and the supervisor hands it here, so the
    /// command's connections reach the proxy directly. The listener is the caller's choice;
    /// only give it one that only the sandboxed command can reach.
    pub fn adopt_listener(&self, listener: std::net::TcpListener) -> Result<(), Error> {
        self.adopter().adopt(listener)
    }

    /// A cloneable handle for [`ProxyHandle::adopt_listener`], for code that does not own the
    /// proxy (a backend's supervisor thread).
    pub fn adopter(&self) -> Adopter {
        Adopter(self.adopt.clone())
    }

    /// Stops accepting, closes open tunnels (logging them with their byte counts), removes the
    /// unix socket, and returns the complete log of the run.
    pub fn shutdown(mut self) -> RunLog {
        self.stop_now();
        RunLog { events: self.log.events(), notices: self.log.notices(), dropped_events: self.log.dropped() }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
        self.log.flush();
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}
