//! Shared support for the integration tests: a throwaway `redis-server` per test, an oracle RESP
//! client that does not use the crate under test, server-side census helpers and a hard time limit.
//!
//! Included by each test binary with `mod support;`. Only `std` and `libc` are used.
//! See `/work/shared/TESTING.md` for the facts about Redis 7.0 on these machines that shape it.

#![allow(dead_code)]

pub mod cbuild;
pub mod proxy;

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a freshly started server has to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many fresh ports `start_with` tries before giving up.
const PORT_ATTEMPTS: usize = 5;
/// How long `restart` keeps retrying to bind the same port(s).
const RESTART_BIND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `Drop` waits for `SHUTDOWN NOSAVE` before SIGKILL.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Read/write timeout of [`RawClient`].
const RAW_IO_TIMEOUT: Duration = Duration::from_secs(5);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// URL options for a pool whose test asserts a health status through the plumbing, not a
/// latency: the default thresholds (degraded at a 50 ms PING, unhealthy at 100 ms) are crossed by
/// one round trip on a loaded machine or under valgrind.
pub const PLUMBING_ONLY: &str = "health_degraded_latency=10s&health_unhealthy_latency=20s";

/// A name unique within this machine for the life of the process: `prefix` + pid + counter
/// (`"{prefix}-{pid}-{n}"`). Use it for client names and keys.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Runs `f` on its own thread and returns its result, or panics with
/// `"test exceeded its time limit of ..."` if it has not finished within `limit`
/// (a hang is a failure, never a skip). A panic inside `f` is propagated unchanged.
///
/// On timeout the hung thread is abandoned (it cannot be cancelled); the test still fails.
pub fn with_timeout<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name("with_timeout".into())
        .spawn(move || {
            let value = f();
            let _ = tx.send(value);
        })
        .expect("spawn with_timeout thread");
    match rx.recv_timeout(limit) {
        Ok(value) => {
            let _ = handle.join();
            value
        }
        // The sender was dropped without sending: `f` panicked. Re-raise its payload.
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => panic!("with_timeout: worker thread ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("test exceeded its time limit of {limit:?}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server options
// ---------------------------------------------------------------------------------------------

/// Which server certificate a TLS test server presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsKind {
    /// Signed by the throwaway CA, `subjectAltName=IP:127.0.0.1,DNS:localhost`.
    Valid,
    /// Signed by the throwaway CA, but only `subjectAltName=DNS:wrong.example.invalid`:
    /// host name verification against 127.0.0.1/localhost must fail.
    WrongHost,
}

/// How to start a [`RedisServer`]. `Default` is a plain, password-less server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Passed as `--requirepass` (the `default` user's password).
    pub password: Option<String>,
    /// Also open a TLS port (`--tls-auth-clients optional`) with certificates of this kind.
    pub tls: Option<TlsKind>,
    /// Appended verbatim to the `redis-server` command line, e.g. `["--maxclients", "50"]`.
    pub extra_args: Vec<String>,
}

/// Absolute paths of the throwaway PKI of a TLS server.
#[derive(Clone, Debug)]
struct TlsFiles {
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

// ---------------------------------------------------------------------------------------------
// RedisServer
// ---------------------------------------------------------------------------------------------

/// A `redis-server` child process on 127.0.0.1 in its own temporary directory.
///
/// Dropping it shuts the server down (`SHUTDOWN NOSAVE`, SIGKILL after 2 s), always reaps the
/// child and removes the directory.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    tls_port: Option<u16>,
    dir: PathBuf,
    opts: ServerOptions,
    tls_files: Option<TlsFiles>,
}

/// Why one launch attempt failed.
enum LaunchError {
    /// A port was taken between picking and binding it; try other ports (or again later).
    AddrInUse,
    /// Anything else: a broken setup, reported as is.
    Other(String),
}

impl RedisServer {
    /// Starts a plain server with default options. Panics if it cannot be started.
    pub fn start() -> RedisServer {
        RedisServer::start_with(ServerOptions::default())
    }

    /// Starts a server with `opts` on free port(s), retrying with fresh ports up to 5 times if
    /// a port was taken in the meantime. Panics with the server log if it cannot be started,
    /// and with `"redis-server not found: ..."` if the binary is missing.
    pub fn start_with(opts: ServerOptions) -> RedisServer {
        let dir = make_temp_dir();
        let tls_files = opts.tls.map(|kind| make_pki(&dir, kind));
        let mut server = RedisServer {
            child: None,
            port: 0,
            tls_port: None,
            dir,
            opts,
            tls_files,
        };
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let ports = free_ports(if server.opts.tls.is_some() { 2 } else { 1 });
            server.port = ports[0];
            server.tls_port = ports.get(1).copied();
            match server.launch() {
                Ok(child) => {
                    server.child = Some(child);
                    return server;
                }
                Err(LaunchError::AddrInUse) => {
                    last = format!("ports {ports:?} were taken");
                    continue;
                }
                Err(LaunchError::Other(msg)) => panic!("{msg}"),
            }
        }
        panic!("could not start redis-server after {PORT_ATTEMPTS} attempts: {last}");
    }

    /// The plain TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port, if the server was started with [`ServerOptions::tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The process id of the current `redis-server` (it changes on [`RedisServer::restart`]).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    /// `redis://127.0.0.1:PORT` (no credentials).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://127.0.0.1:TLS_PORT` (no credentials). Panics if TLS is off.
    pub fn tls_url(&self) -> String {
        format!(
            "rediss://127.0.0.1:{}",
            self.tls_port.expect("server started without TLS")
        )
    }

    /// Absolute path of the throwaway CA certificate (PEM). Panics if TLS is off.
    pub fn ca_file(&self) -> PathBuf {
        self.tls().ca_cert.clone()
    }

    /// Absolute path of the server certificate (PEM). Panics if TLS is off.
    pub fn server_cert_file(&self) -> PathBuf {
        self.tls().server_cert.clone()
    }

    /// Absolute path of a client certificate signed by the CA (PEM, for mTLS). Panics if TLS is off.
    pub fn client_cert_file(&self) -> PathBuf {
        self.tls().client_cert.clone()
    }

    /// Absolute path of the client certificate's private key (PEM). Panics if TLS is off.
    pub fn client_key_file(&self) -> PathBuf {
        self.tls().client_key.clone()
    }

    /// The server's temporary directory (`--dir`; holds `redis.log` and the certificates).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `--requirepass` password, if any.
    pub fn password(&self) -> Option<&str> {
        self.opts.password.as_deref()
    }

    /// The options the server was started with.
    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// Contents of the server log (`redis.log`), for diagnostics.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Freezes the server with SIGSTOP and waits (at most 5 s) until `/proc/PID/stat` shows
    /// state `T`. The kernel still completes TCP connects to a stopped server; replies never come.
    pub fn stop_process(&self) {
        let pid = self.pid();
        send_signal(pid, libc::SIGSTOP);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if proc_state(pid) == Some('T') {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "redis-server {pid} not stopped (state {:?}) 5 s after SIGSTOP",
                    proc_state(pid)
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Resumes a server frozen by [`RedisServer::stop_process`] (SIGCONT).
    pub fn cont_process(&self) {
        send_signal(self.pid(), libc::SIGCONT);
    }

    /// Kills the server with SIGKILL (no shutdown, no save), reaps it, and starts a new one on the
    /// same port(s), directory and options; retries binding for up to 5 s; waits for PING.
    /// All data and connections are lost.
    pub fn restart(&mut self) {
        self.restart_when(|| {});
    }

    /// Like [`RedisServer::restart`], with the server down until `outage_over` returns (nothing
    /// listens on the port meanwhile): a test waits there for what it needs to see of the outage.
    pub fn restart_when(&mut self, outage_over: impl FnOnce()) {
        self.kill_child();
        outage_over();
        let deadline = Instant::now() + RESTART_BIND_TIMEOUT;
        loop {
            match self.launch() {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(LaunchError::AddrInUse) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(LaunchError::AddrInUse) => panic!(
                    "restart: port {} (tls {:?}) still in use after {RESTART_BIND_TIMEOUT:?}",
                    self.port, self.tls_port
                ),
                Err(LaunchError::Other(msg)) => panic!("restart: {msg}"),
            }
        }
    }

    /// A new oracle connection to the plain port, authenticated if the server has a password.
    /// Panics if it cannot connect or authenticate.
    pub fn raw(&self) -> RawClient {
        RawClient::connect(self.port, self.password())
            .unwrap_or_else(|e| panic!("raw connection to 127.0.0.1:{}: {e}", self.port))
    }

    /// `CLIENT LIST`, one map of its `k=v` fields per connection (including the one asking).
    pub fn client_list(&self) -> Vec<HashMap<String, String>> {
        let reply = self.raw().cmd_str(&["CLIENT", "LIST"]);
        let text = reply
            .as_str()
            .unwrap_or_else(|| panic!("CLIENT LIST: unexpected reply {reply:?}"))
            .to_owned();
        parse_client_list(&text)
    }

    /// How many connections currently have the client name `name`.
    pub fn count_clients_named(&self, name: &str) -> usize {
        self.client_list()
            .iter()
            .filter(|c| c.get("name").map(String::as_str) == Some(name))
            .count()
    }

    /// Kills (`CLIENT KILL ID`) every connection named `name`; returns how many were killed.
    pub fn kill_clients_named(&self, name: &str) -> usize {
        let ids: Vec<String> = self
            .client_list()
            .into_iter()
            .filter(|c| c.get("name").map(String::as_str) == Some(name))
            .filter_map(|c| c.get("id").cloned())
            .collect();
        let mut raw = self.raw();
        let mut killed = 0;
        for id in ids {
            match raw.cmd_str(&["CLIENT", "KILL", "ID", &id]) {
                RawReply::Int(n) => killed += n as usize,
                // The connection went away on its own in the meantime.
                RawReply::Error(e) if e.contains("No such client") => {}
                other => panic!("CLIENT KILL ID {id}: unexpected reply {other:?}"),
            }
        }
        killed
    }

    /// The value of `field` in `INFO section` (e.g. `("stats", "total_connections_received")`).
    pub fn info_field(&self, section: &str, field: &str) -> Option<String> {
        let reply = self.raw().cmd_str(&["INFO", section]);
        let text = reply
            .as_str()
            .unwrap_or_else(|| panic!("INFO {section}: unexpected reply {reply:?}"));
        parse_info_field(text, field)
    }

    fn tls(&self) -> &TlsFiles {
        self.tls_files.as_ref().expect("server started without TLS")
    }

    /// The full `redis-server` argument list for the current ports.
    fn args(&self) -> Vec<String> {
        let dir = self
            .dir
            .to_str()
            .expect("temp dir path is UTF-8")
            .to_owned();
        let mut args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            self.port.to_string(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            dir.clone(),
            "--logfile".into(),
            format!("{dir}/redis.log"),
            "--enable-debug-command".into(),
            "local".into(),
        ];
        if let Some(pw) = &self.opts.password {
            args.extend(["--requirepass".into(), pw.clone()]);
        }
        if let (Some(tls_port), Some(files)) = (self.tls_port, &self.tls_files) {
            let p = |p: &Path| p.to_str().expect("cert path is UTF-8").to_owned();
            args.extend([
                "--tls-port".into(),
                tls_port.to_string(),
                "--tls-cert-file".into(),
                p(&files.server_cert),
                "--tls-key-file".into(),
                p(&files.server_key),
                "--tls-ca-cert-file".into(),
                p(&files.ca_cert),
                "--tls-auth-clients".into(),
                "optional".into(),
            ]);
        }
        args.extend(self.opts.extra_args.iter().cloned());
        args
    }

    /// Spawns `redis-server` on the current ports and waits until it answers PING (and, with
    /// TLS, until the TLS port accepts TCP connects). Never leaves an unreaped child behind.
    fn launch(&self) -> Result<Child, LaunchError> {
        let log_path = self.dir.join("redis.log");
        let out_path = self.dir.join("redis.stdout");
        // Only log lines written by this attempt count when diagnosing it.
        let log_offset = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        let out = fs::File::create(&out_path)
            .map_err(|e| LaunchError::Other(format!("create {out_path:?}: {e}")))?;
        let err = out
            .try_clone()
            .map_err(|e| LaunchError::Other(e.to_string()))?;
        let mut child = match Command::new("redis-server")
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                panic!("redis-server not found: apt-get install -y redis-server")
            }
            Err(e) => return Err(LaunchError::Other(format!("spawn redis-server: {e}"))),
        };
        let diagnostics = || {
            let log = fs::read(&log_path).unwrap_or_default();
            let log =
                String::from_utf8_lossy(log.get(log_offset as usize..).unwrap_or(&[])).into_owned();
            let out = fs::read_to_string(&out_path).unwrap_or_default();
            format!("{log}\n{out}")
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let diag = diagnostics();
                    return Err(if diag.contains("Address already in use") {
                        LaunchError::AddrInUse
                    } else {
                        LaunchError::Other(format!(
                            "redis-server exited during startup ({status}); args {:?}\n{diag}",
                            self.args()
                        ))
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(LaunchError::Other(format!("try_wait: {e}"))),
            }
            if self.probe_ready(child.id()) {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LaunchError::Other(format!(
                    "redis-server on port {} not ready after {READY_TIMEOUT:?}\n{}",
                    self.port,
                    diagnostics()
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// True once our process (checked by `INFO server` `process_id`, so that a stranger that grabbed
    /// the port does not count) answers PING on the plain port and the TLS port accepts connects.
    fn probe_ready(&self, pid: u32) -> bool {
        let probe = || -> io::Result<bool> {
            let mut c = RawClient::connect_with_timeout(
                self.port,
                self.password(),
                Duration::from_millis(500),
            )?;
            if c.try_command(&[b"PING"])? != RawReply::Status("PONG".into()) {
                return Ok(false);
            }
            let info = c.try_command(&[b"INFO", b"server"])?;
            let ours = info
                .as_str()
                .and_then(|t| parse_info_field(t, "process_id"))
                == Some(pid.to_string());
            if !ours {
                return Ok(false);
            }
            if let Some(tls_port) = self.tls_port {
                TcpStream::connect_timeout(&loopback(tls_port), Duration::from_millis(500))?;
            }
            Ok(true)
        };
        probe().unwrap_or(false)
    }

    /// SIGKILLs and reaps the current child, if any.
    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), libc::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A test may have left it frozen.
            send_signal(child.id(), libc::SIGCONT);
            if let Ok(None) = child.try_wait() {
                let refused = self.request_shutdown();
                let deadline = Instant::now() + SHUTDOWN_GRACE;
                while !refused && Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                if let Ok(None) = child.try_wait() {
                    let _ = child.kill();
                }
            }
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl RedisServer {
    /// Sends `SHUTDOWN NOSAVE` over a raw connection, ignoring I/O errors. Returns true if the
    /// server answered with an error (it will not shut down, so there is no point waiting).
    fn request_shutdown(&self) -> bool {
        let Ok(mut c) = RawClient::connect_with_timeout(self.port, None, Duration::from_secs(1))
        else {
            return false;
        };
        if let Some(pw) = self.password() {
            if !matches!(
                c.try_command(&[b"AUTH", pw.as_bytes()]),
                Ok(RawReply::Status(_))
            ) {
                return true;
            }
        }
        // On success the server closes the connection without a reply.
        matches!(
            c.try_command(&[b"SHUTDOWN", b"NOSAVE"]),
            Ok(RawReply::Error(_))
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Raw RESP2 client (the oracle)
// ---------------------------------------------------------------------------------------------

/// A RESP2 reply as read by [`RawClient`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawReply {
    /// `+...` simple string.
    Status(String),
    /// `-...` error (the whole line, e.g. `"NOAUTH Authentication required."`).
    Error(String),
    /// `:...` integer.
    Int(i64),
    /// `$...` bulk string; `None` is the nil bulk (`$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*...` array; `None` is the nil array (`*-1`).
    Array(Option<Vec<RawReply>>),
}

impl RawReply {
    /// The bytes of a non-nil bulk string or of a status.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            RawReply::Bulk(Some(b)) => Some(b),
            RawReply::Status(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// [`RawReply::as_bytes`] as UTF-8 text (`None` if not valid UTF-8).
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The value of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            RawReply::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements of a non-nil array.
    pub fn as_array(&self) -> Option<&[RawReply]> {
        match self {
            RawReply::Array(Some(items)) => Some(items),
            _ => None,
        }
    }

    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, RawReply::Error(_))
    }

    /// True for a nil bulk string or nil array.
    pub fn is_nil(&self) -> bool {
        matches!(self, RawReply::Bulk(None) | RawReply::Array(None))
    }
}

/// A minimal blocking RESP2 client over `std::net::TcpStream` that does not use the crate under
/// test: the oracle for what is really on the server. 5 s read and write timeouts.
pub struct RawClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawClient {
    /// Connects to `127.0.0.1:port` and, if `password` is given, sends `AUTH password`
    /// (an error reply becomes an `io::Error` of kind `PermissionDenied`).
    pub fn connect(port: u16, password: Option<&str>) -> io::Result<RawClient> {
        Self::connect_with_timeout(port, password, RAW_IO_TIMEOUT)
    }

    /// Like [`RawClient::connect`] with `timeout` for connect, reads and writes.
    pub fn connect_with_timeout(
        port: u16,
        password: Option<&str>,
        timeout: Duration,
    ) -> io::Result<RawClient> {
        let stream = TcpStream::connect_timeout(&loopback(port), timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut client = RawClient {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        if let Some(pw) = password {
            match client.try_command(&[b"AUTH", pw.as_bytes()])? {
                RawReply::Status(_) => {}
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("AUTH: {other:?}"),
                    ));
                }
            }
        }
        Ok(client)
    }

    /// Sends one command (each argument a binary-safe bulk string) and reads its reply.
    /// Panics on I/O or protocol errors; error replies are returned as [`RawReply::Error`].
    pub fn command(&mut self, args: &[&[u8]]) -> RawReply {
        self.try_command(args)
            .unwrap_or_else(|e| panic!("raw command {:?}: {e}", lossy_args(args)))
    }

    /// [`RawClient::command`] with string arguments.
    pub fn cmd_str(&mut self, args: &[&str]) -> RawReply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.command(&args)
    }

    /// Like [`RawClient::command`] but returns I/O and protocol errors instead of panicking.
    pub fn try_command(&mut self, args: &[&[u8]]) -> io::Result<RawReply> {
        self.send(args)?;
        self.read_reply()
    }

    /// Writes one command without reading its reply (for pipelining with [`RawClient::read_reply`]).
    pub fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        self.writer.write_all(&encode_command(args))
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> io::Result<RawReply> {
        read_reply(&mut self.reader)
    }

    /// Changes the read timeout (e.g. short, to show that a frozen server does not answer).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.writer.set_read_timeout(timeout)
    }

    /// The local address of the connection (the server lists it as `addr` in `CLIENT LIST`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.writer.local_addr()
    }

    /// Closes both directions of the connection.
    pub fn close(self) {
        let _ = self.writer.shutdown(Shutdown::Both);
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
    buf
}

/// Reads one RESP2 reply (recursively for arrays) from `r`.
pub fn read_reply<R: BufRead>(r: &mut R) -> io::Result<RawReply> {
    let line = read_line(r)?;
    let (kind, rest) = line
        .split_first()
        .ok_or_else(|| protocol_error("empty reply line"))?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    match kind {
        b'+' => Ok(RawReply::Status(text())),
        b'-' => Ok(RawReply::Error(text())),
        b':' => Ok(RawReply::Int(parse_int(rest)?)),
        b'$' => {
            let len = parse_int(rest)?;
            if len < 0 {
                return Ok(RawReply::Bulk(None));
            }
            let mut data = vec![0u8; len as usize + 2];
            r.read_exact(&mut data)?;
            if !data.ends_with(b"\r\n") {
                return Err(protocol_error("bulk string not terminated by CRLF"));
            }
            data.truncate(len as usize);
            Ok(RawReply::Bulk(Some(data)))
        }
        b'*' => {
            let len = parse_int(rest)?;
            if len < 0 {
                return Ok(RawReply::Array(None));
            }
            let mut items = Vec::with_capacity(len.min(1024) as usize);
            for _ in 0..len {
                items.push(read_reply(r)?);
            }
            Ok(RawReply::Array(Some(items)))
        }
        other => Err(protocol_error(&format!(
            "unexpected RESP2 type byte {:?}",
            *other as char
        ))),
    }
}

/// Reads a CRLF-terminated line and returns it without the CRLF.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by server",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(protocol_error("reply line not terminated by CRLF"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(bytes: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol_error(&format!("bad integer {:?}", String::from_utf8_lossy(bytes))))
}

fn protocol_error(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("RESP protocol error: {msg}"),
    )
}

fn lossy_args(args: &[&[u8]]) -> Vec<String> {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Parsing helpers
// ---------------------------------------------------------------------------------------------

/// Parses `CLIENT LIST` output: one map of `k=v` fields per line.
pub fn parse_client_list(text: &str) -> Vec<HashMap<String, String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            line.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// Finds `field:value` in `INFO` output.
pub fn parse_info_field(text: &str, field: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == field)
        .map(|(_, v)| v.trim().to_owned())
}

// ---------------------------------------------------------------------------------------------
// Process, port and file helpers
// ---------------------------------------------------------------------------------------------

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A 127.0.0.1 port with nothing listening on it (free a moment ago): connecting is refused.
pub fn unused_port() -> u16 {
    free_ports(1)[0]
}

/// Polls `condition` every 5 ms until it holds; panics naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "not reached within {limit:?}: {what}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// `n` distinct ports that were free a moment ago (bound together on 127.0.0.1:0, then closed).
/// A free loopback port below the kernel's ephemeral range (`ip_local_port_range`), for a
/// listener a test stops and starts again on the same port: no other process's `bind(0)` (every
/// test server's port probe, here or in a test run beside this one) can be handed it in between,
/// as it can an ephemeral port.
pub fn port_outside_the_ephemeral_range() -> u16 {
    const FIRST: u16 = 10_000;
    let ephemeral_from = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let span = u64::from(ephemeral_from.saturating_sub(FIRST).max(1));
    let seed = u64::from(std::process::id())
        ^ SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()));
    for attempt in 0..1000 {
        let port = FIRST + ((seed + attempt * 7919) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{ephemeral_from}");
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

fn send_signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own (unreaped) child.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// The state letter from `/proc/PID/stat` (the field after the parenthesised command name).
fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

/// A fresh, unique, empty directory under `std::env::temp_dir()` (absolute path).
fn make_temp_dir() -> PathBuf {
    let base = std::env::temp_dir();
    let base = if base.is_absolute() {
        base
    } else {
        std::env::current_dir().expect("cwd").join(base)
    };
    for _ in 0..100 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("{}-{nanos:x}", unique_name("redpool-test")));
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("create temp dir {dir:?}: {e}"),
        }
    }
    panic!("could not create a unique temp dir under {base:?}");
}

/// Runs `openssl` in `dir`, panicking with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = match Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            panic!("openssl not found: apt-get install -y openssl")
        }
        Err(e) => panic!("run openssl: {e}"),
    };
    if !out.status.success() {
        panic!(
            "openssl {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Creates a throwaway CA, a server certificate of `kind` and a client certificate (P-256 keys,
/// valid for 2 days) in `dir`, all with absolute paths.
fn make_pki(dir: &Path, kind: TlsKind) -> TlsFiles {
    let path = |name: &str| dir.join(name);
    let s = |p: &PathBuf| p.to_str().expect("UTF-8 path").to_owned();
    let files = TlsFiles {
        ca_cert: path("ca.crt"),
        server_cert: path("server.crt"),
        server_key: path("server.key"),
        client_cert: path("client.crt"),
        client_key: path("client.key"),
    };
    let ca_key = path("ca.key");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            &s(&ca_key),
            "-out",
            &s(&files.ca_cert),
            "-days",
            "2",
            "-subj",
            "/CN=redpool throwaway test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let (server_cn, server_san) = match kind {
        TlsKind::Valid => ("localhost", "IP:127.0.0.1,DNS:localhost"),
        TlsKind::WrongHost => ("wrong.example.invalid", "DNS:wrong.example.invalid"),
    };
    let leaf = |name: &str, cn: &str, ext: &str, cert: &PathBuf, key: &PathBuf| {
        let csr = path(&format!("{name}.csr"));
        let ext_file = path(&format!("{name}.ext"));
        fs::write(&ext_file, ext).expect("write extension file");
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-nodes",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-keyout",
                &s(key),
                "-out",
                &s(&csr),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &s(&csr),
                "-CA",
                &s(&files.ca_cert),
                "-CAkey",
                &s(&ca_key),
                "-CAcreateserial",
                "-out",
                &s(cert),
                "-days",
                "2",
                "-sha256",
                "-extfile",
                &s(&ext_file),
            ],
        );
    };
    leaf(
        "server",
        server_cn,
        &format!(
            "subjectAltName={server_san}\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        ),
        &files.server_cert,
        &files.server_key,
    );
    leaf(
        "client",
        "redpool-test-client",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=clientAuth\n",
        &files.client_cert,
        &files.client_key,
    );
    files
}
