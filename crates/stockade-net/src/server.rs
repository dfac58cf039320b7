//! Serving one client connection: protocol detection, the decision, the upstream connection
//! and the relay. Everything a client can influence is bounded by [`Limits`].
//!
//! Protocol detection reads one byte: `0x05` is a SOCKS5 greeting, anything else is the first
//! byte of an HTTP method. One listener (unix socket or loopback port) therefore serves
//! `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY=socks5h://` alike.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use stockade_policy::HostRule;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};

use crate::decision::{Lookup, Refusal, Rules};
use crate::hostname::Host;
use crate::http::{self, ProxyRequest, RequestError};
use crate::limits::Limits;
use crate::log::{EventLog, Withheld};
use crate::relay::{relay, BufferBudget, BufferSizes, Counters};
use crate::resolve::Resolve;
use crate::socks5::{self, Reply, Request};

/// What every connection task shares.
pub(crate) struct Shared {
    pub(crate) rules: Rules,
    pub(crate) limits: Limits,
    pub(crate) resolver: Arc<dyn Resolve>,
    pub(crate) log: EventLog,
    /// Relay memory beyond the tunnels' starting buffers ([`Limits::buffer_budget`]).
    pub(crate) buffers: BufferBudget,
    /// One permit per resolver thread that may exist at once ([`Limits::max_lookups`]).
    pub(crate) lookups: Arc<Semaphore>,
    /// Lookups whose client gave up while their thread still runs (see [`resolve`]).
    pub(crate) overdue: Arc<AtomicUsize>,
}

/// A byte stream from a client (TCP or unix socket).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sized {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + Sized> Stream for S {}

/// Serves one client until its tunnel ends.
pub(crate) async fn serve<S: Stream>(sh: Arc<Shared>, mut s: S) {
    let deadline = Instant::now() + sh.limits.handshake_timeout;
    let first = match timeout_at(deadline, s.read_u8()).await {
        Ok(Ok(b)) => b,
        _ => return,
    };
    if first == socks5::VERSION {
        serve_socks(&sh, s, deadline).await;
    } else {
        serve_http(&sh, s, first, deadline).await;
    }
}

async fn serve_socks<S: Stream>(sh: &Shared, mut s: S, deadline: Instant) {
    let req = match timeout_at(deadline, socks5::read_request(&mut s)).await {
        Ok(Ok(Some(r))) => r,
        _ => return,
    };
    let (host, port) = match req {
        Request::Connect(h, p) => (h, p),
        Request::Unsupported(code) => {
            let _ = s.write_all(&socks5::reply(code, None)).await;
            return;
        }
        Request::BadHost(raw, port, e) => {
            deny(sh, &raw, port, &Refusal::InvalidHost(e.reason()), None);
            let _ = s.write_all(&socks5::reply(Reply::NotAllowed, None)).await;
            return;
        }
    };
    match open(sh, &host, port).await {
        Ok(tunnel) => {
            // The bound address is left out (zeros): it is the host's own outbound address,
            // which the sandbox has no need to learn, and clients do not use it for CONNECT.
            if s.write_all(&socks5::reply(Reply::Succeeded, None)).await.is_err() {
                return;
            }
            tunnel.run(sh, s, 0).await;
        }
        Err(e) => {
            let code = match &e {
                OpenError::Denied(_) => Reply::NotAllowed,
                OpenError::Resolve(_) | OpenError::Timeout => Reply::HostUnreachable,
                OpenError::ResolverBusy(_) => Reply::GeneralFailure,
                OpenError::Connect(io) => Reply::for_io_error(io),
            };
            let _ = s.write_all(&socks5::reply(code, None)).await;
        }
    }
}

async fn serve_http<S: Stream>(sh: &Shared, mut s: S, first: u8, deadline: Instant) {
    let max = sh.limits.max_header_bytes;
    let mut buf = Vec::with_capacity(1024);
    buf.push(first);
    let mut chunk = vec![0u8; 4096];
    let end = loop {
        if let Some(end) = http::head_end(&buf) {
            break end;
        }
        if buf.len() >= max {
            let _ =
                s.write_all(&http::response(431, "Request Header Fields Too Large", "request head too large")).await;
            return;
        }
        let want = chunk.len().min(max - buf.len());
        match timeout_at(deadline, s.read(&mut chunk[..want])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {
                let _ = s.write_all(&http::response(408, "Request Timeout", "request head not received in time")).await;
                return;
            }
        }
    };
    let parsed =
        http::parse_head(&buf[..end], sh.limits.max_headers).map_err(|e| RequestError::Unsupported(e.reason()));
    let req = match parsed.and_then(|head| http::interpret(&head)) {
        Ok(r) => r,
        Err(RequestError::Unsupported(why)) => {
            let _ = s.write_all(&http::response(400, "Bad Request", why)).await;
            return;
        }
        Err(RequestError::BadTarget(raw, e)) => {
            let msg = deny(sh, &raw.escape_debug().to_string(), 0, &Refusal::InvalidHost(e.reason()), None);
            let _ = s.write_all(&http::response(400, "Bad Request", &msg)).await;
            return;
        }
        Err(RequestError::HostMismatch { host, port }) => {
            let why = Refusal::InvalidHost("the Host header does not match the request target");
            let msg = deny(sh, &host.to_string(), port, &why, None);
            let _ = s.write_all(&http::response(403, "Forbidden", &msg)).await;
            return;
        }
    };
    let (host, port, upstream_head) = match req {
        ProxyRequest::Connect { host, port } => (host, port, None),
        ProxyRequest::Forward { host, port, upstream_head } => (host, port, Some(upstream_head)),
    };
    match open(sh, &host, port).await {
        Ok(mut tunnel) => {
            let mut first_bytes = Vec::new();
            match upstream_head {
                None => {
                    if s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
                        return;
                    }
                }
                Some(h) => first_bytes = h,
            }
            first_bytes.extend_from_slice(&buf[end..]);
            if tunnel.stream.write_all(&first_bytes).await.is_err() {
                return;
            }
            let sent = first_bytes.len() as u64;
            // The head's buffers are not needed for the tunnel's lifetime.
            drop((first_bytes, buf, chunk));
            tunnel.run(sh, s, sent).await;
        }
        Err(OpenError::Denied(msg)) => {
            let _ = s.write_all(&http::response(403, "Forbidden", &msg)).await;
        }
        Err(OpenError::ResolverBusy(msg)) => {
            let _ = s.write_all(&http::response(503, "Service Unavailable", &msg)).await;
        }
        Err(OpenError::Timeout) => {
            let _ =
                s.write_all(&http::response(504, "Gateway Timeout", "connecting to the destination timed out")).await;
        }
        Err(OpenError::Resolve(e)) | Err(OpenError::Connect(e)) => {
            let _ =
                s.write_all(&http::response(502, "Bad Gateway", &format!("cannot reach the destination: {e}"))).await;
        }
    }
}

/// Logs a refusal and returns the stderr-style message (also sent to HTTP clients).
fn deny(sh: &Shared, host: &str, port: u16, why: &Refusal, named: Option<&Host>) -> String {
    let suggestion = match (why, named) {
        (Refusal::NoRule | Refusal::MetadataName, Some(h)) => Some(h.with_port(port)),
        (Refusal::SpecialAddress { ip, .. }, _) => Some(Host::Ip(*ip).with_port(port)),
        _ => None,
    };
    let rule = why.rule().map(HostRule::to_string);
    sh.log.denied(host, port, rule, why.reason(), suggestion, None)
}

/// Logs the refusal of every address that the proxy's lookup of an allowed name returned, and
/// returns the message for the client. The client asked for a name, so it (and the JSON-lines
/// file and stderr line, which a sandboxed command may read) learns only the class of reason
/// ([`Refusal::reason_after_lookup`]); the address, the IP deny rule naming it (so the event's
/// `rule` stays empty) and the rule that would allow it go only to the supervisor's report.
fn deny_after_lookup(sh: &Shared, name: &str, port: u16, why: &Refusal) -> String {
    let suggestion = match why {
        Refusal::SpecialAddress { ip, .. } => Some(Host::Ip(*ip).with_port(port)),
        _ => None,
    };
    let withheld = Withheld { reason: why.reason(), suggestion };
    sh.log.denied(name, port, None, why.reason_after_lookup(), None, Some(withheld))
}

enum OpenError {
    /// Refused by policy; already logged. Carries the message.
    Denied(String),
    Resolve(std::io::Error),
    Connect(std::io::Error),
    Timeout,
    /// Every resolver thread was busy until the deadline. Carries the message.
    ResolverBusy(String),
}

/// An open upstream connection; logs itself as an allowed event when dropped, so a tunnel cut
/// short by shutdown is still in the log with the bytes it moved.
struct Tunnel {
    stream: TcpStream,
    counters: Arc<Counters>,
    _guard: LogOnDrop,
}

struct LogOnDrop {
    log: EventLog,
    host: String,
    port: u16,
    rule: String,
    counters: Arc<Counters>,
}

impl Drop for LogOnDrop {
    fn drop(&mut self) {
        let (out, inn) = (self.counters.out.load(Ordering::Relaxed), self.counters.inn.load(Ordering::Relaxed));
        self.log.allowed(&self.host, self.port, std::mem::take(&mut self.rule), out, inn);
    }
}

impl Tunnel {
    async fn run<S: Stream>(self, sh: &Shared, client: S, already_sent: u64) {
        self.counters.out.fetch_add(already_sent, Ordering::Relaxed);
        let sizes = BufferSizes { start: sh.limits.buffer_size, max: sh.limits.max_buffer_size };
        relay(client, self.stream, &self.counters, (sizes, &sh.buffers), sh.limits.idle_timeout).await;
    }
}

/// Decides, resolves (only if allowed), checks every address and connects to one of them.
async fn open(sh: &Shared, host: &Host, port: u16) -> Result<Tunnel, OpenError> {
    let name = host.to_string();
    let (rule, lookup) = match sh.rules.check_host(host, port) {
        Ok(x) => x,
        Err(why) => return Err(OpenError::Denied(deny(sh, &name, port, &why, Some(host)))),
    };
    let deadline = Instant::now() + sh.limits.connect_timeout;
    // An allowed destination that cannot be reached is still an allowed decision in the log.
    let failed = |e: OpenError| {
        if !matches!(e, OpenError::Denied(_)) {
            sh.log.allowed(&name, port, rule.to_string(), 0, 0);
        }
        e
    };
    let looked_up = matches!(lookup, Lookup::Dns(_));
    let candidates: Vec<IpAddr> = match lookup {
        Lookup::Literal(ip) => vec![ip],
        Lookup::Loopback => vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)],
        Lookup::Dns(n) => resolve(sh, n, deadline).await.map_err(failed)?,
    };
    let mut allowed: Vec<IpAddr> = Vec::new();
    let mut first_refusal = None;
    for ip in candidates {
        let ip = crate::hostname::canonical(ip);
        match sh.rules.check_addr_for(ip, port, &rule) {
            Ok(()) if !allowed.contains(&ip) => allowed.push(ip),
            Ok(()) => {}
            Err(why) => first_refusal = first_refusal.or(Some(why)),
        }
    }
    if allowed.is_empty() {
        return Err(match first_refusal {
            Some(why) if looked_up => OpenError::Denied(deny_after_lookup(sh, &name, port, &why)),
            Some(why) => OpenError::Denied(deny(sh, &name, port, &why, Some(host))),
            None => failed(OpenError::Resolve(std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"))),
        });
    }
    let mut last = None;
    for ip in allowed {
        match timeout_at(deadline, TcpStream::connect(SocketAddr::new(ip, port))).await {
            Err(_) => return Err(failed(OpenError::Timeout)),
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let counters = Arc::new(Counters::new());
                let guard = LogOnDrop {
                    log: sh.log.clone(),
                    host: name.clone(),
                    port,
                    rule: rule.to_string(),
                    counters: counters.clone(),
                };
                return Ok(Tunnel { stream, counters, _guard: guard });
            }
            Ok(Err(e)) => last = Some(e),
        }
    }
    Err(failed(OpenError::Connect(last.unwrap_or_else(|| std::io::Error::other("no address to connect to")))))
}

/// Resolves `name` on a blocking thread, with at most [`Limits::max_lookups`] such threads at once.
///
/// `getaddrinfo` cannot be cancelled: a lookup that outlives its deadline keeps its thread until
/// the system resolver gives up, which for an unanswered name can take half a minute. So the
/// slot (a semaphore permit) moves into the thread and is given back only when the lookup really
/// ends, not when the client stops waiting; otherwise a sandboxed command asking for slow names
/// over and over would pile up threads in the supervisor, outside the sandbox's own limits. A
/// lookup that finds every slot taken waits for one until its own deadline, then is refused;
/// at once when every slot is held by a lookup whose client already gave up (those end only
/// when the system resolver does, so waiting would only make each new client wait its whole
/// deadline for nothing).
async fn resolve(sh: &Shared, name: String, deadline: Instant) -> Result<Vec<IpAddr>, OpenError> {
    let busy = || {
        OpenError::ResolverBusy(format!(
            "stockade: cannot look up {name}: all {} resolver threads are still busy with earlier lookups \
             (slow or unanswered names); try again later",
            sh.limits.lookup_slots()
        ))
    };
    if sh.lookups.available_permits() == 0 && sh.overdue.load(Ordering::SeqCst) >= sh.limits.lookup_slots() {
        return Err(busy());
    }
    let slot = match timeout_at(deadline, Arc::clone(&sh.lookups).acquire_owned()).await {
        Ok(Ok(slot)) => slot,
        // The wait timed out (the semaphore is never closed).
        _ => return Err(busy()),
    };
    // RUNNING, then ABANDONED when the client gives up first, DONE when the thread ends; each
    // side counts itself in or out of `overdue` so that the count never goes below zero.
    const RUNNING: u8 = 0;
    const ABANDONED: u8 = 1;
    const DONE: u8 = 2;
    let state = Arc::new(AtomicU8::new(RUNNING));
    let (resolver, thread_state, overdue) = (Arc::clone(&sh.resolver), Arc::clone(&state), Arc::clone(&sh.overdue));
    let job = tokio::task::spawn_blocking(move || {
        let answer = resolver.resolve(&name);
        if thread_state.swap(DONE, Ordering::SeqCst) == ABANDONED {
            overdue.fetch_sub(1, Ordering::SeqCst);
        }
        drop(slot);
        answer
    });
    match timeout_at(deadline, job).await {
        Err(_) => {
            sh.overdue.fetch_add(1, Ordering::SeqCst);
            if state.compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                // The thread ended meanwhile and did not count itself out.
                sh.overdue.fetch_sub(1, Ordering::SeqCst);
            }
            Err(OpenError::Timeout)
        }
        // A panic's message is not for the client.
        Ok(Err(_join)) => Err(OpenError::Resolve(std::io::Error::other("the name lookup failed"))),
        Ok(Ok(answer)) => answer.map_err(OpenError::Resolve),
    }
}
