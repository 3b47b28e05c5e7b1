//! Opening a connection: socket setup (TCP options, TLS, Unix sockets) and the handshake (AUTH,
//! SELECT, CLIENT SETNAME), all within `connect_timeout`; and [`Stream`], the byte stream under a
//! connection.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use socket2::{Domain, Protocol, Socket, Type};

use super::Connection;
use super::stream::{Stream, Timed};
use crate::config::{Address, Config};
use crate::error::{Error, ErrorKind, Result};

/// Everything needed to open connections to one server, prepared once per pool.
pub(crate) struct Connector {
    config: Arc<Config>,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// AUTH / SELECT / CLIENT SETNAME, packed once, sent as one write on every new connection.
    handshake: Handshake,
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
        let handshake = Handshake::new(&config);
        let server = Arc::from(config.address().to_string());
        Ok(Connector {
            config,
            tls,
            handshake,
            server,
        })
    }

    /// The server address for messages (`host:port` or `unix:/path`), never with credentials.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Opens, configures and authenticates a new connection within `connect_timeout`: the TCP
    /// connect, the TLS handshake and the AUTH/SELECT/SETNAME handshake together; by `limit` (a
    /// caller's deadline) when that comes first.
    pub fn connect(&self, fork_generation: u64, limit: Option<Instant>) -> Result<Connection> {
        let natural = Instant::now() + self.config.connect_timeout();
        let deadline = limit.map_or(natural, |limit| limit.min(natural));
        let mut stream = self.open_stream(deadline)?;
        stream.complete_tls(&self.server)?;
        let mut connection = Connection::new(
            stream,
            self.server.clone(),
            self.config.max_reply_bytes(),
            self.config.socket_timeout(),
            fork_generation,
        );
        self.run_handshake(&mut connection, deadline)?;
        Ok(connection)
    }

    /// Connects the socket; its reads and writes are bounded by `deadline` from the start.
    fn open_stream(&self, deadline: Instant) -> Result<Stream> {
        match self.config.address() {
            Address::Unix(path) => {
                let sock = UnixStream::connect(path)
                    .map_err(|e| Error::from_io(&e, "connecting to", &self.server))?;
                Ok(Stream::Unix(Timed::new(sock, deadline)))
            }
            Address::Tcp { host, port } => {
                let tcp = Timed::new(self.connect_tcp(host, *port, deadline)?, deadline);
                Ok(match &self.tls {
                    None => Stream::Tcp(tcp),
                    Some((config, name)) => {
                        let session = ClientConnection::new(config.clone(), name.clone())
                            .map_err(|e| self.tls_failure(&e.to_string()))?;
                        Stream::Tls(Box::new(StreamOwned::new(session, tcp)))
                    }
                })
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
            match connect_in_slices(&addr, Instant::now() + remaining) {
                Ok(tcp) => {
                    self.configure_tcp(&tcp)
                        .map_err(|e| Error::from_io(&e, "configuring socket for", &self.server))?;
                    return Ok(tcp);
                }
                Err(e) if crate::error::is_interrupted_io(&e) => return Err(Error::interrupted()),
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

    fn tls_failure(&self, why: &str) -> Error {
        Error::new(
            ErrorKind::Connection,
            format!("TLS handshake with {} failed: {why}", self.server),
        )
    }

    fn run_handshake(&self, connection: &mut Connection, deadline: Instant) -> Result<()> {
        if self.handshake.replies == 0 {
            return Ok(());
        }
        let replies = connection
            .exchange_encoded(&self.handshake.packed, self.handshake.replies, deadline)
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
        // A refused HELLO (RESP3) is classified by its code, so that a server without RESP3 is
        // not reported as a wrong password.
        let auth_failed = |index: usize| index == 0 && self.handshake.auth_first;
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

/// The commands every new connection starts with, packed once per pool: for RESP3, `HELLO 3`
/// carrying the credentials and the name; else AUTH and CLIENT SETNAME; then SELECT. A user alone
/// (set by name, not in a URL) authenticates with an empty password, as an ACL user with
/// `nopass`, like redis-py's AUTH of a user without a password.
struct Handshake {
    packed: Vec<u8>,
    /// How many replies the commands get.
    replies: usize,
    /// The first command is RESP2's AUTH: its refusal is a failed authentication.
    auth_first: bool,
}

impl Handshake {
    fn new(config: &Config) -> Handshake {
        let mut commands = Vec::new();
        let credentials = (config.password().is_some() || config.username().is_some()).then(|| {
            (
                config.username(),
                config.password().map_or("", |p| p.expose()),
            )
        });
        let name = Some(config.client_name()).filter(|name| !name.is_empty());
        let resp3 = config.protocol() == 3;
        if resp3 {
            let mut hello = redis::cmd("HELLO");
            hello.arg(3);
            if let Some((user, password)) = credentials {
                hello
                    .arg("AUTH")
                    .arg(user.unwrap_or("default"))
                    .arg(password);
            }
            if let Some(name) = name {
                hello.arg("SETNAME").arg(name);
            }
            commands.push(hello);
        } else {
            if let Some((user, password)) = credentials {
                // `AUTH [user] password`: a `None` user adds no argument.
                commands.push(redis::cmd("AUTH").arg(user).arg(password).clone());
            }
            if let Some(name) = name {
                commands.push(redis::cmd("CLIENT").arg("SETNAME").arg(name).clone());
            }
        }
        if config.db() != 0 {
            commands.push(redis::cmd("SELECT").arg(config.db()).clone());
        }
        let mut packed = Vec::new();
        for command in &commands {
            command.write_packed_command(&mut packed);
        }
        Handshake {
            packed,
            replies: commands.len(),
            auth_first: !resp3 && credentials.is_some(),
        }
    }
}

/// `TcpStream::connect_timeout` (a non-blocking connect, then a wait for the socket to become
/// writable), with the wait cut into [`crate::interrupt::SLICE`]s for an armed thread, and a
/// signal's `EINTR` handed to its check rather than retried blindly.
fn connect_in_slices(addr: &SocketAddr, deadline: Instant) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    match socket.connect(&(*addr).into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            wait_until_writable(&socket, deadline)?;
        }
        Err(e) => return Err(e),
    }
    socket.set_nonblocking(false)?;
    Ok(socket.into())
}

/// Waits for a connecting socket to finish (writable), by `deadline`; the connect's own error
/// when it failed, [`crate::error::interrupted_io`]'s when the thread's check said stop.
fn wait_until_writable(socket: &Socket, deadline: Instant) -> io::Result<()> {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        let pause = crate::interrupt::pause_at(deadline) - now;
        // Rounded up, so a wait never spins on a zero timeout.
        let millis = pause.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `poll` points at one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        } else if ready > 0 {
            return match socket.take_error()? {
                Some(e) => Err(e),
                None if poll.revents & (libc::POLLHUP | libc::POLLERR) != 0 => Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "connection failed with no error set",
                )),
                None => Ok(()),
            };
        }
        crate::interrupt::check_io()?;
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}
