//! One connection to the server: socket setup (TCP options, TLS, Unix sockets), the handshake
//! (AUTH, SELECT, CLIENT SETNAME), and request/reply exchange using redis-rs's RESP encoder and
//! parser.
//!
//! A connection knows whether it is clean. Before any bytes are written it marks itself busy, and
//! only a complete reply clears that mark; a timeout, an I/O error, a protocol error or a panic in
//! between leaves it marked, and the pool then closes it instead of reusing it. Commands that
//! change connection state (SELECT, SUBSCRIBE, an unfinished MULTI/WATCH, ...) are tracked too.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::{Cmd, Value};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::command::{SessionEffect, SessionState, session_effect};
use crate::config::{Address, Config};
use crate::error::{Error, ErrorKind, Result};
use crate::resp::{ReadError, ReplyReader};

const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
const EXEC: &[u8] = b"*1\r\n$4\r\nEXEC\r\n";
const DISCARD: &[u8] = b"*1\r\n$7\r\nDISCARD\r\n";
const UNWATCH: &[u8] = b"*1\r\n$7\r\nUNWATCH\r\n";
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Everything needed to open connections to one server, prepared once per pool.
pub(crate) struct Connector {
    config: Arc<Config>,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// AUTH / SELECT / CLIENT SETNAME, packed once, sent as one write on every new connection.
    handshake: Vec<u8>,
    handshake_replies: usize,
    server: Arc<str>,
}

impl Connector {
    /// Prepares TLS settings and the handshake for `config`.
    pub fn new(config: Arc<Config>) -> Result<Connector> {
        let tls = match (config.tls(), config.address()) {
            (Some(tls), Address::Tcp { host, .. }) => Some((
                crate::tls::client_config(tls)?,
                crate::tls::server_name(host)?,
            )),
            _ => None,
        };
        let mut handshake = Vec::new();
        let mut handshake_replies = 0;
        if let Some(password) = config.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = config.username() {
                auth.arg(user);
            }
            auth.arg(password.expose())
                .write_packed_command(&mut handshake);
            handshake_replies += 1;
        }
        if config.db() != 0 {
            redis::cmd("SELECT")
                .arg(config.db())
                .write_packed_command(&mut handshake);
            handshake_replies += 1;
        }
        if !config.client_name().is_empty() {
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(config.client_name())
                .write_packed_command(&mut handshake);
            handshake_replies += 1;
        }
        let server = Arc::from(config.address().to_string());
        Ok(Connector {
            config,
            tls,
            handshake,
            handshake_replies,
            server,
        })
    }

    /// The server address for messages (`host:port` or `unix:/path`), never with credentials.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Opens, configures and authenticates a new connection within `connect_timeout`.
    pub fn connect(&self, fork_generation: u64) -> Result<Connection> {
        let deadline = Instant::now() + self.config.connect_timeout();
        let stream = self.open_stream(deadline)?;
        let mut connection = Connection {
            stream,
            reader: ReplyReader::new(),
            buf: Vec::with_capacity(256),
            server: self.server.clone(),
            session: SessionState::default(),
            busy: false,
            discarded: false,
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            created_at: Instant::now(),
            last_used: Instant::now(),
            retire_at: None,
            fork_generation,
        };
        connection.complete_tls(deadline)?;
        self.run_handshake(&mut connection)?;
        let timeout = Some(self.config.socket_timeout());
        connection
            .stream
            .set_timeouts(timeout, timeout)
            .map_err(|e| Error::from_io(&e, "configuring socket for", &self.server))?;
        Ok(connection)
    }

    fn open_stream(&self, deadline: Instant) -> Result<Stream> {
        match self.config.address() {
            Address::Unix(path) => {
                let sock = UnixStream::connect(path)
                    .map_err(|e| Error::from_io(&e, "connecting to", &self.server))?;
                let stream = Stream::Unix(sock);
                self.apply_deadline(&stream, deadline)?;
                Ok(stream)
            }
            Address::Tcp { host, port } => {
                let tcp = self.connect_tcp(host, *port, deadline)?;
                let stream = match &self.tls {
                    None => Stream::Tcp(tcp),
                    Some((config, name)) => {
                        let session = ClientConnection::new(config.clone(), name.clone())
                            .map_err(|e| self.tls_failure(&e.to_string()))?;
                        Stream::Tls(Box::new(StreamOwned::new(session, tcp)))
                    }
                };
                self.apply_deadline(&stream, deadline)?;
                Ok(stream)
            }
        }
    }

    fn connect_tcp(&self, host: &str, port: u16, deadline: Instant) -> Result<TcpStream> {
        let addrs = (host, port).to_socket_addrs().map_err(|e| {
            Error::new(
                ErrorKind::Connection,
                format!("cannot resolve {}: {e}", self.server),
            )
        })?;
        let mut last_error = None;
        for addr in addrs {
            let Some(remaining) = remaining(deadline) else {
                break;
            };
            match TcpStream::connect_timeout(&addr, remaining) {
                Ok(tcp) => {
                    self.configure_tcp(&tcp)
                        .map_err(|e| Error::from_io(&e, "configuring socket for", &self.server))?;
                    return Ok(tcp);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(match last_error {
            Some(e) => Error::from_io(&e, "connecting to", &self.server),
            None => Error::new(
                ErrorKind::Timeout,
                format!(
                    "connecting to {} timed out after {:?}",
                    self.server,
                    self.config.connect_timeout()
                ),
            ),
        })
    }

    /// TCP_NODELAY, SO_KEEPALIVE with idle / interval / count, and TCP_USER_TIMEOUT (Linux).
    fn configure_tcp(&self, tcp: &TcpStream) -> io::Result<()> {
        tcp.set_nodelay(self.config.tcp_nodelay())?;
        let socket = socket2::SockRef::from(tcp);
        let keepalive = self.config.keepalive();
        if keepalive.enabled {
            let params = socket2::TcpKeepalive::new()
                .with_time(keepalive.idle)
                .with_interval(keepalive.interval)
                .with_retries(keepalive.count);
            socket.set_tcp_keepalive(&params)?;
        }
        #[cfg(target_os = "linux")]
        socket.set_tcp_user_timeout(keepalive.effective_user_timeout())?;
        Ok(())
    }

    /// Bounds every read and write of the connect phase by what is left of `connect_timeout`.
    fn apply_deadline(&self, stream: &Stream, deadline: Instant) -> Result<()> {
        let left = remaining(deadline).ok_or_else(|| {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "connecting to {} timed out after {:?}",
                    self.server,
                    self.config.connect_timeout()
                ),
            )
        })?;
        stream
            .set_timeouts(Some(left), Some(left))
            .map_err(|e| Error::from_io(&e, "configuring socket for", &self.server))
    }

    fn tls_failure(&self, why: &str) -> Error {
        Error::new(
            ErrorKind::Connection,
            format!("TLS handshake with {} failed: {why}", self.server),
        )
    }

    fn run_handshake(&self, connection: &mut Connection) -> Result<()> {
        if self.handshake_replies == 0 {
            return Ok(());
        }
        connection
            .write_all(&self.handshake)
            .map_err(|e| e.context("during the connection handshake"))?;
        let mut first_error = None;
        for index in 0..self.handshake_replies {
            let reply = connection
                .read_reply()
                .map_err(|e| e.context("during the connection handshake"))?;
            if let (Value::ServerError(err), None) = (&reply, &first_error) {
                first_error = Some((index, Error::from_server_reply(err.code(), err.details())));
            }
        }
        let auth_failed = |index: usize| index == 0 && self.config.password().is_some();
        match first_error {
            None => Ok(()),
            Some((index, err)) if auth_failed(index) || err.kind() == ErrorKind::Auth => {
                Err(Error::new(
                    ErrorKind::Auth,
                    format!(
                        "authentication to {} as user {} failed: {}",
                        self.server,
                        self.config.username().unwrap_or("default"),
                        err.message()
                    ),
                ))
            }
            Some((_, err)) => Err(err.context(format!("handshake with {} failed", self.server))),
        }
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// The byte stream under a connection.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Unix(UnixStream),
}

impl Stream {
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
            Stream::Tls(s) => {
                s.sock.set_read_timeout(read)?;
                s.sock.set_write_timeout(write)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
        }
    }

    fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.sock.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// An open, authenticated connection. Owned by the pool while idle and by one caller while in use.
pub(crate) struct Connection {
    stream: Stream,
    reader: ReplyReader,
    buf: Vec<u8>,
    server: Arc<str>,
    session: SessionState,
    /// Set before a request is written, cleared when its whole reply was read.
    busy: bool,
    /// The caller asked for this connection to be closed rather than reused.
    discarded: bool,
    /// Process-unique id, for events and logs.
    pub id: u64,
    /// When the socket was opened.
    pub created_at: Instant,
    /// When the connection was opened or last returned to the pool (the pool stamps it on
    /// return, so a pipeline does not read the clock once per reply).
    pub last_used: Instant,
    /// When max_lifetime (with jitter) retires it.
    pub retire_at: Option<Instant>,
    /// The fork generation the socket belongs to (see `fork`).
    pub fork_generation: u64,
}

impl Connection {
    /// Sends one command and reads its reply. A server error reply is returned as
    /// `Value::ServerError` (the connection stays clean); every other failure leaves it unusable.
    pub fn request(&mut self, cmd: &Cmd) -> Result<Value> {
        self.buf.clear();
        self.note_session(cmd);
        cmd.write_packed_command(&mut self.buf);
        self.send_buffer()?;
        self.read_reply()
    }

    /// Sends `cmds` in one write and reads one reply per command, in order.
    pub fn request_pipeline(&mut self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        self.buf.clear();
        for cmd in cmds {
            self.note_session(cmd);
            cmd.write_packed_command(&mut self.buf);
        }
        self.send_buffer()?;
        (0..cmds.len()).map(|_| self.read_reply()).collect()
    }

    /// Runs `cmds` inside MULTI/EXEC. Returns `None` when EXEC was aborted by a WATCH conflict,
    /// else each command's reply (a runtime error of one command is a `Value::ServerError` in its
    /// place). If the server rejected a command while queueing, the transaction is discarded and
    /// a Response error names the command.
    pub fn request_transaction(&mut self, cmds: &[Cmd]) -> Result<Option<Vec<Value>>> {
        self.buf.clear();
        self.buf.extend_from_slice(MULTI);
        self.session.apply(SessionEffect::BeginTransaction);
        for cmd in cmds {
            self.note_session(cmd);
            cmd.write_packed_command(&mut self.buf);
        }
        self.buf.extend_from_slice(EXEC);
        self.session.apply(SessionEffect::EndTransaction);
        self.send_buffer()?;
        let mut queue_error = None;
        for index in 0..=cmds.len() {
            // Index 0 is MULTI's +OK; then one +QUEUED (or an error) per command.
            if let Value::ServerError(err) = self.read_reply()? {
                if queue_error.is_none() {
                    queue_error = Some((index, err));
                }
            }
        }
        let exec = self.read_reply()?;
        if let Some((index, err)) = queue_error {
            let culprit = match index {
                0 => "MULTI".to_string(),
                i => format!("command {i} ({})", command_name(&cmds[i - 1])),
            };
            return Err(Error::new(
                ErrorKind::Response,
                format!(
                    "EXECABORT transaction discarded: {culprit} was rejected: {} {}",
                    err.code(),
                    err.details().unwrap_or_default()
                ),
            ));
        }
        match exec {
            Value::Array(items) => Ok(Some(items)),
            Value::Nil => Ok(None),
            Value::ServerError(err) => Err(Error::from_server_reply(err.code(), err.details())),
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!("unexpected EXEC reply from {}: {other:?}", self.server),
            )),
        }
    }

    /// PINGs and reads the PONG.
    pub fn ping(&mut self) -> Result<()> {
        self.write_all(PING)?;
        match self.read_reply()? {
            Value::ServerError(err) => Err(Error::from_server_reply(err.code(), err.details())),
            _ => Ok(()),
        }
    }

    /// Changes the read timeout (for blocking commands); `None` restores `default`.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>, default: Duration) -> Result<()> {
        let timeout = timeout.unwrap_or(default);
        let result = match &self.stream {
            Stream::Tcp(s) => s.set_read_timeout(Some(timeout)),
            Stream::Tls(s) => s.sock.set_read_timeout(Some(timeout)),
            Stream::Unix(s) => s.set_read_timeout(Some(timeout)),
        };
        result.map_err(|e| {
            self.busy = true;
            Error::from_io(&e, "configuring socket for", &self.server)
        })
    }

    /// Ends an open MULTI (DISCARD) or WATCH (UNWATCH) so the connection can be reused. Marks the
    /// connection unusable if that fails.
    pub fn settle_session(&mut self) {
        let reset = if self.session.in_transaction {
            DISCARD
        } else if self.session.watching {
            UNWATCH
        } else {
            return;
        };
        self.session.apply(SessionEffect::EndTransaction);
        if self
            .write_all(reset)
            .and_then(|_| self.read_reply())
            .is_err()
        {
            self.busy = true;
        }
    }

    /// True when the connection may go back to the idle set: no request half done, no state
    /// left behind by the caller.
    pub fn is_reusable(&self) -> bool {
        !self.busy && !self.session.tainted && !self.discarded
    }

    /// Marks the connection to be closed when it is returned.
    pub fn mark_discarded(&mut self) {
        self.discarded = true;
    }

    /// True when the caller discarded it or left state behind that cannot be reset.
    pub fn is_discarded(&self) -> bool {
        self.discarded || self.session.tainted
    }

    /// A non-blocking look at an idle socket: false when the server closed it (CLIENT KILL, idle
    /// timeout, restart) or, on a plain socket, when unexpected bytes wait to be read (in the
    /// reader's buffer or the socket), which would be read as the reply to the next command. One
    /// `recv(MSG_PEEK | MSG_DONTWAIT)` call.
    pub fn is_idle_and_open(&self) -> bool {
        if !self.reader.is_empty() {
            return false; // bytes nobody asked for, already received
        }
        let mut byte = 0u8;
        // SAFETY: `byte` is a valid one-byte buffer and the descriptor is owned by this connection.
        let n = unsafe {
            libc::recv(
                self.raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match n {
            0 => false,
            // Nothing to read: the normal state of an idle connection.
            n if n < 0 => io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock,
            // TLS may legitimately have records pending (session tickets); plain RESP may not.
            _ => matches!(self.stream, Stream::Tls(_)),
        }
    }

    /// True when a MULTI or WATCH is left open (`settle_session` would send something).
    pub fn needs_settling(&self) -> bool {
        self.session.in_transaction || self.session.watching
    }

    /// The socket's file descriptor (for socket-option checks and shutdown on close).
    pub fn raw_fd(&self) -> RawFd {
        self.stream.raw_fd()
    }

    fn note_session(&mut self, cmd: &Cmd) {
        let mut args = cmd.args_iter();
        let name = arg_bytes(args.next());
        let effect = session_effect(name, Some(arg_bytes(args.next())));
        self.session.apply(effect);
    }

    fn complete_tls(&mut self, deadline: Instant) -> Result<()> {
        let Stream::Tls(tls) = &mut self.stream else {
            return Ok(());
        };
        while tls.conn.is_handshaking() {
            if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
                let why = match e.get_ref() {
                    Some(inner) if e.kind() == io::ErrorKind::InvalidData => inner.to_string(),
                    _ if remaining(deadline).is_none()
                        || matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            format!("TLS handshake with {} timed out", self.server),
                        ));
                    }
                    _ => e.to_string(),
                };
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!("TLS handshake with {} failed: {why}", self.server),
                ));
            }
        }
        Ok(())
    }

    fn send_buffer(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let result = self.write_all(&buf);
        self.buf = buf;
        result
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> Result<()> {
        self.busy = true;
        let mut written_any = false;
        while !bytes.is_empty() {
            match self.stream.write(bytes) {
                Ok(0) => {
                    let err = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(self.write_error(&err, written_any));
                }
                Ok(n) => {
                    written_any = true;
                    bytes = &bytes[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.write_error(&e, written_any)),
            }
        }
        self.stream.flush().map_err(|e| self.write_error(&e, true))
    }

    /// A write failure; `sent` when some bytes already left (the server may act on them).
    fn write_error(&self, err: &io::Error, sent: bool) -> Error {
        let error = Error::from_io(err, "writing to", &self.server);
        if sent { error.sent() } else { error }
    }

    /// Reads the next reply. RESP3 push messages (client-tracking invalidations, ...) are not
    /// replies to anything sent: they are skipped, so replies never shift by one.
    fn read_reply(&mut self) -> Result<Value> {
        loop {
            match self.reader.read(&mut self.stream) {
                Ok(Value::Push { .. }) => continue,
                Ok(value) => {
                    self.busy = false;
                    return Ok(value);
                }
                Err(err) => {
                    self.busy = true;
                    return Err(self.map_read_error(err).sent());
                }
            }
        }
    }

    fn map_read_error(&self, err: ReadError) -> Error {
        let dropped = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            )
        };
        match err {
            ReadError::Io(e) if !dropped(&e) => Error::from_io(&e, "reading from", &self.server),
            ReadError::Io(_) | ReadError::Closed => Error::new(
                ErrorKind::Connection,
                format!(
                    "reading from {}: connection closed by the server",
                    self.server
                ),
            ),
            ReadError::Protocol(detail) => {
                // One line, and short: the parser's text may list every unexpected byte.
                let detail: String = detail
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(160)
                    .collect();
                Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "invalid reply from {} (is it a Redis server?): {detail}",
                        self.server
                    ),
                )
            }
        }
    }
}

fn arg_bytes(arg: Option<redis::Arg<&[u8]>>) -> &[u8] {
    match arg {
        Some(redis::Arg::Simple(bytes)) => bytes,
        _ => &[],
    }
}

/// The arguments of `cmd` as byte slices (name first).
pub(crate) fn arg_slices(cmd: &Cmd) -> impl Iterator<Item = &[u8]> {
    cmd.args_iter().map(|arg| arg_bytes(Some(arg)))
}

/// The command's name for messages (first argument, lossily as text).
pub(crate) fn command_name(cmd: &Cmd) -> String {
    String::from_utf8_lossy(arg_bytes(cmd.args_iter().next())).to_uppercase()
}
