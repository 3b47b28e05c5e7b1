//! The optional built-in HTTP endpoint: `GET /metrics` (every pool of the process, Prometheus
//! text format) and `GET /health` (a health check of every pool, JSON; status 503 when one is
//! unhealthy). Off by default; started by [`serve`], by `redpool_metrics_serve` in C, or by the
//! `REDPOOL_METRICS_ADDR` environment variable when the first pool is created.
//!
//! It listens on a loopback address only (127.0.0.1 or ::1): metrics name servers and pools, and
//! the endpoint has no authentication. One thread accepts; each request is answered on a thread
//! of its own (at most [`MAX_IN_FLIGHT`] at once, short socket timeouts), so a `/health` check
//! waiting on a stuck server never delays a `/metrics` scrape, and a stuck scraper holds nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::health::{HealthStatus, json_string};
use crate::metrics::prometheus::CONTENT_TYPE;
use crate::registry;

/// The environment variable that starts the endpoint with the first pool (`127.0.0.1:9464`).
pub const ADDR_ENV: &str = "REDPOOL_METRICS_ADDR";

/// Read/write timeout of one scrape's socket.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head read.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Requests answered at once; more get a 503 at once.
const MAX_IN_FLIGHT: usize = 8;
/// How long `stop()` waits for the accept thread to close the port.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// The running endpoint, if any.
static RUNNING: Lazy<Mutex<Option<Endpoint>>> = Lazy::new(|| Mutex::new(None));

struct Endpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
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
    let listener = TcpListener::bind(wanted).map_err(|e| {
        Error::new(
            ErrorKind::Connection,
            format!("cannot listen on {wanted} for metrics: {e}"),
        )
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::new(ErrorKind::Connection, e.to_string()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let acceptor = std::thread::Builder::new()
        .name("redpool-metrics".into())
        .spawn(move || accept_loop(listener, flag))
        .map_err(|e| {
            Error::new(
                ErrorKind::Connection,
                format!("cannot start the metrics thread: {e}"),
            )
        })?;
    *running = Some(Endpoint {
        addr: bound,
        stop,
        acceptor,
    });
    Ok(bound)
}

/// Stops the endpoint; false when it was not running. When it returns, the port is closed (the
/// same address can be served again at once); requests being answered finish on their own.
pub fn stop() -> bool {
    let Some(endpoint) = RUNNING.lock().take() else {
        return false;
    };
    endpoint.stop.store(true, Ordering::Release);
    // Wake the blocking accept() with a connection of our own, until the thread has ended (and
    // dropped the listener). Bounded: a thread that does not end in time is left to end alone.
    let deadline = Instant::now() + STOP_WAIT;
    while !endpoint.acceptor.is_finished() && Instant::now() < deadline {
        let _ = TcpStream::connect_timeout(&endpoint.addr, Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(1));
    }
    if endpoint.acceptor.is_finished() {
        let _ = endpoint.acceptor.join();
    }
    true
}

/// Starts the endpoint from [`ADDR_ENV`] if it is set (once per process; called when a pool is
/// created). A bad address is reported on stderr, never as a pool failure.
pub(crate) fn start_from_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
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

fn accept_loop(listener: TcpListener, stop: Arc<AtomicBool>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            let _ = busy(stream);
            continue;
        }
        let counter = in_flight.clone();
        let spawned = std::thread::Builder::new()
            .name("redpool-metrics-request".into())
            .spawn(move || {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _ = answer(stream);
                }));
                counter.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Answers 503 without reading the request (too many requests being answered).
fn busy(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let body = "busy: too many requests at once\n";
    write_response(
        &mut stream,
        "503 Service Unavailable",
        "text/plain; charset=utf-8",
        body,
        false,
    )
}

/// Reads one request head and writes the response.
fn answer(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    // The head is read up to its blank line, within MAX_REQUEST_HEAD bytes; a body (none is
    // expected) is left unread.
    let mut head = BufReader::new(stream.try_clone()?).take(MAX_REQUEST_HEAD as u64);
    let mut request_line = String::new();
    head.read_line(&mut request_line)?;
    let mut line = String::new();
    while head.read_line(&mut line)? > 0 && line != "\r\n" && line != "\n" {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", CONTENT_TYPE, registry::metrics_text()),
        ("GET" | "HEAD", "/health") => health_response(),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics or /health\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".to_string(),
        ),
    };
    let mut stream = stream;
    write_response(&mut stream, status, content_type, &body, method == "HEAD")
}

/// Writes a whole response (the head only for HEAD requests).
fn write_response(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// Checks every pool; 503 when any is unhealthy (or there is no pool to check).
fn health_response() -> (&'static str, &'static str, String) {
    let pools = registry::all_pools();
    let mut worst = if pools.is_empty() {
        HealthStatus::Unhealthy
    } else {
        HealthStatus::Healthy
    };
    let entries: Vec<String> = pools
        .iter()
        .map(|pool| {
            let report = pool.health();
            worst = worst.max(report.status);
            let metrics = pool.metrics();
            format!(
                "{{\"pool\":{},\"server\":{},\"report\":{}}}",
                json_string(&metrics.pool),
                json_string(&metrics.server),
                report.to_json()
            )
        })
        .collect();
    let body = format!(
        "{{\"status\":{},\"pools\":[{}]}}\n",
        json_string(worst.as_str()),
        entries.join(",")
    );
    let status = if worst == HealthStatus::Unhealthy {
        "503 Service Unavailable"
    } else {
        "200 OK"
    };
    (status, "application/json", body)
}
