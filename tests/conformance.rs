//! The conformance suite's C driver: runs every scenario of `tests/conformance/*.json` through the
//! C ABI (the `redpool_*` functions a C program links against, declared below as C declares them)
//! and checks what a C program sees: status codes, `redpool_last_error_message`, reply trees,
//! `redpool_stats`, `redpool_health` and the metrics text. Python
//! (`python/tests/test_conformance.py`) and Node (`node/test/conformance.test.mjs`) run the same
//! files; `tests/conformance/README.md` describes the format.
//!
//! A scenario listed under `known_divergence.c` must fail here (reported, not fatal); if it
//! passes, the entry is stale and the test fails so that it is removed.

mod support;

use std::ffi::{CString, c_char, c_void};
use std::fs;
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use redpool::ffi::{
    REDPOOL_TIMEOUT_DEFAULT, redpool_acquire_options, redpool_cmd, redpool_health,
    redpool_priority, redpool_reply, redpool_reply_type, redpool_stats, redpool_status,
};
use serde_json::{Value as Json, json};
use support::{RedisServer, unused_port, with_timeout};

/// The one table of this driver: each language-neutral `ErrorKind` name and the status a C
/// program gets for it. A server error reply to a command is not a failure status in C but a
/// reply of type `REDPOOL_REPLY_ERROR` (see `outcome`), reported as `response` too.
const KINDS: &[(&str, redpool_status)] = &[
    ("connection", redpool_status::REDPOOL_STATUS_CONNECTION),
    ("timeout", redpool_status::REDPOOL_STATUS_TIMEOUT),
    (
        "pool_exhausted",
        redpool_status::REDPOOL_STATUS_POOL_EXHAUSTED,
    ),
    ("circuit_open", redpool_status::REDPOOL_STATUS_CIRCUIT_OPEN),
    ("auth", redpool_status::REDPOOL_STATUS_AUTH),
    ("response", redpool_status::REDPOOL_STATUS_RESPONSE),
    ("protocol", redpool_status::REDPOOL_STATUS_PROTOCOL),
    (
        "invalid_argument",
        redpool_status::REDPOOL_STATUS_INVALID_ARGUMENT,
    ),
    ("closed", redpool_status::REDPOOL_STATUS_CLOSED),
];

/// The scenarios' priority names and the `redpool_priority` a C program passes for each.
const PRIORITIES: &[(&str, redpool_priority)] = &[
    ("normal", redpool_priority::REDPOOL_PRIORITY_NORMAL),
    ("high", redpool_priority::REDPOOL_PRIORITY_HIGH),
];

const BREAKER_STATES: &[&str] = &["closed", "open", "half_open"];
const HEALTH_STATUSES: &[&str] = &["healthy", "degraded", "unhealthy"];
const SCENARIO_LIMIT: Duration = Duration::from_secs(60);

// The C ABI, declared as `include/redpool.h` declares it: statuses as the integers C sees,
// handles as the opaque pointers C holds.
#[allow(non_camel_case_types)]
type redpool_config = c_void;
#[allow(non_camel_case_types)]
type redpool_pool = c_void;
#[allow(non_camel_case_types)]
type redpool_conn = c_void;

unsafe extern "C" {
    fn redpool_config_new(out: *mut *mut redpool_config) -> u32;
    fn redpool_config_set(
        cfg: *mut redpool_config,
        key: *const c_char,
        value: *const c_char,
    ) -> u32;
    fn redpool_config_free(cfg: *mut redpool_config);
    fn redpool_pool_new(cfg: *const redpool_config, out: *mut *mut redpool_pool) -> u32;
    fn redpool_pool_command(
        pool: *const redpool_pool,
        argc: usize,
        argv: *const *const c_char,
        argvlen: *const usize,
        reply: *mut *mut redpool_reply,
    ) -> u32;
    fn redpool_pool_pipeline(
        pool: *const redpool_pool,
        count: usize,
        cmds: *const redpool_cmd,
        reply: *mut *mut redpool_reply,
    ) -> u32;
    fn redpool_pool_transaction(
        pool: *const redpool_pool,
        count: usize,
        cmds: *const redpool_cmd,
        reply: *mut *mut redpool_reply,
    ) -> u32;
    fn redpool_pool_acquire(
        pool: *const redpool_pool,
        timeout_ms: u32,
        out: *mut *mut redpool_conn,
    ) -> u32;
    fn redpool_pool_acquire_with(
        pool: *const redpool_pool,
        timeout_ms: u32,
        options: *const redpool_acquire_options,
        out: *mut *mut redpool_conn,
    ) -> u32;
    fn redpool_conn_command(
        conn: *mut redpool_conn,
        argc: usize,
        argv: *const *const c_char,
        argvlen: *const usize,
        reply: *mut *mut redpool_reply,
    ) -> u32;
    fn redpool_conn_release(conn: *mut *mut redpool_conn);
    fn redpool_pool_close(pool: *const redpool_pool, grace_ms: u32) -> u32;
    fn redpool_pool_disconnect(pool: *const redpool_pool) -> u32;
    fn redpool_pool_free(pool: *mut redpool_pool);
    fn redpool_pool_stats(pool: *const redpool_pool, out: *mut redpool_stats) -> u32;
    fn redpool_pool_health(pool: *const redpool_pool, out: *mut redpool_health) -> u32;
    fn redpool_pool_metrics_text(pool: *const redpool_pool, out: *mut *mut c_char) -> u32;
    fn redpool_string_free(text: *mut c_char);
    fn redpool_reply_free(reply: *mut redpool_reply) -> u32;
    fn redpool_last_error_message(buf: *mut c_char, len: usize) -> usize;
}

/// `redpool_pool_pipeline` and `redpool_pool_transaction`.
type Batch = unsafe extern "C" fn(
    *const redpool_pool,
    usize,
    *const redpool_cmd,
    *mut *mut redpool_reply,
) -> u32;

#[test]
fn every_scenario_behaves_as_written_through_the_c_abi() {
    let mut files: Vec<PathBuf> =
        fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance"))
            .expect("tests/conformance")
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario in tests/conformance");
    let mut failures = Vec::new();
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).expect("read scenario");
        let scenario: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let divergence = scenario["known_divergence"]["c"]
            .as_str()
            .map(str::to_owned);
        let outcome = with_timeout(SCENARIO_LIMIT, move || run(&scenario));
        match (outcome, divergence) {
            (Ok(()), None) => println!("ok {name}"),
            (Err(err), Some(why)) => println!("expected failure {name} ({why}): {err}"),
            (Err(err), None) => failures.push(format!("{name}: {err}")),
            (Ok(()), Some(why)) => failures.push(format!(
                "{name}: passes, but known_divergence.c says \"{why}\": remove that entry"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a call gave: a reply as JSON (error elements as `{"error": "response", "message": ..}`)
/// or the neutral kind of the failure and its message.
type Outcome = Result<Json, (String, String)>;

/// Runs one scenario; the error names the step that went wrong.
fn run(scenario: &Json) -> Result<(), String> {
    let server = Server::start(&scenario["server"]);
    let mut client = match Client::open(scenario, server.port()) {
        Ok(client) => client,
        Err(failure) => {
            return check(&scenario["open"], &Err(failure)).map_err(|e| format!("open: {e}"));
        }
    };
    check(&scenario["open"], &Ok(Json::Null)).map_err(|e| format!("open: {e}"))?;
    let result = scenario["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .enumerate()
        .try_for_each(|(i, step)| {
            client
                .step(step, &server)
                .map_err(|e| format!("step {} ({}): {e}", i + 1, step["op"]))
        });
    drop(client);
    server.resume();
    result
}

/// Compares an outcome with an `expect` object (absent: the call must succeed).
fn check(expect: &Json, outcome: &Outcome) -> Result<(), String> {
    match (expect["error"].as_str(), outcome) {
        (None, Err((kind, message))) => Err(format!("failed with {kind}: {message}")),
        (Some(want), Ok(value)) => Err(format!("expected a {want} error, got {value}")),
        (Some(want), Err((kind, message))) => {
            if kind != want {
                return Err(format!("expected a {want} error, got {kind}: {message}"));
            }
            if let Some(part) = expect["message_contains"].as_str() {
                if !message.contains(part) {
                    return Err(format!("message lacks {part:?}: {message}"));
                }
            }
            match expect["message_excludes"].as_str() {
                Some(part) if message.contains(part) => {
                    Err(format!("message shows {part:?}: {message}"))
                }
                _ => Ok(()),
            }
        }
        (None, Ok(value)) => {
            if let Some(want) = expect.get("reply") {
                if !matches(want, value) {
                    return Err(format!("expected reply {want}, got {value}"));
                }
            }
            match expect["reply_contains"].as_str() {
                Some(part) if !value.as_str().is_some_and(|s| s.contains(part)) => {
                    Err(format!("expected a reply containing {part:?}, got {value}"))
                }
                _ => Ok(()),
            }
        }
    }
}

/// Equality, where an expected `{"error": kind}` matches any error element of that kind.
fn matches(want: &Json, got: &Json) -> bool {
    match (want, got) {
        (Json::Object(w), Json::Object(g)) if w.contains_key("error") => w["error"] == g["error"],
        (Json::Array(w), Json::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(w, g)| matches(w, g))
        }
        _ => want == got,
    }
}

// ---------------------------------------------------------------------------------------------
// The client: a dedicated pool through the C ABI
// ---------------------------------------------------------------------------------------------

struct Client {
    pool: *mut redpool_pool,
    held: *mut redpool_conn,
}

// SAFETY: a pool may be used from any thread; the checkout is used by this driver's thread only.
unsafe impl Send for Client {}

impl Client {
    /// `redpool_config_new`, the host (unless the scenario tests the default) and port, then
    /// every knob through `redpool_config_set`, then `redpool_pool_new`.
    fn open(scenario: &Json, port: u16) -> Result<Client, (String, String)> {
        let mut cfg = std::ptr::null_mut();
        // SAFETY: `cfg` is a valid out-pointer; the config is freed below.
        status(unsafe { redpool_config_new(&mut cfg) })?;
        let mut knobs = vec![("port".to_string(), port.to_string())];
        if scenario["host"].as_str() != Some("default") {
            knobs.push(("host".into(), "127.0.0.1".into()));
        }
        for (name, value) in scenario["knobs"].as_object().expect("knobs") {
            knobs.push((
                name.clone(),
                value.as_str().expect("knob values are text").into(),
            ));
        }
        let mut pool = std::ptr::null_mut();
        let result = knobs
            .iter()
            .try_for_each(|(name, value)| {
                let (name, value) = (c_string(name), c_string(value));
                // SAFETY: `cfg` is a live config; the strings outlive the call.
                status(unsafe { redpool_config_set(cfg, name.as_ptr(), value.as_ptr()) })
            })
            // SAFETY: `cfg` is a live config and `pool` a valid out-pointer.
            .and_then(|()| status(unsafe { redpool_pool_new(cfg, &mut pool) }));
        // SAFETY: `cfg` came from redpool_config_new and is freed once.
        unsafe { redpool_config_free(cfg) };
        result.map(|()| Client {
            pool,
            held: std::ptr::null_mut(),
        })
    }

    fn step(&mut self, step: &Json, server: &Server) -> Result<(), String> {
        let expect = &step["expect"];
        match step["op"].as_str().expect("op") {
            "command" => check(expect, &self.command(&strings(&step["args"]))),
            // No event loop in C: the commands one after the other, with the same outcomes.
            "together" => {
                let wants = expect["outcomes"].as_array().expect("outcomes");
                let commands = step["commands"].as_array().expect("commands");
                if wants.len() != commands.len() {
                    return Err("one expected outcome per command".to_string());
                }
                commands
                    .iter()
                    .zip(wants)
                    .try_for_each(|(command, want)| check(want, &self.command(&strings(command))))
            }
            op @ ("pipeline" | "transaction") => {
                let commands: Vec<Vec<String>> = step["commands"]
                    .as_array()
                    .expect("commands")
                    .iter()
                    .map(strings)
                    .collect();
                let run = if op == "pipeline" {
                    redpool_pool_pipeline
                } else {
                    redpool_pool_transaction
                };
                check(expect, &self.batch(run, &commands))
            }
            "hold" => {
                // SAFETY: `self.pool` is live; `self.held` is a valid out-pointer.
                let held =
                    status(unsafe { redpool_pool_acquire(self.pool, u32::MAX, &mut self.held) });
                held.map_err(|(kind, message)| format!("hold: {kind}: {message}"))
            }
            "acquire" => {
                let mut conn = std::ptr::null_mut();
                check(expect, &self.acquire(step, &mut conn))?;
                let commands = step["commands"].as_array().map_or(&[][..], Vec::as_slice);
                let ran = commands.iter().try_for_each(|command| {
                    check(
                        &command["expect"],
                        &self.command_on(conn, &strings(&command["args"])),
                    )
                });
                // SAFETY: `conn` is the checkout just made (or NULL); it is set to NULL.
                unsafe { redpool_conn_release(&mut conn) };
                ran
            }
            "release" => {
                // SAFETY: `self.held` is a checkout of this pool (or NULL); it is set to NULL.
                unsafe { redpool_conn_release(&mut self.held) };
                Ok(())
            }
            "disconnect" => {
                // SAFETY: `self.pool` is live.
                let disconnected = status(unsafe { redpool_pool_disconnect(self.pool) });
                disconnected.map_err(|(kind, message)| format!("disconnect: {kind}: {message}"))
            }
            "close" => {
                // SAFETY: `self.pool` is live.
                let closed = status(unsafe { redpool_pool_close(self.pool, 1000) });
                closed.map_err(|(kind, message)| format!("close: {kind}: {message}"))
            }
            "stop_server" => {
                server.redis().stop_process();
                Ok(())
            }
            "continue_server" => {
                server.redis().cont_process();
                Ok(())
            }
            "sleep" => {
                thread::sleep(Duration::from_millis(step["ms"].as_u64().expect("ms")));
                Ok(())
            }
            "stats" => {
                let stats = self.stats();
                for (field, want) in expect.as_object().expect("stats fields") {
                    let got = stat(&stats, field).ok_or(format!("no stats field {field}"))?;
                    if Some(got) != want.as_u64() {
                        return Err(format!("stats {field}: expected {want}, got {got}"));
                    }
                }
                Ok(())
            }
            "metrics" => {
                let text = self.metrics();
                let families: Vec<&str> = text
                    .lines()
                    .filter_map(|line| line.strip_prefix("# TYPE "))
                    .filter_map(|rest| rest.split(' ').next())
                    .collect();
                let missing: Vec<&Json> = expect["families"]
                    .as_array()
                    .expect("families")
                    .iter()
                    .filter(|f| !families.contains(&f.as_str().unwrap()))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("missing families {missing:?}"))
                }
            }
            "breaker" => same(expect, BREAKER_STATES[self.stats().breaker_state as usize]),
            "health" => {
                // SAFETY: all-zero is a valid redpool_health (integers and first enum values).
                let mut health: redpool_health = unsafe { std::mem::zeroed() };
                health.struct_size = size_of::<redpool_health>();
                // SAFETY: `self.pool` is live; `health` is writable and sized.
                status(unsafe { redpool_pool_health(self.pool, &mut health) })
                    .map_err(|(kind, message)| format!("health: {kind}: {message}"))?;
                same(expect, HEALTH_STATUSES[health.status as usize])
            }
            other => panic!("unknown op {other}"),
        }
    }

    fn command(&self, args: &[String]) -> Outcome {
        self.command_on(std::ptr::null_mut(), args)
    }

    /// One command on the checked-out `conn`, or through the pool when `conn` is NULL.
    fn command_on(&self, conn: *mut redpool_conn, args: &[String]) -> Outcome {
        let args: Vec<CString> = args.iter().map(|a| c_string(a)).collect();
        let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        let mut reply = std::ptr::null_mut();
        let (argc, argv) = (argv.len(), argv.as_ptr());
        // SAFETY: `argv` holds `argc` NUL-terminated strings that outlive the call; `conn` is a
        // live checkout of this pool when not NULL.
        status(unsafe {
            if conn.is_null() {
                redpool_pool_command(self.pool, argc, argv, std::ptr::null(), &mut reply)
            } else {
                redpool_conn_command(conn, argc, argv, std::ptr::null(), &mut reply)
            }
        })?;
        reply_outcome(reply)
    }

    /// `redpool_pool_acquire_with` with the step's `timeout_ms` (absent: the pool's) and
    /// `priority` (by `PRIORITIES`; a name not there is a value no `redpool_priority` has), into
    /// `conn`.
    fn acquire(&self, step: &Json, conn: &mut *mut redpool_conn) -> Outcome {
        let timeout_ms = step["timeout_ms"]
            .as_u64()
            .map_or(REDPOOL_TIMEOUT_DEFAULT, |ms| {
                u32::try_from(ms).expect("timeout_ms fits in 32 bits")
            });
        let priority = match step["priority"].as_str() {
            None => redpool_priority::REDPOOL_PRIORITY_NORMAL as u32,
            Some(name) => PRIORITIES
                .iter()
                .find(|(known, _)| *known == name)
                .map_or(u32::MAX, |(_, priority)| *priority as u32),
        };
        let options = redpool_acquire_options {
            struct_size: size_of::<redpool_acquire_options>(),
            priority,
        };
        // SAFETY: `self.pool` is live; `options` and `conn` outlive the call.
        status(unsafe { redpool_pool_acquire_with(self.pool, timeout_ms, &options, conn) })?;
        Ok(Json::Null)
    }

    /// A pipeline or a transaction (`run`: `redpool_pool_pipeline` or `redpool_pool_transaction`).
    fn batch(&self, run: Batch, commands: &[Vec<String>]) -> Outcome {
        let args: Vec<Vec<CString>> = commands
            .iter()
            .map(|c| c.iter().map(|a| c_string(a)).collect())
            .collect();
        let argvs: Vec<Vec<*const c_char>> = args
            .iter()
            .map(|c| c.iter().map(|a| a.as_ptr()).collect())
            .collect();
        let cmds: Vec<redpool_cmd> = argvs
            .iter()
            .map(|argv| redpool_cmd {
                argc: argv.len(),
                argv: argv.as_ptr(),
                argvlen: std::ptr::null(),
            })
            .collect();
        let mut reply = std::ptr::null_mut();
        // SAFETY: every `redpool_cmd` points into `argvs` / `args`, which outlive the call.
        status(unsafe { run(self.pool, cmds.len(), cmds.as_ptr(), &mut reply) })?;
        reply_outcome(reply)
    }

    fn stats(&self) -> redpool_stats {
        // SAFETY: all-zero is a valid redpool_stats (integers and the first enum value).
        let mut stats: redpool_stats = unsafe { std::mem::zeroed() };
        stats.struct_size = size_of::<redpool_stats>();
        // SAFETY: `self.pool` is live; `stats` is writable and sized.
        let result = status(unsafe { redpool_pool_stats(self.pool, &mut stats) });
        result.unwrap_or_else(|(kind, message)| panic!("stats: {kind}: {message}"));
        stats
    }

    fn metrics(&self) -> String {
        let mut text = std::ptr::null_mut();
        // SAFETY: `self.pool` is live; `text` is a valid out-pointer, freed below.
        let result = status(unsafe { redpool_pool_metrics_text(self.pool, &mut text) });
        result.unwrap_or_else(|(kind, message)| panic!("metrics: {kind}: {message}"));
        // SAFETY: on success `text` is a NUL-terminated string we own.
        let owned = unsafe { std::ffi::CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: freed once, with its free function.
        unsafe { redpool_string_free(text) };
        owned
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: the checkout (or NULL) and the pool handle are released once each.
        unsafe {
            redpool_conn_release(&mut self.held);
            redpool_pool_close(self.pool, 0);
            redpool_pool_free(self.pool);
        }
    }
}

/// OK, or the neutral kind of a failure status (from `KINDS`) with the thread's last error.
fn status(code: u32) -> Result<(), (String, String)> {
    if code == redpool_status::REDPOOL_STATUS_OK as u32 {
        return Ok(());
    }
    let kind = KINDS
        .iter()
        .find(|(_, status)| *status as u32 == code)
        .map_or(format!("status {code}"), |(name, _)| name.to_string());
    let mut buf = vec![0 as c_char; 1024];
    // SAFETY: `buf` is writable for its length.
    let len = unsafe { redpool_last_error_message(buf.as_mut_ptr(), buf.len()) }.min(buf.len() - 1);
    let bytes: Vec<u8> = buf[..len].iter().map(|&c| c as u8).collect();
    Err((kind, String::from_utf8_lossy(&bytes).into_owned()))
}

/// A call's reply as its outcome: an ERROR reply (a server error reply to a command, or a
/// transaction's EXECABORT) is the `response` failure, anything else the reply (error replies
/// inside an array stay in place).
fn reply_outcome(reply: *mut redpool_reply) -> Outcome {
    match take_reply(reply) {
        Json::Object(error) => Err(("response".into(), error["message"].as_str().unwrap().into())),
        value => Ok(value),
    }
}

/// A reply tree as JSON, freed: strings (verbatim ones too), integers, nil, arrays; an error reply is
/// `{"error": "response", "message": text}`.
fn take_reply(reply: *mut redpool_reply) -> Json {
    fn convert(r: &redpool_reply) -> Json {
        let text = || {
            // SAFETY: `str` holds `len` bytes for the string types.
            let bytes = unsafe { std::slice::from_raw_parts(r.str as *const u8, r.len) };
            String::from_utf8_lossy(bytes).into_owned()
        };
        match r.r#type {
            redpool_reply_type::REDPOOL_REPLY_STRING
            | redpool_reply_type::REDPOOL_REPLY_STATUS
            | redpool_reply_type::REDPOOL_REPLY_VERB => json!(text()),
            redpool_reply_type::REDPOOL_REPLY_INTEGER => json!(r.integer),
            redpool_reply_type::REDPOOL_REPLY_NIL => Json::Null,
            redpool_reply_type::REDPOOL_REPLY_ERROR => {
                json!({ "error": "response", "message": text() })
            }
            redpool_reply_type::REDPOOL_REPLY_ARRAY => Json::Array(
                (0..r.elements)
                    // SAFETY: `element` holds `elements` valid pointers.
                    .map(|i| convert(unsafe { &**r.element.add(i) }))
                    .collect(),
            ),
            other => panic!("reply type {other:?} has no neutral form in the scenarios"),
        }
    }
    // SAFETY: `reply` is a root handed out by a successful call.
    let value = convert(unsafe { &*reply });
    // SAFETY: the root, freed once.
    unsafe { redpool_reply_free(reply) };
    value
}

fn stat(s: &redpool_stats, field: &str) -> Option<u64> {
    Some(match field {
        "max_connections" => s.max_connections,
        "min_idle" => s.min_idle,
        "open" => s.open,
        "idle" => s.idle,
        "in_use" => s.in_use,
        "connecting" => s.connecting,
        "waiting" => s.waiting,
        "connections_created" => s.connections_created,
        "connect_attempts" => s.connect_attempts,
        "connect_failures" => s.connect_failures,
        "retries" => s.retries,
        "acquires" => s.acquires,
        "acquire_timeouts" => s.acquire_timeouts,
        "commands" => s.commands,
        "leaks_suspected" => s.leaks_suspected,
        _ => return None,
    })
}

fn same(expect: &Json, got: &str) -> Result<(), String> {
    if expect.as_str() == Some(got) {
        Ok(())
    } else {
        Err(format!("expected {expect}, got {got}"))
    }
}

fn strings(args: &Json) -> Vec<String> {
    args.as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("text").to_owned())
        .collect()
}

fn c_string(text: &str) -> CString {
    CString::new(text).expect("no NUL in scenario text")
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// The server a scenario names: a real redis-server (its `setup` commands run by a raw client),
/// a port with nothing listening, or a fake server answering every request with fixed bytes.
enum Server {
    Redis(RedisServer),
    Nothing(u16),
    Fake(FakeServer),
}

impl Server {
    fn start(spec: &Json) -> Server {
        match spec["kind"].as_str().expect("server kind") {
            "redis" => {
                let server = RedisServer::start();
                let mut raw = server.raw();
                for command in spec["setup"].as_array().into_iter().flatten() {
                    let args = strings(command);
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let reply = raw.cmd_str(&args);
                    assert!(!reply.is_error(), "setup {args:?}: {reply:?}");
                }
                Server::Redis(server)
            }
            "nothing_listening" => Server::Nothing(unused_port()),
            "fake" => Server::Fake(FakeServer::start(spec["reply"].as_str().expect("reply"))),
            other => panic!("unknown server kind {other}"),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Server::Redis(server) => server.port(),
            Server::Nothing(port) => *port,
            Server::Fake(fake) => fake.port,
        }
    }

    fn redis(&self) -> &RedisServer {
        match self {
            Server::Redis(server) => server,
            _ => panic!("this step needs a redis server"),
        }
    }

    /// SIGCONT, in case a step stopped it (harmless otherwise), so it shuts down promptly.
    fn resume(&self) {
        if let Server::Redis(server) = self {
            server.cont_process();
        }
    }
}

/// A loopback listener that answers each chunk it reads with `reply`; stops on drop.
struct FakeServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn start(reply: &str) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (reply, flag) = (reply.as_bytes().to_vec(), stop.clone());
        let thread = thread::spawn(move || {
            let mut links = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (reply, flag) = (reply.clone(), flag.clone());
                        links.push(thread::spawn(move || answer(stream, &reply, &flag)));
                    }
                    Err(e) if e.kind() == IoErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("fake server accept: {e}"),
                }
            }
            links.into_iter().for_each(|link| link.join().unwrap());
        });
        FakeServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

fn answer(mut stream: TcpStream, reply: &[u8], stop: &AtomicBool) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if stream.write_all(reply).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}
