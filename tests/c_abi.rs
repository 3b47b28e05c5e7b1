//! C behaviour tests: every `tests/c/*.c` program is compiled with
//! `cc -std=c11 -Wall -Wextra -Werror -pedantic` against `include/redpool.h` and the library that
//! `cargo test` just built (`target/<profile>/libredpool.so`), then run against a fresh
//! `redis-server`: natively first (real thread parallelism, readable failures), then under
//! valgrind (`--leak-check=full --errors-for-leak-kinds=definite --error-exitcode=97`) when it is
//! installed (97 rather than 1, so a valgrind error is told apart from a failed check). One
//! `#[test]` per program, so a failure is reported by the program's name; each program exits 0 on
//! success and prints `file:line` plus the thread's last redpool error on a failed check. Checks
//! that reveal known bugs are soft (`EXPECTF` in `tests/c/check.h`): they are all listed, the rest
//! of the program still runs, and the program fails at the end.
//!
//! Environment knobs:
//! - `REDPOOL_VALGRIND=0` skips the valgrind runs; `REDPOOL_VALGRIND=1` requires valgrind (fails
//!   when it is missing, as CI should); unset: valgrind when it is on `PATH`.
//! - `CC` picks the C compiler (default `cc`). Without one, the tests print why and pass (the
//!   Rust tests are still meaningful on a machine without a C toolchain).
//!
//! The programs get `REDIS_URL=redis://127.0.0.1:PORT` and `REDIS_PORT` of their own server,
//! `REDPOOL_TEST_DEAD_PORT` (nothing listens there) and, for `auth.c`, `REDPOOL_TEST_PASSWORD`
//! (`first_errors.c`'s server has a password too, which it never sends). `deadlines.c` also gets
//! `REDPOOL_TEST_DRIBBLE_PORT`, a fault proxy to its server that forwards the server's bytes one
//! at a time, 200 ms apart, and `REDPOOL_TEST_AUTH_DRIBBLE_PORT`, the same in front of a second
//! server whose password is `REDPOOL_TEST_PASSWORD`.
//! Every other `REDIS_*` variable of the calling environment is removed, so
//! `redpool_config_from_env` sees only what the test sets.
//!
//! Leak rules: "definitely lost" fails; "possibly/still reachable" (Rust statics, the registry of
//! shared pools, thread-locals) does not. Each program closes and frees its pools, frees every
//! reply and config, releases every connection, and waits 1.2 s before exiting so the pools'
//! maintenance threads have ended (see `let_background_threads_finish` in `tests/c/check.h`).

mod support;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::proxy::FaultProxy;
use support::{RedisServer, ServerOptions, unique_name, unused_port, with_timeout};

/// Every C program in `tests/c/`, each run by the test of the same name below.
const PROGRAMS: &[&str] = &[
    "acquire",
    "alignment",
    "auth",
    "deadlines",
    "first_errors",
    "fork",
    "handles",
    "lifecycle",
    "nulls",
    "observe",
    "operate",
    "replies",
    "resp3",
    "session",
    "threads",
    "timeouts",
];

/// The warnings every C program must compile without (issue 4, CONVENTIONS.md §2.7).
const CFLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"];

/// How long one run of one program may take (valgrind is slow: generous).
const RUN_LIMIT: Duration = Duration::from_secs(180);
/// How long one test may take in all (compile, native run, valgrind run).
const TEST_LIMIT: Duration = Duration::from_secs(420);

/// The password of the server `auth.c` runs against: URL-hostile characters on purpose.
const AUTH_PASSWORD: &str = "p@ss:w/rd 1%";
/// The password of `deadlines.c`'s second server (letters only: it goes into a URL as it is).
const DRIBBLE_PASSWORD: &str = "dribblepw";
/// How far apart the dribbling proxies forward the server's bytes (a 100-byte reply: 20 s).
const DRIBBLE: Duration = Duration::from_millis(200);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lib_dir() -> PathBuf {
    support::cbuild::library_dir()
}

/// The C compiler, or None (with the reason printed) when the C tests cannot run here: no
/// compiler, or a build without the `capi` feature (no C symbols to link against).
fn compiler() -> Option<OsString> {
    if !cfg!(feature = "capi") {
        eprintln!("skipped: built without the `capi` feature");
        return None;
    }
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    match Command::new(&cc).arg("--version").output() {
        Ok(out) if out.status.success() => Some(cc),
        _ => {
            eprintln!("skipped: no working C compiler ({cc:?}); set CC to run the C tests");
            None
        }
    }
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the programs also run under valgrind (see the module docs for `REDPOOL_VALGRIND`).
fn use_valgrind() -> bool {
    match std::env::var("REDPOOL_VALGRIND").as_deref() {
        Ok("0") => false,
        Ok("1") => {
            assert!(
                on_path("valgrind"),
                "REDPOOL_VALGRIND=1 but valgrind is not installed"
            );
            true
        }
        _ => on_path("valgrind"),
    }
}

/// A fresh scratch directory for one test's binary and outputs, removed when dropped (the outputs
/// of a failed run are in the panic message).
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        let dir = std::env::temp_dir().join(unique_name(&format!("redpool-c-{what}")));
        fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Link {
    /// `-lredpool` with an rpath to `target/<profile>`.
    Shared,
    /// `target/<profile>/libredpool.a` plus the native libraries Rust's std needs.
    Static,
}

/// Compiles `tests/c/<name>.c` into `<dir>/<name>`; panics with the compiler's output on failure.
fn compile(cc: &OsString, name: &str, dir: &Path, link: Link) -> PathBuf {
    let lib = lib_dir();
    let source = root().join("tests/c").join(format!("{name}.c"));
    let binary = dir.join(name);
    let mut cmd = Command::new(cc);
    cmd.args(CFLAGS)
        .args(["-g", "-O1", "-I"])
        .arg(root().join("include"))
        .arg(&source)
        .arg("-o")
        .arg(&binary);
    match link {
        Link::Shared => {
            cmd.arg("-L")
                .arg(&lib)
                .arg("-lredpool")
                .arg(format!("-Wl,-rpath,{}", lib.display()));
        }
        Link::Static => {
            cmd.arg(lib.join("libredpool.a"));
        }
    }
    // What `RUSTFLAGS="--print native-static-libs"` lists on Linux (libc and libgcc_s are the
    // compiler driver's defaults).
    cmd.args(["-lpthread", "-ldl", "-lm"]);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "compiling {name}.c failed ({link:?} link):\n{cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    binary
}

/// The servers and environment a program runs with.
struct Setup {
    /// Kept alive for the run (dropped first: stopped, threads joined).
    _proxies: Vec<FaultProxy>,
    /// Kept alive for the run; stopped (and reaped) when dropped.
    _servers: Vec<RedisServer>,
    env: Vec<(String, String)>,
}

fn server_with_password(password: &str) -> RedisServer {
    RedisServer::start_with(ServerOptions {
        password: Some(password.into()),
        ..ServerOptions::default()
    })
}

/// A fault proxy to `upstream` that dribbles what the server sends from the first byte on.
fn dribbling_proxy(upstream: u16) -> FaultProxy {
    let proxy = FaultProxy::start(upstream);
    proxy.dribble(Some(DRIBBLE));
    proxy
}

fn setup(program: &str) -> Setup {
    let server = match program {
        "auth" | "first_errors" => server_with_password(AUTH_PASSWORD),
        _ => RedisServer::start(),
    };
    let mut env = vec![
        ("REDIS_URL".to_string(), server.url()),
        ("REDIS_PORT".to_string(), server.port().to_string()),
        (
            "REDPOOL_TEST_DEAD_PORT".to_string(),
            unused_port().to_string(),
        ),
    ];
    let mut proxies = Vec::new();
    let mut servers = Vec::new();
    match program {
        "auth" => {
            env.push(("REDPOOL_TEST_PASSWORD".into(), AUTH_PASSWORD.into()));
        }
        "deadlines" => {
            let protected = server_with_password(DRIBBLE_PASSWORD);
            proxies.push(dribbling_proxy(server.port()));
            proxies.push(dribbling_proxy(protected.port()));
            env.push((
                "REDPOOL_TEST_DRIBBLE_PORT".into(),
                proxies[0].port().to_string(),
            ));
            env.push((
                "REDPOOL_TEST_AUTH_DRIBBLE_PORT".into(),
                proxies[1].port().to_string(),
            ));
            env.push(("REDPOOL_TEST_PASSWORD".into(), DRIBBLE_PASSWORD.into()));
            servers.push(protected);
        }
        _ => {}
    }
    servers.push(server);
    Setup {
        _proxies: proxies,
        _servers: servers,
        env,
    }
}

/// valgrind's exit status when it found an error (a definite leak, an invalid read, ...): not 1,
/// so it is told apart from a failed check in the program.
const VALGRIND_ERROR_EXIT: i32 = 97;

/// Runs `binary` (under valgrind when `valgrind`), with `setup`'s environment and at most
/// `RUN_LIMIT`. Err holds a description and everything the program printed.
fn run(
    binary: &Path,
    args: &[&str],
    setup: &Setup,
    valgrind: bool,
    scratch: &Path,
) -> Result<(), String> {
    let how = if valgrind { "valgrind" } else { "native" };
    let stdout_path = scratch.join(format!("{how}.stdout"));
    let stderr_path = scratch.join(format!("{how}.stderr"));
    let mut cmd = if valgrind {
        let mut c = Command::new("valgrind");
        c.args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--quiet",
        ])
        .arg(format!("--error-exitcode={VALGRIND_ERROR_EXIT}"))
        .arg(binary);
        c
    } else {
        Command::new(binary)
    };
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REDIS_") {
            cmd.env_remove(&key);
        }
    }
    cmd.envs(setup.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(fs::File::create(&stderr_path).expect("stderr file"));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the C program") {
            break Some(status);
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        fs::read_to_string(&stdout_path).unwrap_or_default(),
        fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    let name = binary.file_name().unwrap_or_default().to_string_lossy();
    match status {
        None => Err(format!(
            "{name} {args:?} ({how}) did not finish within {RUN_LIMIT:?} (killed)\n{output}"
        )),
        Some(s) if s.code() == Some(VALGRIND_ERROR_EXIT) && valgrind => Err(format!(
            "{name} {args:?}: valgrind reported errors (definite leaks or invalid accesses; any \
             failed check is listed too)\n{output}"
        )),
        Some(s) if !s.success() => Err(format!("{name} {args:?} ({how}) failed: {s}\n{output}")),
        Some(_) => {
            eprintln!(
                "{name} {args:?} ({how}): ok in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// Compiles `program`, runs it natively, then under valgrind if enabled (even when the native run
/// failed, so memory errors are reported with the failed checks), each against a fresh server.
fn check_program(program: &'static str, args: &'static [&'static str], with_valgrind: bool) {
    with_timeout(TEST_LIMIT, move || {
        let Some(cc) = compiler() else { return };
        let scratch = Scratch::new(program);
        let binary = compile(&cc, program, &scratch.0, Link::Shared);
        let mut failures = Vec::new();
        if let Err(e) = run(&binary, args, &setup(program), false, &scratch.0) {
            failures.push(e);
        }
        if with_valgrind && use_valgrind() {
            if let Err(e) = run(&binary, args, &setup(program), true, &scratch.0) {
                failures.push(e);
            }
        }
        if !failures.is_empty() {
            panic!("{}", failures.join("\n\n"));
        }
    });
}

#[test]
fn c_lifecycle() {
    check_program("lifecycle", &[], true);
}

#[test]
fn c_replies() {
    check_program("replies", &[], true);
}

#[test]
fn c_resp3() {
    check_program("resp3", &[], true);
}

/// NULL safety: status, untouched outputs, nothing sent, no leak. Messages that do not name the
/// parameter are listed but reported by the next test.
#[test]
fn c_nulls() {
    check_program("nulls", &["--names-soft"], true);
}

/// The messages of the NULL-argument failures name the offending parameter.
#[test]
fn c_nulls_messages_name_the_parameter() {
    check_program("nulls", &[], false);
}

#[test]
fn c_session() {
    check_program("session", &[], true);
}

#[test]
fn c_threads() {
    check_program("threads", &[], true);
}

/// Try-acquire, priority order among waiters, and the options struct's checks.
#[test]
fn c_acquire() {
    check_program("acquire", &[], true);
}

#[test]
fn c_timeouts() {
    check_program("timeouts", &[], true);
}

#[test]
fn c_observe() {
    check_program("observe", &[], true);
}

#[test]
fn c_operate() {
    check_program("operate", &[], true);
}

#[test]
fn c_fork() {
    check_program("fork", &[], true);
}

#[test]
fn c_auth() {
    check_program("auth", &[], true);
}

/// A deadline is a deadline (issue 14.1): replies and handshakes dribbled through a fault proxy
/// end by socket_timeout, the call's own timeout or connect_timeout (the C twin of
/// tests/deadlines.rs).
#[test]
fn c_deadlines() {
    check_program("deadlines", &[], true);
}

/// The first errors name the cause (issue 14.7): refusals, then the open circuit naming them; a
/// wrong password is an authentication error (the C twin of tests/first_errors.rs).
#[test]
fn c_first_errors() {
    check_program("first_errors", &[], true);
}

/// Handles that cannot dangle: a callback may free the last handle of the pool whose call raised
/// the event, subscribe and unsubscribe (itself or others, on many threads at once); unsubscribe
/// outside callbacks waits for a running call; freeing an element of a reply tree is refused.
#[test]
fn c_handles() {
    check_program("handles", &[], true);
}

/// Reply integrity through the C API: the server's whole COMMAND table, alone, in pipelines and
/// in transactions, from 8 threads over 2 connections, between probes (the C twin of
/// tests/alignment.rs; it prints its seed, `REDPOOL_SEED=<n>` replays it).
#[test]
fn c_alignment() {
    check_program("alignment", &[], true);
}

/// The same C code links against the static library too (and then does not need the shared one).
#[test]
fn c_static_link() {
    with_timeout(TEST_LIMIT, || {
        let Some(cc) = compiler() else { return };
        let scratch = Scratch::new("static");
        let binary = compile(&cc, "replies", &scratch.0, Link::Static);
        let bytes = fs::read(&binary).expect("read the binary");
        assert!(
            !bytes.windows(13).any(|w| w == b"libredpool.so"),
            "the statically linked program still refers to libredpool.so"
        );
        if let Err(e) = run(&binary, &[], &setup("replies"), false, &scratch.0) {
            panic!("{e}");
        }
    });
}

/// Every `tests/c/*.c` has its test above (a new program is never silently left out), and the
/// shared header compiles on its own.
#[test]
fn c_every_program_is_run() {
    let mut found: Vec<String> = fs::read_dir(root().join("tests/c"))
        .expect("read tests/c")
        .filter_map(|e| {
            let path = e.expect("dir entry").path();
            let stem = path.file_stem()?.to_string_lossy().into_owned();
            (path.extension()? == "c").then_some(stem)
        })
        .collect();
    found.sort();
    assert_eq!(
        found, PROGRAMS,
        "tests/c/*.c and PROGRAMS in tests/c_abi.rs differ: add a #[test] for each program"
    );
    let Some(cc) = compiler() else { return };
    let out = Command::new(&cc)
        .args(CFLAGS)
        .args(["-fsyntax-only", "-I"])
        .arg(root().join("include"))
        .args(["-x", "c"])
        .arg(root().join("tests/c/check.h"))
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "tests/c/check.h does not compile on its own:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
