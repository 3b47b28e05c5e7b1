//! One connection to the server and its request/reply exchange, with the reply accounting that
//! keeps every caller's replies its own.
//!
//! **Clean by construction.** Every exchange goes through one path: the commands are checked
//! (nothing is sent that cannot be read back: see [`crate::command`]), written, and then, for each
//! command in order, exactly the frames the server sends for it are read, as the connection's
//! [`Session`] computes them (one per command; the SUBSCRIBE family's confirmations; nothing under
//! `CLIENT REPLY OFF|SKIP`). RESP3 push frames, and published messages on a subscribed RESP2
//! connection, answer no command: they are consumed and counted. `unanswered` counts commands
//! written whose replies were not all read; a connection is clean only when it is zero, its reader
//! holds no unread byte and its TLS session no unread plaintext ([`Connection::is_reusable`],
//! checked by the pool on every check-in and so before every hand-off to a waiter).
//!
//! Opening a connection (socket options, TLS, the AUTH/SELECT/SETNAME handshake) is in [`setup`].

mod setup;
mod stream;

use std::io::{self, Write};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::{Cmd, Value};

use crate::command::session::{Expect, Session};
use crate::command::{self, Effect, Facts, Family, ORDINARY, Shape, command_name, facts};
use crate::error::{Error, ErrorKind, Result};
use crate::resp::{ReadError, ReplyReader};
pub(crate) use setup::Connector;
use stream::Stream;

const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
const EXEC: &[u8] = b"*1\r\n$4\r\nEXEC\r\n";
const DISCARD_AND_UNWATCH: &[u8] = b"*1\r\n$7\r\nDISCARD\r\n*1\r\n$7\r\nUNWATCH\r\n";
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

const MULTI_FACTS: Facts = Facts {
    shape: Shape::One,
    effect: Effect::Multi,
};
const EXEC_FACTS: Facts = Facts {
    shape: Shape::One,
    effect: Effect::EndTransaction,
};
const UNWATCH_FACTS: Facts = Facts {
    shape: Shape::One,
    effect: Effect::Unwatch,
};

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// The id the next connection opened in this process will get: every connection opened before
/// this call has a smaller one (ids only grow).
pub(crate) fn next_connection_id() -> u64 {
    NEXT_CONNECTION_ID.load(Ordering::Relaxed)
}

/// An open, authenticated connection. Owned by the pool while idle and by one caller while in use.
pub(crate) struct Connection {
    stream: Stream,
    reader: ReplyReader,
    buf: Vec<u8>,
    /// The facts of each command of the request being exchanged (computed once per command).
    facts: Vec<Facts>,
    server: Arc<str>,
    session: Session,
    /// How long an exchange may take when the caller gives no deadline (`socket_timeout`).
    socket_timeout: Duration,
    /// Commands written whose replies were not all read. Zero is the only clean state: a
    /// timeout, an I/O error, a protocol error or a panic in between leaves it above zero.
    unanswered: usize,
    /// The stream is out of step (bytes arrived that answer nothing) or its settling failed.
    poisoned: bool,
    /// The caller asked for this connection to be closed rather than reused.
    discarded: bool,
    /// Frames consumed that answered no command (RESP3 pushes, published messages), not yet
    /// added to the pool's counters.
    out_of_band: u64,
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
    fn new(
        stream: Stream,
        server: Arc<str>,
        max_reply_bytes: u64,
        socket_timeout: Duration,
        fork_generation: u64,
    ) -> Connection {
        Connection {
            stream,
            reader: ReplyReader::new(max_reply_bytes),
            buf: Vec::with_capacity(256),
            facts: Vec::new(),
            server,
            session: Session::default(),
            socket_timeout,
            unanswered: 0,
            poisoned: false,
            discarded: false,
            out_of_band: 0,
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            created_at: Instant::now(),
            last_used: Instant::now(),
            retire_at: None,
            fork_generation,
        }
    }

    /// The deadline of an exchange starting now whose caller gives none: `socket_timeout` for
    /// the whole exchange (every write and every read of every reply).
    pub fn default_deadline(&self) -> Instant {
        Instant::now() + self.socket_timeout
    }

    /// Sends one command and reads its replies (see [`Connection::request_pipeline`] for what a
    /// command with other than one reply gives). A server error reply is returned as
    /// `Value::ServerError` (the connection stays clean); every other failure leaves it unusable.
    pub fn request(&mut self, cmd: &Cmd, deadline: Instant) -> Result<Value> {
        self.prepare(std::slice::from_ref(cmd), deadline)?;
        self.send_buffer(1)?;
        let value = self.read_answer(self.facts[0])?;
        self.unanswered -= 1;
        Ok(value)
    }

    /// Sends `cmds` in one write and reads each command's replies, in order: one value per
    /// command. A command the server does not answer (`CLIENT REPLY OFF|SKIP`) gives `Nil`; one
    /// answered with several confirmations (`UNSUBSCRIBE a b`) gives them as one array.
    pub fn request_pipeline(&mut self, cmds: &[Cmd], deadline: Instant) -> Result<Vec<Value>> {
        self.prepare(cmds, deadline)?;
        self.send_buffer(cmds.len())?;
        let mut values = Vec::with_capacity(cmds.len());
        for index in 0..cmds.len() {
            values.push(self.read_answer(self.facts[index])?);
            self.unanswered -= 1;
        }
        Ok(values)
    }

    /// Runs `cmds` inside MULTI/EXEC. Returns `None` when EXEC was aborted by a WATCH conflict,
    /// else each command's reply (a runtime error of one command is a `Value::ServerError` in its
    /// place). If the server rejected a command while queueing, the transaction is discarded and
    /// a Response error names the command. If it refused MULTI itself, the commands ran one by
    /// one outside a transaction, and the error says so and how many were applied.
    pub fn request_transaction(
        &mut self,
        cmds: &[Cmd],
        deadline: Instant,
    ) -> Result<Option<Vec<Value>>> {
        if self.session.in_transaction() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "a MULTI is already open on this connection: send EXEC or DISCARD first",
            ));
        }
        self.check_stream()?;
        self.facts.clear();
        self.facts.extend(cmds.iter().map(facts));
        command::refuse_in_transaction_body(cmds, &self.facts)?;
        self.stream.set_deadline(deadline);
        self.buf.clear();
        self.buf.extend_from_slice(MULTI);
        for cmd in cmds {
            cmd.write_packed_command(&mut self.buf);
        }
        self.buf.extend_from_slice(EXEC);
        self.send_buffer(cmds.len() + 2)?;
        let multi = self.read_answer(MULTI_FACTS)?;
        self.unanswered -= 1;
        let mut queued = Vec::with_capacity(cmds.len());
        for index in 0..cmds.len() {
            queued.push(self.read_answer(self.facts[index])?);
            self.unanswered -= 1;
        }
        let exec = self.read_answer(EXEC_FACTS)?;
        self.unanswered -= 1;
        if let Value::ServerError(refusal) = multi {
            return Err(self.ran_without_transaction(cmds, &refusal, &queued, &exec));
        }
        let rejected: Vec<(usize, Error)> = queued
            .iter()
            .enumerate()
            .filter_map(|(index, reply)| match reply {
                Value::ServerError(err) => {
                    Some((index, Error::from_server_reply(err.code(), err.details())))
                }
                _ => None,
            })
            .collect();
        // Only when EXEC says the transaction was discarded (any Redis since 2.6.5 does, after a
        // rejected command): were it to run the others, its reply is out of step below.
        if let (Some((index, first)), Value::ServerError(_)) = (rejected.first(), &exec) {
            return Err(Error::new(
                ErrorKind::Response,
                format!(
                    "EXECABORT transaction discarded: command {} ({}) was rejected: {}",
                    index + 1,
                    command_name(&cmds[*index]),
                    first.message()
                ),
            )
            .sent()
            .with_rejected_commands(rejected));
        }
        match exec {
            Value::Array(items) if items.len() == cmds.len() => Ok(Some(items)),
            Value::Array(items) => {
                self.poisoned = true;
                Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "EXEC reply from {} out of step: {} replies for {} commands; the \
                         connection is closed",
                        self.server,
                        items.len(),
                        cmds.len()
                    ),
                )
                .sent())
            }
            Value::Nil => Ok(None),
            Value::ServerError(err) => Err(Error::from_server_reply(err.code(), err.details())),
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!("unexpected EXEC reply from {}: {other:?}", self.server),
            )
            .sent()),
        }
    }

    /// The error of a transaction whose MULTI the server refused (an ACL without `multi`,
    /// LOADING, BUSY): its commands were not queued but run one by one.
    fn ran_without_transaction(
        &self,
        cmds: &[Cmd],
        refusal: &redis::ServerError,
        replies: &[Value],
        exec: &Value,
    ) -> Error {
        let applied = replies
            .iter()
            .filter(|reply| !matches!(reply, Value::ServerError(_)))
            .count();
        let outcome = match applied {
            0 => "none of them was applied (each was refused too)".to_string(),
            n => format!(
                "{n} of them answered without error and may have been applied (not atomically)"
            ),
        };
        let exec = match exec {
            Value::ServerError(err) => format!("{} {}", err.code(), err.details().unwrap_or("")),
            other => format!("{other:?}"),
        };
        // The server's refusal first, with its code (NOPERM, LOADING, ...): it is a server error
        // reply, classified as one in every language, never taken for a lost connection.
        Error::from_server_reply(refusal.code(), refusal.details()).explained(format!(
            "MULTI was refused by {}, so the transaction's {} command(s) ran one by one outside \
             a transaction: {outcome}; EXEC answered {}",
            self.server,
            cmds.len(),
            exec.trim_end()
        ))
    }

    /// Whether the server serves on this connection: a PING by `socket_timeout` answered, a
    /// refusal by the ACL (NOPERM) counting as an answer. An error reply otherwise (`ERR max
    /// number of clients reached`, LOADING, BUSY, MASTERDOWN) or none is an error.
    pub fn answers_ping(&mut self) -> Result<()> {
        let deadline = self.default_deadline();
        match self.ping(deadline) {
            Err(err) if err.server_code() == Some("NOPERM") => Ok(()),
            answer => answer,
        }
    }

    /// PINGs and reads the answer.
    pub fn ping(&mut self, deadline: Instant) -> Result<()> {
        match self.exchange_encoded(PING, 1, deadline)?.pop() {
            Some(Value::ServerError(err)) => {
                Err(Error::from_server_reply(err.code(), err.details()))
            }
            _ => Ok(()),
        }
    }

    /// Writes `bytes`, `count` ordinary commands already encoded (the handshake, PING), and reads
    /// their replies, all by `deadline`.
    fn exchange_encoded(
        &mut self,
        bytes: &[u8],
        count: usize,
        deadline: Instant,
    ) -> Result<Vec<Value>> {
        self.check_stream()?;
        self.stream.set_deadline(deadline);
        self.unanswered += count;
        self.write_all(bytes)?;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            values.push(self.read_answer(ORDINARY)?);
            self.unanswered -= 1;
        }
        Ok(values)
    }

    /// Ends any MULTI and WATCH the caller may have left open, whatever this side believes:
    /// DISCARD then UNWATCH, in one write (a DISCARD without MULTI is refused harmlessly). Marks the
    /// connection unusable unless the server confirmed both.
    pub fn settle_session(&mut self) {
        let deadline = self.default_deadline();
        self.stream.set_deadline(deadline);
        let settled = self.check_stream().is_ok() && {
            self.unanswered += 2;
            self.write_all(DISCARD_AND_UNWATCH).is_ok()
                && self.read_answer(EXEC_FACTS).is_ok()
                && self.read_answer(UNWATCH_FACTS).is_ok()
        };
        if settled && !self.session.needs_settling() {
            self.unanswered = 0;
        } else {
            self.poisoned = true;
        }
    }

    /// The guard every check-in passes: true only when no request is half done (every reply of
    /// every command written was read), no received byte waits unread (in the reader, or as
    /// decrypted TLS plaintext), and the caller left no state behind. No system call.
    pub fn is_reusable(&mut self) -> bool {
        self.unanswered == 0
            && !self.poisoned
            && !self.discarded
            && !self.session.is_tainted()
            && self.reader.is_empty()
            && !self.stream.has_unread_plaintext()
    }

    /// Marks the connection to be closed when it is returned.
    pub fn mark_discarded(&mut self) {
        self.discarded = true;
    }

    /// True when the caller discarded it or left state behind that cannot be reset.
    pub fn is_discarded(&self) -> bool {
        self.discarded || self.session.is_tainted()
    }

    /// True when a MULTI or WATCH may be left open (`settle_session` would send something).
    pub fn needs_settling(&self) -> bool {
        self.session.needs_settling()
    }

    /// Frames consumed since the last call that answered no command (RESP3 pushes such as
    /// client-tracking invalidations, published messages).
    pub fn take_out_of_band(&mut self) -> u64 {
        std::mem::take(&mut self.out_of_band)
    }

    /// A non-blocking look at an idle socket: false when the server closed it (CLIENT KILL, idle
    /// timeout, restart) or when unexpected bytes wait to be read (in the reader's buffer or the
    /// socket), which would be read as the reply to the next command. One
    /// `recv(MSG_PEEK | MSG_DONTWAIT)` call; on TLS, bytes waiting are taken into the session and
    /// decrypted, as a server that closes sends its `close_notify` first
    /// (`Stream::tls_idle_and_open`).
    pub fn is_idle_and_open(&mut self) -> bool {
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
            _ => self.stream.is_tls() && self.stream.tls_idle_and_open(),
        }
    }

    /// The socket's file descriptor (for socket-option checks and shutdown on close).
    pub fn raw_fd(&self) -> RawFd {
        self.stream.raw_fd()
    }

    /// Checks `cmds` and encodes them into the write buffer, their facts into `facts`: a request
    /// that could not be read back is refused (see [`Connection::check_stream`]), and so are
    /// commands never sent or that cannot be queued in an open MULTI.
    fn prepare(&mut self, cmds: &[Cmd], deadline: Instant) -> Result<()> {
        self.check_stream()?;
        self.stream.set_deadline(deadline);
        self.facts.clear();
        self.facts.extend(cmds.iter().map(facts));
        command::refuse_in_pipeline(cmds, &self.facts, self.session.in_transaction())?;
        self.buf.clear();
        for (cmd, facts) in cmds.iter().zip(&self.facts) {
            cmd.write_packed_command(&mut self.buf);
            if facts.effect == Effect::Watch {
                self.session.watch_sent();
            }
        }
        Ok(())
    }

    /// Refuses any request on a connection streaming MONITOR output, on one whose earlier
    /// request failed before all its replies were read (the caller of a checked-out connection
    /// may try again after a timeout or an interruption), and on one with bytes already waiting:
    /// its reply stream is out of step, and it is closed.
    fn check_stream(&mut self) -> Result<()> {
        if self.session.is_streaming() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "this connection carries MONITOR's stream and takes no more requests; release it \
                 (it is closed) and use another",
            ));
        }
        if self.unanswered > 0 || self.poisoned {
            // An earlier request failed part-way (a timeout, an I/O error, an interruption): its
            // replies may still come, and would be read as the answers to this one.
            self.poisoned = true;
            return Err(Error::new(
                ErrorKind::Connection,
                format!(
                    "an earlier request on this connection to {} failed before all its replies \
                     were read, so its replies are out of step; the connection is closed: \
                     release it and use another",
                    self.server
                ),
            ));
        }
        if !self.reader.is_empty() || self.stream.has_unread_plaintext() {
            self.poisoned = true;
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{} sent bytes that answer no request (the reply stream is out of step); \
                     the connection is closed",
                    self.server
                ),
            ));
        }
        Ok(())
    }

    /// Writes the buffer holding `commands` commands.
    fn send_buffer(&mut self, commands: usize) -> Result<()> {
        self.unanswered += commands;
        let buf = std::mem::take(&mut self.buf);
        let result = self.write_all(&buf);
        self.buf = buf;
        result
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> Result<()> {
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

    /// Reads everything the server sends for the next command (whose facts are `facts`), as its
    /// session expects, and records what the answer proves about the session.
    fn read_answer(&mut self, facts: Facts) -> Result<Value> {
        if facts == ORDINARY && self.session.answers_ordinary_commands() {
            return self.read_frame(None); // one frame, nothing to record: almost every reply
        }
        let value = match self.session.expect(&facts) {
            Expect::Nothing => Value::Nil,
            Expect::One => self.read_frame(None)?,
            Expect::Confirmations {
                family,
                subscribes,
                count,
            } => self.read_confirmations(family, subscribes, count)?,
        };
        self.session.answered(&facts, &value);
        Ok(value)
    }

    /// Reads `count` confirmations of the SUBSCRIBE family, each checked to be one; an error in
    /// place of the first is the whole answer (the server refused the command before running it).
    fn read_confirmations(
        &mut self,
        family: Family,
        subscribes: bool,
        count: u32,
    ) -> Result<Value> {
        let word = family.confirmation(subscribes);
        let mut frames = Vec::new();
        for index in 0..count {
            let frame = self.read_frame(Some(word))?;
            if index == 0 && matches!(frame, Value::ServerError(_)) {
                return Ok(frame);
            }
            match &frame {
                Value::Array(items) if first_word_is(items, word) => {
                    self.session.confirmed(family, subscribes, items);
                }
                other => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "reply from {} out of step: expected a {word} confirmation, got \
                             {other:?}; the connection is closed",
                            self.server
                        ),
                    )
                    .sent());
                }
            }
            frames.push(frame);
        }
        Ok(match frames.len() {
            1 => frames.pop().unwrap_or(Value::Nil),
            _ => Value::Array(frames),
        })
    }

    /// Reads the next frame that answers a command. Frames that answer none are consumed and
    /// counted: RESP3 pushes (but for a `confirmation` the caller waits for, which RESP3 sends as
    /// a push and which is returned as an array, as RESP2 sends it), and published messages on a
    /// subscribed RESP2 connection.
    fn read_frame(&mut self, confirmation: Option<&str>) -> Result<Value> {
        loop {
            let value = match self.reader.read(&mut self.stream) {
                Ok(value) => value,
                Err(err) => return Err(self.map_read_error(err).sent()),
            };
            match value {
                Value::Push { kind, data } => {
                    let kind = kind.to_string();
                    if confirmation == Some(kind.as_str()) {
                        let mut items = vec![Value::BulkString(kind.into_bytes())];
                        items.extend(data);
                        return Ok(Value::Array(items));
                    }
                }
                Value::Array(items) if self.session.subscribed() && is_published(&items) => {}
                other => return Ok(other),
            }
            self.out_of_band += 1;
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

/// True when `items` starts with the bulk string `word`.
fn first_word_is(items: &[Value], word: &str) -> bool {
    matches!(items.first(), Some(Value::BulkString(first)) if first == word.as_bytes())
}

/// True for a message published to a subscribed RESP2 connection (`message`, `pmessage`,
/// `smessage` arrays): while subscribed, no reply to a command starts with those words.
fn is_published(items: &[Value]) -> bool {
    [Family::Channels, Family::Patterns, Family::ShardChannels]
        .iter()
        .any(|family| first_word_is(items, family.message()))
}
