//! A fault-injection TCP proxy for the integration tests (`/work/shared/TESTING.md`, "A fault proxy
//! for tests"). It listens on `127.0.0.1:<free port>`, forwards every accepted connection (a
//! *link*) to `127.0.0.1:<upstream port>`, and on command adds latency, blackholes traffic, resets
//! every link, refuses or hangs new connections, loses replies or cuts them short. It counts
//! accepts and bytes per direction, and stops cleanly (no leftover threads or sockets).
//!
//! Runs in-process; only `std` and `libc` (`poll(2)`, `SO_LINGER`).
//!
//! Threads: one accept thread (`fpx<ID>-acc`) plus one thread per link (`fpx<ID>-l<N>`), which
//! moves bytes in both directions over non-blocking sockets with `poll(2)` and a 10 ms tick to
//! notice control changes. Every loop is bounded by that tick; nothing spins.
//!
//! Guarantees the controls give the tests:
//! - [`FaultProxy::set_latency`], [`FaultProxy::blackhole`] and [`FaultProxy::cut_reply_after`]
//!   return only once every live link has seen the new setting, so bytes a test sends after the
//!   call are handled under it.
//! - [`FaultProxy::refuse_new`] and [`FaultProxy::hang_new`] apply exactly to the client connects
//!   that complete after the call (earlier ones still waiting in the backlog are accepted under
//!   the old setting before the call returns).
//! - [`FaultProxy::reset_all`] returns once every link it reset is gone (RST already sent).
//! - [`FaultProxy::stop`] / `Drop` return once the listener is closed and every thread joined.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often idle threads look at the control flags.
const TICK: Duration = Duration::from_millis(10);
/// Upstream connect timeout (loopback: refused or accepted at once in practice).
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest chunk read at once.
const CHUNK: usize = 64 * 1024;
/// Per-direction queue limit; above it the proxy stops reading (back-pressure).
const MAX_QUEUED: usize = 1 << 20;
/// Bound on how long a control call waits for the links to see a new setting.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_PROXY_ID: AtomicUsize = AtomicUsize::new(0);

/// What a link thread is told to do by the controller.
const KEEP: u8 = 0;
const CLOSE: u8 = 1;
const RESET: u8 = 2;

/// An in-process fault-injection proxy in front of `127.0.0.1:<upstream port>`.
pub struct FaultProxy {
    shared: Arc<Shared>,
    port: u16,
    accept_thread: Option<JoinHandle<()>>,
}

struct Shared {
    id: usize,
    upstream: SocketAddr,
    stopping: AtomicBool,
    /// Bumped after every setting change that links must acknowledge (see `sync_links`).
    epoch: AtomicU64,
    latency_us: AtomicU64,
    /// Server-to-client bytes go one at a time, this far apart (0: off).
    dribble_us: AtomicU64,
    blackhole: AtomicBool,
    /// Wanted settings for new connections; the accept thread switches to them at a precise
    /// point (see `sync_accept`).
    refuse_new: AtomicBool,
    hang_new: AtomicBool,
    /// Bumped by `refuse_new`/`hang_new`; the accept thread acknowledges in `accept_ack`.
    accept_req: AtomicU64,
    accept_ack: AtomicU64,
    lose_pending: AtomicUsize,
    replies_lost: AtomicUsize,
    cut: Mutex<CutRule>,
    accepted: AtomicUsize,
    live: AtomicUsize,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    links: Mutex<Vec<LinkEntry>>,
    next_link: AtomicUsize,
}

#[derive(Clone, Copy)]
struct CutRule {
    /// Bumped by every `cut_reply_after` call; a link restarts its count when it changes.
    generation: u64,
    limit: Option<usize>,
}

struct LinkEntry {
    ctl: Arc<LinkCtl>,
    handle: JoinHandle<()>,
}

struct LinkCtl {
    /// `KEEP`, `CLOSE` or `RESET`.
    kill: AtomicU8,
    /// The last `Shared::epoch` this link loaded its settings under (`u64::MAX`: never forwards).
    seen: AtomicU64,
    /// The link thread has closed its sockets and is about to end.
    done: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultProxy {
    /// Starts a proxy listening on `127.0.0.1:<free port>` that forwards to
    /// `127.0.0.1:upstream_port`. Panics if it cannot bind or spawn its accept thread.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("fault proxy: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("fault proxy: set_nonblocking on listener");
        let port = listener
            .local_addr()
            .expect("fault proxy: local_addr")
            .port();
        let id = NEXT_PROXY_ID.fetch_add(1, SeqCst);
        let shared = Arc::new(Shared {
            id,
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            stopping: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            dribble_us: AtomicU64::new(0),
            blackhole: AtomicBool::new(false),
            refuse_new: AtomicBool::new(false),
            hang_new: AtomicBool::new(false),
            accept_req: AtomicU64::new(0),
            accept_ack: AtomicU64::new(0),
            lose_pending: AtomicUsize::new(0),
            replies_lost: AtomicUsize::new(0),
            cut: Mutex::new(CutRule {
                generation: 0,
                limit: None,
            }),
            accepted: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            links: Mutex::new(Vec::new()),
            next_link: AtomicUsize::new(0),
        });
        let s = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name(format!("fpx{id}-acc"))
            .spawn(move || accept_loop(&s, listener))
            .expect("fault proxy: spawn accept thread");
        FaultProxy {
            shared,
            port,
            accept_thread: Some(accept_thread),
        }
    }

    /// The port the proxy listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The upstream port everything is forwarded to.
    pub fn upstream_port(&self) -> u16 {
        self.shared.upstream.port()
    }

    /// Delays every chunk forwarded in either direction by `d` (a round trip gains `2 * d`);
    /// `Duration::ZERO` turns it off. Chunks already queued keep their delay; order is kept.
    pub fn set_latency(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_us.store(us, SeqCst);
        self.sync_links();
    }

    /// Forwards what the server sends one byte at a time, `interval` apart (a server or network
    /// that dribbles a reply); `None` turns it off. Bytes already queued keep their timing.
    pub fn dribble(&self, interval: Option<Duration>) {
        let us = interval.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.shared.dribble_us.store(us, SeqCst);
        self.sync_links();
    }

    /// While on, every link keeps its sockets open but forwards nothing in either direction.
    /// Data is *held*, not discarded: the proxy stops reading (bytes wait in the kernel buffers)
    /// and stops writing what it had queued, so turning it off resumes both streams intact, like
    /// a healed network partition. New connections are still accepted and connected upstream,
    /// then held the same way.
    pub fn blackhole(&self, on: bool) {
        self.shared.blackhole.store(on, SeqCst);
        self.sync_links();
    }

    /// Resets every live link on both sides (`SO_LINGER` 0, then close: the client and the server
    /// get an RST). Returns once those links are gone. New connections are unaffected.
    pub fn reset_all(&self) {
        let links = std::mem::take(&mut *lock(&self.shared.links));
        for link in &links {
            link.ctl.kill.store(RESET, SeqCst);
        }
        for link in links {
            let _ = link.handle.join();
        }
    }

    /// While on, new client connections are accepted and immediately reset (RST). The client's
    /// TCP connect succeeds (the kernel completes it); its first read or write fails.
    ///
    /// Like [`FaultProxy::hang_new`], it applies exactly to the connects that complete after the
    /// call: connections the kernel had already completed are accepted under the old setting
    /// before it returns.
    pub fn refuse_new(&self, on: bool) {
        self.shared.refuse_new.store(on, SeqCst);
        self.sync_accept();
    }

    /// While on, new client connections are accepted but never connected upstream: whatever they
    /// send is read and discarded and nothing ever comes back. Such a link stays hung until the
    /// client closes it, [`FaultProxy::reset_all`] or stop (turning this off does not release it).
    ///
    /// Applies exactly to the connects that complete after the call (see
    /// [`FaultProxy::refuse_new`]).
    pub fn hang_new(&self, on: bool) {
        self.shared.hang_new.store(on, SeqCst);
        self.sync_accept();
    }

    /// Loses the next `n` replies (replaces any pending count). A reply is the first
    /// server->client bytes arriving on a link after the proxy forwarded client bytes to the
    /// server. For each lost reply the counter drops by exactly one at the moment those bytes
    /// arrive, and the link is closed on both sides (FIN) without forwarding them: the server has
    /// executed the command, the client sees EOF. Server pushes that follow no request and the
    /// rest of a multi-chunk reply do not count. Data of earlier replies still queued by
    /// latency is dropped with the link.
    pub fn lose_next_replies(&self, n: usize) {
        self.shared.lose_pending.store(n, SeqCst);
    }

    /// How many replies [`FaultProxy::lose_next_replies`] still has to lose.
    pub fn pending_lost_replies(&self) -> usize {
        self.shared.lose_pending.load(SeqCst)
    }

    /// How many replies have been lost so far.
    pub fn replies_lost(&self) -> usize {
        self.shared.replies_lost.load(SeqCst)
    }

    /// `Some(n)`: every link forwards at most `n` bytes of server->client data, counted from the
    /// later of the link's start and this call, and is closed on both sides (FIN after the `n`th
    /// byte) as soon as it has forwarded them (with `n == 0`: when server data first arrives).
    /// `None` turns it off.
    pub fn cut_reply_after(&self, bytes: Option<usize>) {
        {
            let mut cut = lock(&self.shared.cut);
            cut.generation += 1;
            cut.limit = bytes;
        }
        self.sync_links();
    }

    /// Client connections accepted so far (including refused and hung ones).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(SeqCst)
    }

    /// Links whose thread is still running (forwarding, blackholed or hung).
    pub fn live_links(&self) -> usize {
        self.shared.live.load(SeqCst)
    }

    /// Bytes delivered to the server (client->server), counted when written.
    pub fn bytes_up(&self) -> u64 {
        self.shared.bytes_up.load(SeqCst)
    }

    /// Bytes delivered to clients (server->client), counted when written (lost and cut-off
    /// bytes are not counted).
    pub fn bytes_down(&self) -> u64 {
        self.shared.bytes_down.load(SeqCst)
    }

    /// The prefix of the names of this proxy's threads (`"fpx<ID>-"`), as shown in
    /// `/proc/self/task/*/comm`; lets a test check that none is left.
    pub fn thread_name_prefix(&self) -> String {
        format!("fpx{}-", self.shared.id)
    }

    /// Stops accepting (the listening socket is closed), closes every link and joins every
    /// thread. Same as dropping the proxy. Panics if a proxy thread had panicked.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(accept) = self.accept_thread.take() else {
            return;
        };
        self.shared.stopping.store(true, SeqCst);
        // The accept thread owns the listener: once joined, the port is closed and no link can
        // be added.
        let mut panicked = accept.join().is_err();
        let links = std::mem::take(&mut *lock(&self.shared.links));
        for link in &links {
            link.ctl.kill.store(CLOSE, SeqCst);
        }
        for link in links {
            panicked |= link.handle.join().is_err();
        }
        if panicked && !thread::panicking() {
            panic!("fault proxy: a proxy thread panicked");
        }
    }

    /// Waits (at most `SYNC_TIMEOUT`) until the accept thread has accepted, under the old
    /// settings, every connection already waiting in the backlog and switched to the new ones.
    fn sync_accept(&self) {
        let target = self.shared.accept_req.fetch_add(1, SeqCst) + 1;
        let deadline = Instant::now() + SYNC_TIMEOUT;
        while self.shared.accept_ack.load(SeqCst) < target && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits (at most `SYNC_TIMEOUT`) until every live forwarding link has loaded its settings
    /// after the change just made. Links accepted later load them fresh anyway.
    fn sync_links(&self) {
        let target = self.shared.epoch.fetch_add(1, SeqCst) + 1;
        let ctls: Vec<Arc<LinkCtl>> = lock(&self.shared.links)
            .iter()
            .map(|l| Arc::clone(&l.ctl))
            .collect();
        let deadline = Instant::now() + SYNC_TIMEOUT;
        while Instant::now() < deadline {
            let synced = ctls
                .iter()
                .all(|c| c.done.load(SeqCst) || c.seen.load(SeqCst) >= target);
            if synced {
                return;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------------------------
// Accept thread
// ---------------------------------------------------------------------------------------------

/// The settings the accept thread applies to new connections.
#[derive(Clone, Copy)]
struct AcceptRules {
    refuse: bool,
    hang: bool,
}

fn accept_loop(shared: &Arc<Shared>, listener: TcpListener) {
    let mut rules = AcceptRules {
        refuse: false,
        hang: false,
    };
    let mut ack = 0;
    while !shared.stopping.load(SeqCst) {
        let req = shared.accept_req.load(SeqCst);
        if req != ack {
            // Connections completed before the change was asked for are in the backlog now:
            // accept them under the old rules, then switch.
            while let Ok((client, _)) = listener.accept() {
                shared.accepted.fetch_add(1, SeqCst);
                on_accept(shared, client, rules);
            }
            rules = AcceptRules {
                refuse: shared.refuse_new.load(SeqCst),
                hang: shared.hang_new.load(SeqCst),
            };
            ack = req;
            shared.accept_ack.store(req, SeqCst);
        }
        match listener.accept() {
            Ok((client, _)) => {
                shared.accepted.fetch_add(1, SeqCst);
                on_accept(shared, client, rules);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                poll_one(listener.as_raw_fd(), libc::POLLIN, TICK);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // E.g. EMFILE: back off instead of spinning.
            Err(_) => thread::sleep(TICK),
        }
        prune_finished(shared);
    }
    // `listener` is dropped here: the port is closed (pending connects get RST).
}

fn on_accept(shared: &Arc<Shared>, client: TcpStream, rules: AcceptRules) {
    if rules.refuse {
        reset_close(client);
        return;
    }
    let hang = rules.hang;
    let n = shared.next_link.fetch_add(1, SeqCst);
    // Under the lock, so that `sync_links` either waits for this link or the link loads the
    // new settings itself (it starts after the lock is released).
    let mut links = lock(&shared.links);
    let ctl = Arc::new(LinkCtl {
        kill: AtomicU8::new(KEEP),
        seen: AtomicU64::new(if hang {
            u64::MAX
        } else {
            shared.epoch.load(SeqCst)
        }),
        done: AtomicBool::new(false),
    });
    shared.live.fetch_add(1, SeqCst);
    let (s, c) = (Arc::clone(shared), Arc::clone(&ctl));
    let spawned = thread::Builder::new()
        .name(format!("fpx{}-l{n}", shared.id))
        .spawn(move || {
            let _guard = LinkGuard {
                shared: &s,
                ctl: &c,
            };
            run_link(&s, &c, client, hang);
        });
    match spawned {
        Ok(handle) => links.push(LinkEntry { ctl, handle }),
        // The closure (with `client`) was dropped: the connection is closed.
        Err(_) => {
            shared.live.fetch_sub(1, SeqCst);
        }
    }
}

/// Joins the threads of links that have ended.
fn prune_finished(shared: &Shared) {
    let mut links = lock(&shared.links);
    if !links.iter().any(|l| l.handle.is_finished()) {
        return;
    }
    let (finished, running): (Vec<LinkEntry>, Vec<LinkEntry>) = std::mem::take(&mut *links)
        .into_iter()
        .partition(|l| l.handle.is_finished());
    *links = running;
    drop(links);
    for link in finished {
        let _ = link.handle.join();
    }
}

/// Marks a link as gone when its thread ends (after its sockets are closed), even on panic.
struct LinkGuard<'a> {
    shared: &'a Shared,
    ctl: &'a LinkCtl,
}

impl Drop for LinkGuard<'_> {
    fn drop(&mut self) {
        self.ctl.done.store(true, SeqCst);
        self.shared.live.fetch_sub(1, SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// Link threads
// ---------------------------------------------------------------------------------------------

/// How a link ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    /// FIN on both sides (`shutdown(Both)`, then close).
    Close,
    /// RST on both sides (`SO_LINGER` 0, then close).
    Reset,
}

fn kill_requested(shared: &Shared, ctl: &LinkCtl) -> Option<End> {
    match ctl.kill.load(SeqCst) {
        RESET => Some(End::Reset),
        CLOSE => Some(End::Close),
        _ if shared.stopping.load(SeqCst) => Some(End::Close),
        _ => None,
    }
}

fn run_link(shared: &Shared, ctl: &LinkCtl, client: TcpStream, hang: bool) {
    if client.set_nonblocking(true).is_err() {
        return;
    }
    let _ = client.set_nodelay(true);
    if hang {
        let end = hang_link(shared, ctl, &client);
        finish(client, None, end);
        return;
    }
    let server = match TcpStream::connect_timeout(&shared.upstream, UPSTREAM_CONNECT_TIMEOUT) {
        Ok(server) => server,
        Err(_) => {
            // Upstream down: the client sees a reset, as if the server had refused it.
            reset_close(client);
            return;
        }
    };
    if server.set_nonblocking(true).is_err() {
        finish(client, Some(server), End::Reset);
        return;
    }
    let _ = server.set_nodelay(true);
    let end = pump(shared, ctl, &client, &server);
    finish(client, Some(server), end);
}

/// A hung link: reads and discards the client's bytes, never answers, ends on EOF or when told.
fn hang_link(shared: &Shared, ctl: &LinkCtl, client: &TcpStream) -> End {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = kill_requested(shared, ctl) {
            return end;
        }
        match read_some(client, &mut buf) {
            Ok(Some(0)) => return End::Close,
            Ok(Some(_)) => {}
            Ok(None) => poll_one(client.as_raw_fd(), libc::POLLIN, TICK),
            Err(_) => return End::Reset,
        }
    }
}

/// One direction of a link: chunks read from the source, each with the instant it may be
/// written to the destination.
#[derive(Default)]
struct Pipe {
    queue: VecDeque<(Instant, Vec<u8>)>,
    /// Bytes of the front chunk already written.
    offset: usize,
    /// Bytes queued and not yet written.
    queued: usize,
    /// The source sent EOF.
    src_eof: bool,
    /// EOF was passed on to the destination (`shutdown(Write)`).
    dst_shut: bool,
}

impl Pipe {
    fn push(&mut self, due: Instant, data: &[u8]) {
        self.queued += data.len();
        self.queue.push_back((due, data.to_vec()));
    }

    fn front_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    fn has_due(&self, now: Instant) -> bool {
        self.front_due().is_some_and(|due| due <= now)
    }

    fn can_read(&self) -> bool {
        !self.src_eof && self.queued < MAX_QUEUED
    }

    /// Writes due data to `dst` without blocking, at most `limit` bytes; returns how many.
    fn flush(&mut self, dst: &TcpStream, now: Instant, mut limit: usize) -> io::Result<usize> {
        let mut total = 0;
        while limit > 0 {
            let Some((due, chunk)) = self.queue.front() else {
                break;
            };
            if *due > now {
                break;
            }
            let end = chunk.len().min(self.offset.saturating_add(limit));
            match (&*dst).write(&chunk[self.offset..end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    total += n;
                    limit -= n;
                    self.offset += n;
                    self.queued -= n;
                    if self.offset == chunk.len() {
                        self.queue.pop_front();
                        self.offset = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}

/// Moves bytes both ways until the link ends; returns how to close it.
fn pump(shared: &Shared, ctl: &LinkCtl, client: &TcpStream, server: &TcpStream) -> End {
    let mut up = Pipe::default(); // client -> server
    let mut down = Pipe::default(); // server -> client
    // Client bytes were written to the server and no server bytes have arrived since: the next
    // server bytes start a reply (for `lose_next_replies`).
    let mut awaiting_reply = false;
    let mut cut_generation = lock(&shared.cut).generation;
    let mut cut_count = 0usize;
    // When the last dribbled byte is due (see `FaultProxy::dribble`).
    let mut last_dribbled = Instant::now();
    let mut buf = vec![0u8; CHUNK];
    loop {
        if let Some(end) = kill_requested(shared, ctl) {
            return end;
        }
        // Settings for this round, then acknowledge them (see `FaultProxy::sync_links`).
        let epoch = shared.epoch.load(SeqCst);
        let blackhole = shared.blackhole.load(SeqCst);
        let latency = Duration::from_micros(shared.latency_us.load(SeqCst));
        let dribble = Duration::from_micros(shared.dribble_us.load(SeqCst));
        let cut = *lock(&shared.cut);
        ctl.seen.store(epoch, SeqCst);
        if cut.generation != cut_generation {
            cut_generation = cut.generation;
            cut_count = 0;
        }

        // Reads (non-blocking; nothing while blackholed: the bytes wait in the kernel).
        if !blackhole && up.can_read() {
            match read_some(client, &mut buf) {
                Ok(Some(0)) => up.src_eof = true,
                Ok(Some(n)) => up.push(Instant::now() + latency, &buf[..n]),
                Ok(None) => {}
                Err(_) => return End::Reset,
            }
        }
        if !blackhole && down.can_read() {
            match read_some(server, &mut buf) {
                Ok(Some(0)) => down.src_eof = true,
                Ok(Some(n)) => {
                    if awaiting_reply && take_one(&shared.lose_pending) {
                        shared.replies_lost.fetch_add(1, SeqCst);
                        return End::Close;
                    }
                    awaiting_reply = false;
                    let due = Instant::now() + latency;
                    if dribble.is_zero() {
                        down.push(due, &buf[..n]);
                    } else {
                        for byte in &buf[..n] {
                            last_dribbled = due.max(last_dribbled + dribble);
                            down.push(last_dribbled, std::slice::from_ref(byte));
                        }
                    }
                }
                Ok(None) => {}
                Err(_) => return End::Reset,
            }
        }

        // Writes of what is due.
        if !blackhole {
            let now = Instant::now();
            match up.flush(server, now, usize::MAX) {
                Ok(0) => {}
                Ok(n) => {
                    awaiting_reply = true;
                    shared.bytes_up.fetch_add(n as u64, SeqCst);
                }
                Err(_) => return End::Reset,
            }
            let allowed = cut
                .limit
                .map_or(usize::MAX, |limit| limit.saturating_sub(cut_count));
            match down.flush(client, now, allowed) {
                Ok(n) => {
                    cut_count += n;
                    shared.bytes_down.fetch_add(n as u64, SeqCst);
                    if cut.limit.is_some_and(|limit| cut_count >= limit)
                        && (n > 0 || down.has_due(now))
                    {
                        return End::Close;
                    }
                }
                Err(_) => return End::Reset,
            }
            // Pass half-closes on once everything before them is delivered.
            if up.src_eof && up.queue.is_empty() && !up.dst_shut {
                let _ = server.shutdown(Shutdown::Write);
                up.dst_shut = true;
            }
            if down.src_eof && down.queue.is_empty() && !down.dst_shut {
                let _ = client.shutdown(Shutdown::Write);
                down.dst_shut = true;
            }
            if up.dst_shut && down.dst_shut {
                return End::Close;
            }
        }

        // Wait for readable/writable sockets, the next due chunk or the tick.
        let now = Instant::now();
        let mut timeout = TICK;
        let mut client_events: libc::c_short = 0;
        let mut server_events: libc::c_short = 0;
        if !blackhole {
            if up.can_read() {
                client_events |= libc::POLLIN;
            }
            if down.can_read() {
                server_events |= libc::POLLIN;
            }
            for (pipe, dst_events) in [(&up, &mut server_events), (&down, &mut client_events)] {
                match pipe.front_due() {
                    // Due but not written: the destination would block.
                    Some(due) if due <= now => *dst_events |= libc::POLLOUT,
                    Some(due) => timeout = timeout.min(due - now),
                    None => {}
                }
            }
        }
        let mut fds = [pollfd(client, client_events), pollfd(server, server_events)];
        poll_fds(&mut fds, timeout);
    }
}

/// Takes one from `counter` if it is positive; true if it did.
fn take_one(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// A non-blocking read: `Ok(Some(0))` is EOF, `Ok(None)` means nothing to read now.
fn read_some(stream: &TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match (&*stream).read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn finish(client: TcpStream, server: Option<TcpStream>, end: End) {
    match end {
        End::Close => {
            let _ = client.shutdown(Shutdown::Both);
            if let Some(server) = &server {
                let _ = server.shutdown(Shutdown::Both);
            }
        }
        End::Reset => {
            set_linger_zero(&client);
            if let Some(server) = &server {
                set_linger_zero(server);
            }
        }
    }
    // Dropping closes the sockets (an RST with linger 0).
}

/// Closes `stream` with an RST.
fn reset_close(stream: TcpStream) {
    set_linger_zero(&stream);
    drop(stream);
}

fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `stream` owns a valid socket fd for the duration of the call, and `linger` is a
    // properly initialised `struct linger` whose size is passed alongside it.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast::<libc::c_void>(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// A `pollfd` for `stream`; with no events the entry is ignored (fd -1), so that a hang-up on a
/// socket we do not want to use now cannot make `poll` return at once, again and again.
fn pollfd(stream: &TcpStream, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd: if events == 0 { -1 } else { stream.as_raw_fd() },
        events,
        revents: 0,
    }
}

fn poll_one(fd: libc::c_int, events: libc::c_short, timeout: Duration) {
    let mut fds = [libc::pollfd {
        fd,
        events,
        revents: 0,
    }];
    poll_fds(&mut fds, timeout);
}

/// `poll(2)` for at most `timeout` (rounded up to whole milliseconds); errors such as EINTR only
/// end the wait early.
fn poll_fds(fds: &mut [libc::pollfd], timeout: Duration) {
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structs.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
    }
}
