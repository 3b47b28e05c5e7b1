//! The optional built-in HTTP endpoint: `GET /metrics` (every pool of the process, Prometheus
//! text format) and `GET /health` (the health of every pool, JSON; status 503 when one is
//! unhealthy). Off by default; started by [`serve`], by `redpool_metrics_serve` in C, or by the
//! `REDPOOL_METRICS_ADDR` environment variable when the first pool is created for a user (by the
//! registry: a shared pool, or a dedicated one from the C API, Python or Node; a Rust
//! `Pool::new` does not read it).
//!
//! It has no authentication, so it is built to be safe on a shared machine:
//! - It listens on a loopback address only (127.0.0.1 or ::1), and answers only requests whose
//!   `Host` header names the loopback (`localhost`, an IPv4 loopback address such as `127.0.0.1`,
//!   or `[::1]`, with or without a port; a request without `Host`, as HTTP/1.0 allows, too).
//!   Any other `Host` gets 403: a web page open in a local browser cannot read the endpoint
//!   through DNS rebinding (the browser sends the attacker's host name).
//! - Every request has one deadline, [`REQUEST_DEADLINE`] after it was accepted, for reading the
//!   request and writing the answer together: a client that sends its request a byte at a time,
//!   or does not read the answer, is cut off then.
//! - One thread serves every connection with `poll()` on non-blocking sockets, so a slow client
//!   holds no thread; at most [`MAX_CONNECTIONS`] are open at once, and a new one closes the
//!   oldest connection still sending its request (a real scraper sends its request at once).
//! - `GET /health` answers from each pool's latest health report (the background check run every
//!   `health_report_interval`, or the latest explicit `health()`), with its age: it opens no
//!   connection. `GET /health?live=1` checks every pool now (PING + INFO on one of its
//!   connections), and so does a plain `/health` for a pool that has no report yet. A live check
//!   of a pool is shared by every request that asks for one while it runs (so at most one
//!   connection per pool), and a request waits for it until [`WRITE_RESERVE`] before its
//!   deadline; a pool whose check has not finished by then is reported unhealthy.
//! - A failing `accept()` (EMFILE, ENFILE, ENOBUFS...) pauses accepting for 10 ms, doubling up
//!   to 1 s while it keeps failing, instead of spinning.
//! - The endpoint does not survive into a `fork()`ed child: the child inherits neither its
//!   sockets (closed there at once, so the parent's port is its own) nor its running state; a
//!   child that wants an endpoint calls [`serve`] again.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Once, mpsc};
use std::time::{Duration, Instant};

use crate::sync::{HeldLock, Mutex};
use once_cell::sync::Lazy;

use crate::error::{Error, ErrorKind, Result};
use crate::fork::{self, ForkGuarded};
use crate::health::{HealthReport, HealthStatus, json_string};
use crate::pool::Pool;
use crate::prometheus::{self, CONTENT_TYPE};

/// The environment variable that starts the endpoint with the first pool (`127.0.0.1:9464`).
pub const ADDR_ENV: &str = "REDPOOL_METRICS_ADDR";

/// The whole life of one request, from its accept: reading it and writing the answer.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// How long before its deadline a request waiting for live health checks is answered with what
/// is known, leaving that time to write the answer.
pub const WRITE_RESERVE: Duration = Duration::from_secs(1);
/// Connections open at once; a new one closes the oldest one still sending its request.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest request head read.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// The first pause after a failed `accept()`; it doubles while accepting keeps failing.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest pause after a failed `accept()`.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often requests waiting for live health checks look at them.
const WAITING_POLL: Duration = Duration::from_millis(10);
/// How long `stop()` waits for the serving thread to close the port.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// The running endpoint, if any.
static RUNNING: Mutex<Option<Endpoint>> = Mutex::new(None);
/// Live health checks in progress, one per pool at most.
static FLIGHTS: Mutex<Vec<(Pool, Arc<Flight>)>> = Mutex::new(Vec::new());
/// The address `stop()` last closed (see [`bind_listener`]).
static LAST_STOPPED: Mutex<Option<SocketAddr>> = Mutex::new(None);
/// Every socket the endpoint holds (listeners, wake-up pairs, clients), so a forked child can
/// close its copies. Opened and closed only under this lock (see [`Tracked`]).
static SOCKETS: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

struct Endpoint {
    addr: SocketAddr,
    /// Closing it tells the serving thread to close the port.
    wake: Tracked<UnixStream>,
    /// Signalled by the serving thread once the port is closed.
    closed: mpsc::Receiver<()>,
}

/// Starts the endpoint on `addr` (`"127.0.0.1:9464"`, port 0 for any free port) and returns the
/// address it listens on. Only loopback addresses are accepted. If it already runs, returns its
/// address when `addr` matches it (or asks for port 0), and fails otherwise.
pub fn serve(addr: &str) -> Result<SocketAddr> {
    let wanted: SocketAddr = addr.trim().parse().map_err(|_| {
        Error::invalid(
            "metrics address",
            format!("{addr:?}"),
            "must be a loopback ip:port such as 127.0.0.1:9464 or [::1]:9464",
        )
    })?;
    if !wanted.ip().is_loopback() {
        return Err(Error::invalid(
            "metrics address",
            format!("{addr:?}"),
            "must be a loopback address (127.0.0.1 or ::1): the endpoint has no authentication",
        ));
    }
    install_fork_hook();
    let mut running = RUNNING.lock();
    if let Some(endpoint) = running.as_ref() {
        if wanted == endpoint.addr || (wanted.port() == 0 && wanted.ip() == endpoint.addr.ip()) {
            return Ok(endpoint.addr);
        }
        return Err(Error::invalid(
            "metrics address",
            format!("{addr:?}"),
            &format!(
                "the endpoint already listens on {}; stop it first",
                endpoint.addr
            ),
        ));
    }
    let failed = |what: &str, e: io::Error| {
        Error::new(
            ErrorKind::Connection,
            format!("cannot {what} for metrics on {wanted}: {e}"),
        )
    };
    let listener = bind_listener(wanted).map_err(|e| failed("listen", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| failed("listen", e))?;
    let bound = listener.local_addr().map_err(|e| failed("listen", e))?;
    let (wake, wake_rx) = Tracked::pair().map_err(|e| failed("start", e))?;
    let (closed_tx, closed) = mpsc::channel();
    let server = Server {
        listener: Some(listener),
        wake: wake_rx,
        closed: Some(closed_tx),
        conns: Vec::new(),
        paused_until: None,
        backoff: ACCEPT_BACKOFF_MIN,
    };
    std::thread::Builder::new()
        .name("redpool-metrics".into())
        .spawn(move || server.run())
        .map_err(|e| failed("start a thread", e))?;
    *running = Some(Endpoint {
        addr: bound,
        wake,
        closed,
    });
    Ok(bound)
}

/// Binds the endpoint's port. The port `stop()` last closed may still be held for a moment by a
/// child process that another thread forked before the close and has not yet exec'd (it holds
/// copies of every descriptor until then): binding that address is tried again, every 5 ms for
/// up to [`STOP_WAIT`], so that it can be served again at once, as `stop()` promises.
fn bind_listener(wanted: SocketAddr) -> io::Result<Tracked<TcpListener>> {
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        match Tracked::open(|| TcpListener::bind(wanted)) {
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse
                    && *LAST_STOPPED.lock() == Some(wanted)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            bound => return bound,
        }
    }
}

/// Stops the endpoint; false when it was not running. When it returns, the port is closed (the
/// same address can be served again at once); requests being answered finish on their own,
/// within their deadline.
pub fn stop() -> bool {
    let Some(endpoint) = RUNNING.lock().take() else {
        return false;
    };
    let Endpoint { addr, wake, closed } = endpoint;
    drop(wake);
    // Bounded: a thread that does not answer in time is left to end alone.
    let _ = closed.recv_timeout(STOP_WAIT);
    *LAST_STOPPED.lock() = Some(addr);
    true
}

/// Starts the endpoint from [`ADDR_ENV`] if it is set (once per process; called by the registry
/// when it creates a pool). A bad address is reported on stderr, never as a pool failure.
pub(crate) fn start_from_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Some(addr) = std::env::var(ADDR_ENV)
            .ok()
            .filter(|a| !a.trim().is_empty())
        {
            if let Err(err) = serve(&addr) {
                eprintln!("redpool: {ADDR_ENV}: {err}");
            }
        }
    });
}

// ----- sockets a forked child must not keep ------------------------------------------------

/// A socket recorded in [`SOCKETS`] from its creation to its close, both done under that lock
/// (which is held across `fork()`), so the list is exactly what a forked child inherits.
struct Tracked<T: AsRawFd>(Option<T>);

impl<T: AsRawFd> Tracked<T> {
    fn open(create: impl FnOnce() -> io::Result<T>) -> io::Result<Tracked<T>> {
        let mut sockets = SOCKETS.lock();
        let socket = create()?;
        sockets.push(socket.as_raw_fd());
        Ok(Tracked(Some(socket)))
    }
}

impl Tracked<UnixStream> {
    /// A connected pair (to wake the serving thread), non-blocking.
    fn pair() -> io::Result<(Tracked<UnixStream>, Tracked<UnixStream>)> {
        let mut sockets = SOCKETS.lock();
        let (a, b) = UnixStream::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        sockets.push(a.as_raw_fd());
        sockets.push(b.as_raw_fd());
        Ok((Tracked(Some(a)), Tracked(Some(b))))
    }
}

impl<T: AsRawFd> std::ops::Deref for Tracked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0
            .as_ref()
            .expect("a tracked socket is open until dropped")
    }
}

impl<T: AsRawFd> Drop for Tracked<T> {
    fn drop(&mut self) {
        if let Some(socket) = self.0.take() {
            let mut sockets = SOCKETS.lock();
            let fd = socket.as_raw_fd();
            sockets.retain(|open| *open != fd);
            drop(socket);
        }
    }
}

/// Holds the endpoint's locks across `fork()`; in the child, closes its sockets and forgets the
/// running endpoint and the live checks (their threads do not exist there).
struct ForkHook;

fn install_fork_hook() {
    static INSTALL: Once = Once::new();
    static HOOK: Lazy<Arc<dyn ForkGuarded>> = Lazy::new(|| Arc::new(ForkHook));
    INSTALL.call_once(|| fork::guard(Arc::downgrade(&HOOK)));
}

impl ForkGuarded for ForkHook {
    fn lock_for_fork(&self, held: &mut Vec<HeldLock>) {
        // The order every other path takes them in (none holds two but `serve`: RUNNING, SOCKETS).
        // SAFETY: statics.
        unsafe {
            held.push(RUNNING.hold_across_fork());
            held.push(FLIGHTS.hold_across_fork());
            held.push(SOCKETS.hold_across_fork());
        }
    }

    fn after_fork_in_child(&self) {
        // Only the forking thread exists here. Close the child's copies of the endpoint's sockets
        // (the parent's stay open: a descriptor is closed per process), and forget what the
        // parent's threads own without running any of its destructors.
        for fd in std::mem::take(&mut *SOCKETS.lock()) {
            // SAFETY: a descriptor the endpoint opened in the parent and this process inherited;
            // nothing in the child uses it (its owners' threads do not exist).
            unsafe { libc::close(fd) };
        }
        std::mem::forget(RUNNING.lock().take());
        std::mem::forget(std::mem::take(&mut *FLIGHTS.lock()));
    }
}

// ----- the serving thread --------------------------------------------------------------------

struct Server {
    /// None once `stop()` was called: no new connections.
    listener: Option<Tracked<TcpListener>>,
    /// Readable (EOF) when `stop()` closed its other end.
    wake: Tracked<UnixStream>,
    closed: Option<mpsc::Sender<()>>,
    conns: Vec<Conn>,
    /// While accepting fails, the time to try again.
    paused_until: Option<Instant>,
    backoff: Duration,
}

struct Conn {
    stream: Tracked<TcpStream>,
    accepted: Instant,
    deadline: Instant,
    phase: Phase,
}

enum Phase {
    /// Reading the request head.
    Reading(Vec<u8>),
    /// Waiting for live health checks.
    Waiting(Box<HealthRequest>),
    /// Writing the answer from `at`.
    Writing { bytes: Vec<u8>, at: usize },
    /// To be closed.
    Done,
}

impl Server {
    fn run(mut self) {
        while self.listener.is_some() || !self.conns.is_empty() {
            let now = Instant::now();
            let mut fds = Vec::with_capacity(self.conns.len() + 2);
            fds.push(pollfd(self.wake.as_raw_fd(), libc::POLLIN));
            let listening = match (&self.listener, self.paused_until) {
                (Some(listener), paused) if paused.is_none_or(|until| now >= until) => {
                    fds.push(pollfd(listener.as_raw_fd(), libc::POLLIN));
                    true
                }
                _ => false,
            };
            let first_conn = fds.len();
            for conn in &self.conns {
                let events = match conn.phase {
                    Phase::Reading(_) => libc::POLLIN,
                    Phase::Writing { .. } => libc::POLLOUT,
                    Phase::Waiting(_) | Phase::Done => 0,
                };
                fds.push(pollfd(conn.stream.as_raw_fd(), events));
            }
            let timeout = self.poll_timeout(now);
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if ready < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                // Cannot happen with valid arguments; never spin on it.
                std::thread::sleep(ACCEPT_BACKOFF_MIN);
            }
            let now = Instant::now();
            if fds[0].revents != 0 {
                self.on_wake();
            }
            for (conn, fd) in self.conns.iter_mut().zip(&fds[first_conn..]) {
                if fd.revents != 0 {
                    conn.on_ready(now);
                }
            }
            for conn in &mut self.conns {
                conn.on_time(now);
            }
            if listening && fds[1].revents != 0 {
                self.accept(now);
            }
            self.conns.retain(|conn| !matches!(conn.phase, Phase::Done));
        }
    }

    /// Until the next deadline (infinite when nothing is due: `stop()` wakes the thread).
    fn poll_timeout(&self, now: Instant) -> libc::c_int {
        let mut next: Option<Instant> = self.paused_until.filter(|_| self.listener.is_some());
        let mut consider = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        for conn in &self.conns {
            consider(conn.deadline);
            if let Phase::Waiting(request) = &conn.phase {
                consider(request.until.min(now + WAITING_POLL));
            }
        }
        match next {
            None => -1,
            Some(at) => {
                let wait = at.saturating_duration_since(now);
                // Rounded up, so the deadline has passed when poll returns.
                libc::c_int::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX)
            }
        }
    }

    /// `stop()` closed the other end of the wake-up pair: close the port now; connections being
    /// answered are finished (each within its deadline).
    fn on_wake(&mut self) {
        let mut byte = [0u8; 16];
        let ended = match (&*self.wake).read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        if ended && self.listener.is_some() {
            self.listener = None;
            if let Some(closed) = self.closed.take() {
                let _ = closed.send(());
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        let Some(listener) = &self.listener else {
            return;
        };
        for _ in 0..MAX_CONNECTIONS {
            match Tracked::open(|| listener.accept().map(|(stream, _)| stream)) {
                Ok(stream) => {
                    self.backoff = ACCEPT_BACKOFF_MIN;
                    self.paused_until = None;
                    if stream.set_nonblocking(true).is_ok() {
                        admit(&mut self.conns, stream, now);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(_) => {
                    // Out of descriptors or memory: the connection stays queued, and polling the
                    // listener would report it at once, forever. Pause instead.
                    self.paused_until = Some(now + self.backoff);
                    self.backoff = (self.backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    return;
                }
            }
        }
    }
}

/// Adds a new connection, closing the oldest one still sending its request when the limit is
/// reached (or refusing the new one with 503 when every open one is being answered).
fn admit(conns: &mut Vec<Conn>, stream: Tracked<TcpStream>, now: Instant) {
    let open = conns
        .iter()
        .filter(|c| !matches!(c.phase, Phase::Done))
        .count();
    if open >= MAX_CONNECTIONS {
        let oldest_reading = conns
            .iter_mut()
            .filter(|c| matches!(c.phase, Phase::Reading(_)))
            .min_by_key(|c| c.accepted);
        match oldest_reading {
            Some(oldest) => oldest.phase = Phase::Done,
            None => {
                let busy = response(
                    "503 Service Unavailable",
                    TEXT,
                    "busy: too many requests at once\n",
                    false,
                );
                let _ = (&*stream).write(&busy);
                return;
            }
        }
    }
    conns.push(Conn {
        stream,
        accepted: now,
        deadline: now + REQUEST_DEADLINE,
        phase: Phase::Reading(Vec::new()),
    });
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

impl Conn {
    /// The socket is ready (or failed): read the request, or write more of the answer.
    fn on_ready(&mut self, now: Instant) {
        let read = match &mut self.phase {
            Phase::Reading(head) => match read_head(&self.stream, head) {
                Ok(Some(end)) => Ok(Some(dispatch(&head[..end], self.deadline, now))),
                other => other.map(|_| None),
            },
            Phase::Writing { .. } => return self.write_some(),
            Phase::Waiting(_) | Phase::Done => return,
        };
        match read {
            Ok(Some(phase)) => {
                self.phase = phase;
                self.write_some();
            }
            Ok(None) => {}
            Err(HeadError::TooLarge) => self.answer(response(
                "431 Request Header Fields Too Large",
                TEXT,
                "request head too large\n",
                false,
            )),
            Err(HeadError::Closed) => self.phase = Phase::Done,
        }
    }

    /// Deadlines: the request's own, and the end of a wait for live health checks.
    fn on_time(&mut self, now: Instant) {
        if now >= self.deadline {
            if let Phase::Reading(_) = self.phase {
                // Best effort, never waited for: the client may not be reading at all.
                let timeout = response("408 Request Timeout", TEXT, "request timeout\n", false);
                let _ = (&*self.stream).write(&timeout);
            }
            self.phase = Phase::Done;
            return;
        }
        if let Phase::Waiting(request) = &self.phase {
            if request.ready() || now >= request.until {
                let answer = request.answer();
                self.answer(answer);
            }
        }
    }

    fn answer(&mut self, bytes: Vec<u8>) {
        self.phase = Phase::Writing { bytes, at: 0 };
        self.write_some();
    }

    /// Writes what the socket takes now; when all is written, ends the connection.
    fn write_some(&mut self) {
        let Phase::Writing { bytes, at } = &mut self.phase else {
            return;
        };
        while *at < bytes.len() {
            match (&*self.stream).write(&bytes[*at..]) {
                Ok(0) => {
                    self.phase = Phase::Done;
                    return;
                }
                Ok(n) => *at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.phase = Phase::Done;
                    return;
                }
            }
        }
        // All written: end our side, and read what the client may still have sent, so closing
        // does not reset the connection (which could discard the answer on the client's side).
        let _ = self.stream.shutdown(Shutdown::Write);
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match (&*self.stream).read(&mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        self.phase = Phase::Done;
    }
}

enum HeadError {
    TooLarge,
    Closed,
}

/// Reads what is available; `Some(end)` once the head (up to its blank line) is complete.
fn read_head(
    mut stream: &TcpStream,
    head: &mut Vec<u8>,
) -> std::result::Result<Option<usize>, HeadError> {
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => {
                let scan_from = head.len().saturating_sub(3);
                head.extend_from_slice(&chunk[..n]);
                if let Some(end) = head_end(&head[scan_from..]) {
                    return Ok(Some(scan_from + end));
                }
                if head.len() > MAX_REQUEST_HEAD {
                    return Err(HeadError::TooLarge);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(HeadError::Closed),
        }
    }
}

/// The end of a request head (after its blank line: CRLF CRLF, or LF LF as lenient servers
/// accept).
fn head_end(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find_map(|i| {
        let rest = &bytes[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if rest.starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

// ----- requests ----------------------------------------------------------------------------

const TEXT: &str = "text/plain; charset=utf-8";

/// A request, as far as the endpoint cares.
#[derive(Debug, PartialEq)]
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
}

/// Parses a request head; Err holds the refusal (status line and message).
fn parse(head: &[u8]) -> std::result::Result<Request<'_>, (&'static str, &'static str)> {
    const BAD: (&str, &str) = ("400 Bad Request", "bad request\n");
    let text = std::str::from_utf8(head).map_err(|_| BAD)?;
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Err(BAD);
    };
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/") {
        return Err(BAD);
    }
    let mut hosts = lines
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim());
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => return Err(BAD),
        (Some(host), None) if !is_loopback_host(host) => {
            return Err((
                "403 Forbidden",
                "forbidden: the Host header must name the loopback (localhost, 127.0.0.1 or \
                 [::1], with or without a port)\n",
            ));
        }
        _ => {}
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method,
        path,
        query,
    })
}

/// True for a `Host` value naming the loopback: `localhost`, an IPv4 loopback address or
/// `[::1]`, each with or without a port.
fn is_loopback_host(value: &str) -> bool {
    let digits = |port: &str| port.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = value.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(digits);
        return port_ok && inside.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    let host = match value.rsplit_once(':') {
        Some((host, port)) if digits(port) => host,
        Some(_) => return false,
        None => value,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// True when the query asks for a live health check (`live`, `live=1`, `live=true`).
fn wants_live(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| matches!(pair, "live" | "live=1" | "live=true" | "live=yes"))
}

/// What to do with a complete request head: an answer to write, or live checks to wait for.
fn dispatch(head: &[u8], deadline: Instant, now: Instant) -> Phase {
    let routed = std::panic::catch_unwind(|| route(head, deadline, now));
    routed.unwrap_or_else(|_| Phase::Writing {
        bytes: response("500 Internal Server Error", TEXT, "internal error\n", false),
        at: 0,
    })
}

fn route(head: &[u8], deadline: Instant, now: Instant) -> Phase {
    let write = |bytes| Phase::Writing { bytes, at: 0 };
    let request = match parse(head) {
        Ok(request) => request,
        Err((status, message)) => return write(response(status, TEXT, message, false)),
    };
    let head_only = request.method == "HEAD";
    match (request.method, request.path) {
        ("GET" | "HEAD", "/metrics") => write(response(
            "200 OK",
            CONTENT_TYPE,
            &prometheus::render(
                &crate::pool::all_pools()
                    .iter()
                    .map(Pool::metrics)
                    .collect::<Vec<_>>(),
            ),
            head_only,
        )),
        ("GET" | "HEAD", "/health") => {
            let until = deadline.checked_sub(WRITE_RESERVE).unwrap_or(now).max(now);
            let request = HealthRequest::start(wants_live(request.query), head_only, until);
            if request.ready() {
                write(request.answer())
            } else {
                Phase::Waiting(Box::new(request))
            }
        }
        ("GET" | "HEAD", _) => write(response(
            "404 Not Found",
            TEXT,
            "not found: try /metrics, /health or /health?live=1\n",
            head_only,
        )),
        _ => write(response(
            "405 Method Not Allowed",
            TEXT,
            "only GET and HEAD\n",
            false,
        )),
    }
}

/// A whole response (the head only for HEAD requests).
fn response(status: &str, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

// ----- /health -----------------------------------------------------------------------------

/// One `/health` request: every pool's latest report, or a live check.
struct HealthRequest {
    live: bool,
    head_only: bool,
    /// When to answer with what is known.
    until: Instant,
    checks: Vec<Check>,
}

struct Check {
    pool: Pool,
    /// The latest report and its age (when no live check was needed).
    latest: Option<(HealthReport, Duration)>,
    /// The live check this request waits for.
    flight: Option<Arc<Flight>>,
}

impl HealthRequest {
    fn start(live: bool, head_only: bool, until: Instant) -> HealthRequest {
        let checks = crate::pool::all_pools()
            .into_iter()
            .map(|pool| {
                let latest = if live { None } else { pool.last_health() };
                let flight = latest.is_none().then(|| Flight::join_or_start(&pool));
                Check {
                    pool,
                    latest,
                    flight,
                }
            })
            .collect();
        HealthRequest {
            live,
            head_only,
            until,
            checks,
        }
    }

    /// Every live check it waits for has finished.
    fn ready(&self) -> bool {
        self.checks
            .iter()
            .all(|c| c.flight.as_ref().is_none_or(|f| f.outcome.lock().is_some()))
    }

    /// The answer with what is known now: 503 when a pool is unhealthy, its check has not
    /// finished, or there is no pool at all.
    fn answer(&self) -> Vec<u8> {
        let mut worst = if self.checks.is_empty() {
            HealthStatus::Unhealthy
        } else {
            HealthStatus::Healthy
        };
        let entries: Vec<String> = self
            .checks
            .iter()
            .map(|check| {
                let known: std::result::Result<(HealthReport, Duration), String> =
                    match (&check.latest, &check.flight) {
                        (Some((report, age)), _) => Ok((report.clone(), *age)),
                        (None, Some(flight)) => match &*flight.outcome.lock() {
                            Some(Ok((at, report))) => Ok((report.clone(), at.elapsed())),
                            Some(Err(error)) => Err(error.clone()),
                            None => Err(format!(
                                "the health check did not finish within {} s",
                                (REQUEST_DEADLINE - WRITE_RESERVE).as_secs()
                            )),
                        },
                        (None, None) => Err("no health report".to_string()),
                    };
                let metrics = check.pool.metrics();
                let (status, age, report, error) = match known {
                    Ok((report, age)) => (
                        report.status,
                        age.as_millis().to_string(),
                        report.to_json(),
                        "null".to_string(),
                    ),
                    Err(error) => (
                        HealthStatus::Unhealthy,
                        "null".to_string(),
                        "null".to_string(),
                        json_string(&error),
                    ),
                };
                worst = worst.max(status);
                format!(
                    "{{\"pool\":{},\"server\":{},\"status\":{},\"age_ms\":{age},\
                     \"error\":{error},\"report\":{report}}}",
                    json_string(&metrics.pool),
                    json_string(&metrics.server),
                    json_string(status.as_str()),
                )
            })
            .collect();
        let body = format!(
            "{{\"status\":{},\"live\":{},\"pools\":[{}]}}\n",
            json_string(worst.as_str()),
            self.live,
            entries.join(",")
        );
        let status = if worst == HealthStatus::Unhealthy {
            "503 Service Unavailable"
        } else {
            "200 OK"
        };
        response(status, "application/json", &body, self.head_only)
    }
}

/// A live health check of one pool, shared by every request that wants one while it runs.
#[derive(Default)]
struct Flight {
    /// When it finished and its report, or why there is none.
    outcome: Mutex<Option<std::result::Result<(Instant, HealthReport), String>>>,
}

impl Flight {
    /// The check of `pool` in progress, or a new one on a thread of its own.
    fn join_or_start(pool: &Pool) -> Arc<Flight> {
        let flight = {
            let mut flights = FLIGHTS.lock();
            if let Some((_, flight)) = flights.iter().find(|(p, _)| p.same_pool(pool)) {
                return flight.clone();
            }
            let flight = Arc::new(Flight::default());
            flights.push((pool.clone(), flight.clone()));
            flight
        };
        let (pool, mine) = (pool.clone(), flight.clone());
        let spawned = std::thread::Builder::new()
            .name("redpool-health".into())
            .spawn(move || {
                let checked =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.health()));
                *mine.outcome.lock() = Some(match checked {
                    Ok(report) => Ok((Instant::now(), report)),
                    Err(_) => Err("the health check failed (panic)".to_string()),
                });
                Flight::finished(&mine);
            });
        if let Err(e) = spawned {
            *flight.outcome.lock() = Some(Err(format!(
                "cannot start a thread for the health check: {e}"
            )));
            Flight::finished(&flight);
        }
        flight
    }

    /// Removes a finished check from the ones in progress (the next request starts a new one).
    fn finished(flight: &Arc<Flight>) {
        let removed: Vec<(Pool, Arc<Flight>)> = {
            let mut flights = FLIGHTS.lock();
            let (done, running) = std::mem::take(&mut *flights)
                .into_iter()
                .partition(|(_, f)| Arc::ptr_eq(f, flight));
            *flights = running;
            done
        };
        // Dropped outside the lock: it may be the last handle of its pool.
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_accepted_and_others_refused() {
        for ok in [
            "localhost",
            "LOCALHOST:9464",
            "localhost.",
            "127.0.0.1",
            "127.0.0.1:9464",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:9464",
            "localhost:",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for refused in [
            "",
            "evil.example",
            "evil.example:9464",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:9464",
            "0.0.0.0",
            "[::2]:9464",
            "[::1",
            "[::1]x",
            "::1",
            "localhost:94a",
            "localhost:9464:1",
        ] {
            assert!(!is_loopback_host(refused), "{refused:?}");
        }
    }

    #[test]
    fn requests_are_parsed_and_foreign_hosts_refused() {
        let ok = parse(b"GET /health?live=1 HTTP/1.1\r\nHost: localhost:9464\r\n\r\n").unwrap();
        assert_eq!(
            ok,
            Request {
                method: "GET",
                path: "/health",
                query: "live=1"
            }
        );
        assert!(wants_live(ok.query));
        assert!(!wants_live("live=0&x=1"));
        assert!(wants_live("x=1&live"));
        // HTTP/1.0 without Host: allowed (a browser always sends one).
        assert!(parse(b"GET /metrics HTTP/1.0\r\n\r\n").is_ok());
        let refused = parse(b"GET /metrics HTTP/1.1\r\nhOsT:  evil.example:9464 \r\n\r\n");
        assert_eq!(refused.unwrap_err().0, "403 Forbidden");
        let twice = parse(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nHost: evil\r\n\r\n");
        assert_eq!(twice.unwrap_err().0, "400 Bad Request");
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET /metrics\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"\xff /metrics HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse(bad).unwrap_err().0, "400 Bad Request", "{bad:?}");
        }
    }

    #[test]
    fn the_end_of_a_head_is_found() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}
