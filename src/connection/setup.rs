//! Opening a connection: socket setup (TCP options, TLS, Unix sockets) and the handshake (AUTH,
//! SELECT, CLIENT SETNAME), all within `connect_timeout`; and [`Stream`], the byte stream under a
//! connection.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::Connection;
use crate::config::{Address, Config};
use crate::error::{Error, ErrorKind, Result};

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
        let mut connection = Connection::new(
            stream,
            self.server.clone(),
            self.config.max_reply_bytes(),
            fork_generation,
        );
        connection
            .stream_mut()
            .complete_tls(&self.server, deadline)?;
        self.run_handshake(&mut connection)?;
        let timeout = Some(self.config.socket_timeout());
        connection
            .stream_mut()
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
        let replies = connection
            .exchange_encoded(&self.handshake, self.handshake_replies)
            .map_err(|e| e.context("during the connection handshake"))?;
        let first_error = replies
            .iter()
            .enumerate()
            .find_map(|(index, reply)| match reply {
                Value::ServerError(err) => {
                    Some((index, Error::from_server_reply(err.code(), err.details())))
                }
                _ => None,
            });
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
pub(super) enum Stream {
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Unix(UnixStream),
}

impl Stream {
    /// Sets the read and write timeouts of the socket.
    pub(super) fn set_timeouts(
        &self,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> io::Result<()> {
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

    /// Completes a TLS handshake (nothing to do on other streams) before `deadline`.
    pub(super) fn complete_tls(&mut self, server: &str, deadline: Instant) -> Result<()> {
        let Stream::Tls(tls) = self else {
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
                            format!("TLS handshake with {} timed out", server),
                        ));
                    }
                    _ => e.to_string(),
                };
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!("TLS handshake with {} failed: {why}", server),
                ));
            }
        }
        Ok(())
    }

    /// True when the TLS session holds decrypted bytes nobody read yet (records already received
    /// are decrypted for the look; no system call). Plain streams buffer nothing of their own.
    pub(super) fn has_unread_plaintext(&mut self) -> bool {
        match self {
            Stream::Tls(tls) => tls
                .conn
                .process_new_packets()
                .map_or(true, |state| state.plaintext_bytes_to_read() > 0),
            Stream::Tcp(_) | Stream::Unix(_) => false,
        }
    }

    /// True for TLS streams.
    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    pub(super) fn raw_fd(&self) -> RawFd {
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
