//! The byte stream under a connection (TCP, TLS over TCP, or a Unix socket), and [`Timed`], the
//! socket wrapper that makes a deadline a deadline: every read and write gets only the time left
//! before the current exchange's deadline, so a server that dribbles a reply (or a TLS record, or
//! the handshake) one byte at a time cannot stretch a call past it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};

use crate::error::{Error, ErrorKind, Result};
use crate::interrupt;

/// A socket timeout within this of the time left is left as it is: no system call to shave off a
/// few milliseconds, so the common exchange (a reply that arrives at once) makes none. A call may
/// end up to this much after its deadline.
const SLACK: Duration = Duration::from_millis(20);

/// A socket whose reads and writes are bounded by a deadline (see the module documentation).
pub(crate) struct Timed<S> {
    socket: S,
    /// When the current exchange must be done.
    deadline: Instant,
    /// The read and write timeout the socket has now (`None` before the first is set).
    applied: Option<Duration>,
}

/// Sockets whose read and write timeouts can be set.
pub(crate) trait Timeouts {
    /// Sets both the read and the write timeout.
    fn set_timeouts(&self, timeout: Duration) -> io::Result<()>;
}

impl Timeouts for TcpStream {
    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

impl Timeouts for UnixStream {
    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

impl<S: Timeouts> Timed<S> {
    /// Wraps `socket`; its first read or write is bounded by `deadline`.
    pub(crate) fn new(socket: S, deadline: Instant) -> Timed<S> {
        Timed {
            socket,
            deadline,
            applied: None,
        }
    }

    /// Fits the socket's timeouts to the time left before the deadline (on an armed thread, to
    /// at most one [`interrupt::SLICE`]), or fails with `TimedOut` once none is left.
    fn fit(&mut self) -> io::Result<()> {
        let left = self
            .deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
        let wait = if interrupt::armed() {
            left.min(interrupt::SLICE)
        } else {
            left
        };
        if self
            .applied
            .is_none_or(|applied| applied.abs_diff(wait) > SLACK)
        {
            self.socket.set_timeouts(wait)?;
            self.applied = Some(wait);
        }
        Ok(())
    }

    /// True when a read or write that failed with `err` was only paused: by a signal (`EINTR`),
    /// or on an armed thread by the end of a slice before the deadline. The wait then asks the
    /// thread's check (see [`crate::interrupt`]) and goes on, or ends with its stop error.
    fn paused(&self, err: &io::Error) -> bool {
        match err.kind() {
            io::ErrorKind::Interrupted => true,
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                interrupt::armed() && Instant::now() < self.deadline
            }
            _ => false,
        }
    }

    /// Runs `io` (one read or write) within the deadline, again after each pause the thread's
    /// check lets go on.
    fn bounded(&mut self, mut io: impl FnMut(&mut S) -> io::Result<usize>) -> io::Result<usize> {
        loop {
            self.fit()?;
            match io(&mut self.socket) {
                Err(e) if self.paused(&e) => {
                    interrupt::check_io()?;
                }
                done => return done,
            }
        }
    }
}

impl<S: Read + Timeouts> Read for Timed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.bounded(|socket| socket.read(buf))
    }
}

impl<S: Write + Timeouts> Write for Timed<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bounded(|socket| socket.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

/// The byte stream under a connection.
pub(crate) enum Stream {
    /// Plain TCP.
    Tcp(Timed<TcpStream>),
    /// TLS over TCP (the deadline bounds the socket under the TLS session).
    Tls(Box<StreamOwned<ClientConnection, Timed<TcpStream>>>),
    /// A Unix socket.
    Unix(Timed<UnixStream>),
}

impl Stream {
    /// Bounds every read and write from now on by `deadline` (set once per exchange).
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        match self {
            Stream::Tcp(s) => s.deadline = deadline,
            Stream::Tls(s) => s.sock.deadline = deadline,
            Stream::Unix(s) => s.deadline = deadline,
        }
    }

    /// Completes a TLS handshake (nothing to do on other streams) within the deadline set.
    pub(crate) fn complete_tls(&mut self, server: &str) -> Result<()> {
        let Stream::Tls(tls) = self else {
            return Ok(());
        };
        while tls.conn.is_handshaking() {
            if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
                if crate::error::is_interrupted_io(&e) {
                    return Err(Error::interrupted());
                }
                let why = match e.get_ref() {
                    Some(inner) if e.kind() == io::ErrorKind::InvalidData => inner.to_string(),
                    _ if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                    {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            format!("TLS handshake with {server} timed out"),
                        ));
                    }
                    _ => e.to_string(),
                };
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!("TLS handshake with {server} failed: {why}"),
                ));
            }
        }
        Ok(())
    }

    /// True when the TLS session holds decrypted bytes nobody read yet (records already received
    /// are decrypted for the look; no system call). Plain streams buffer nothing of their own.
    pub(crate) fn has_unread_plaintext(&mut self) -> bool {
        match self {
            Stream::Tls(tls) => tls
                .conn
                .process_new_packets()
                .map_or(true, |state| state.plaintext_bytes_to_read() > 0),
            Stream::Tcp(_) | Stream::Unix(_) => false,
        }
    }

    /// An idle TLS session's look at what its socket received: takes the waiting records into
    /// the session without blocking (`recv(MSG_DONTWAIT)`, at most 16 reads) and decrypts them.
    /// False when the peer closed (its `close_notify`, or the socket's end), the records are
    /// invalid, or they hold data nobody asked for; session tickets and key updates alone leave
    /// the session usable (they are consumed, as a read would). True for other streams.
    pub(crate) fn tls_idle_and_open(&mut self) -> bool {
        let Stream::Tls(tls) = self else {
            return true;
        };
        let fd = tls.sock.socket.as_raw_fd();
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            // SAFETY: `buf` is a valid buffer of its length; the descriptor is the session's own.
            let n =
                unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            let received = match n {
                0 => return false,
                n if n < 0 => {
                    return io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock;
                }
                n => &buf[..n as usize],
            };
            let mut rest = received;
            while !rest.is_empty() {
                // Nothing taken (its buffers full) or an error: more than an idle session holds.
                if !matches!(tls.conn.read_tls(&mut rest), Ok(n) if n > 0) {
                    return false;
                }
                match tls.conn.process_new_packets() {
                    Ok(state)
                        if !state.peer_has_closed() && state.plaintext_bytes_to_read() == 0 => {}
                    _ => return false,
                }
            }
        }
        true
    }

    /// True for TLS streams.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The socket's descriptor.
    pub(crate) fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.socket.as_raw_fd(),
            Stream::Tls(s) => s.sock.socket.as_raw_fd(),
            Stream::Unix(s) => s.socket.as_raw_fd(),
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
