//! A tour of redpool against a real server: the shared pool, commands from several threads, a
//! pipeline, MULTI/EXEC, a WATCH-based optimistic transaction, an error reply and the pool stats.
//!
//! Run it with `bash examples/demo.sh` (starts a throwaway redis-server), or point it at a server:
//! `REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example demo`. Every key it writes starts with
//! `redpool:demo:` and is deleted at the end.

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use redpool::{Cmd, Pool, Value};

const THREADS: i64 = 8;
const OPS_PER_THREAD: i64 = 200;

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo failed: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> DemoResult<()> {
    let url = std::env::var("REDIS_URL").map_err(|_| "set REDIS_URL (or run examples/demo.sh)")?;
    // 1. The process-wide pool: every `shared()` call with the same settings gets the same pool.
    let pool = redpool::shared(&with_knobs(&url, "max_connections=8&min_idle=2"))?;
    let config = pool.config();
    // redacted_url() never contains the password, so it is safe to print.
    let (max, min) = (config.max_connections(), config.min_idle());
    println!(
        "== pool for {} (max_connections={max}, min_idle={min})",
        config.redacted_url()
    );

    // 2. Threads share one pool (clones are cheap handles to it). Each INCRs its own counter and a
    //    shared one and checks every reply: a pool that mixed up replies would fail here.
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || -> redpool::Result<()> {
                for i in 1..=OPS_PER_THREAD {
                    let reply = pool.execute(&cmd(&format!("INCR redpool:demo:counter:{t}")))?;
                    assert_eq!(int(&reply), i, "thread {t}: INCR #{i}");
                    pool.execute(&cmd("INCR redpool:demo:counter:total"))?;
                }
                let reply = pool.execute(&cmd(&format!("GET redpool:demo:counter:{t}")))?;
                assert_eq!(int(&reply), OPS_PER_THREAD, "thread {t}: GET");
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "a worker thread panicked")??;
    }
    let total = int(&pool.execute(&cmd("GET redpool:demo:counter:total"))?);
    assert_eq!(total, THREADS * OPS_PER_THREAD);
    println!(
        "== {THREADS} threads x {OPS_PER_THREAD} INCR + GET: all replies checked, total={total}"
    );

    // 3. A pipeline: 50 SETs then 50 GETs in one write; one reply per command, in order.
    let mut batch: Vec<Cmd> = (0..50)
        .map(|i| cmd(&format!("SET redpool:demo:p:{i} v{i}")))
        .collect();
    batch.extend((0..50).map(|i| cmd(&format!("GET redpool:demo:p:{i}"))));
    let replies = pool.pipeline(&batch)?;
    assert!(replies[..50].iter().all(|r| *r == Value::Okay));
    for (i, reply) in replies[50..].iter().enumerate() {
        assert_eq!(text(reply), format!("v{i}"), "pipelined GET {i}");
    }
    println!(
        "== pipeline: {} commands, {} replies, all as expected",
        batch.len(),
        replies.len()
    );

    // 4. MULTI/EXEC: the commands run atomically; `Some(replies)` means EXEC ran them.
    let tx = [
        "SET redpool:demo:tx 1",
        "INCRBY redpool:demo:tx 41",
        "GET redpool:demo:tx",
    ];
    let replies = pool.transaction(&tx.map(cmd))?.ok_or("EXEC aborted")?;
    let shown: Vec<String> = replies.iter().map(text).collect();
    println!("== MULTI/EXEC {tx:?} -> {shown:?}");

    // 5. Optimistic locking on one checked-out connection: WATCH, GET, then MULTI/EXEC. The first
    //    attempt is spoiled on purpose by a write through another pooled connection, so EXEC
    //    returns None and we retry. Dropping `conn` returns it to the pool (clean: no WATCH left).
    pool.execute(&cmd("SET redpool:demo:balance 100"))?;
    for attempt in 1.. {
        let mut conn = pool.acquire()?;
        conn.execute(&cmd("WATCH redpool:demo:balance"))?;
        let balance = int(&conn.execute(&cmd("GET redpool:demo:balance"))?);
        if attempt == 1 {
            pool.execute(&cmd("INCRBY redpool:demo:balance 5"))?; // a concurrent writer
        }
        let update = cmd(&format!("SET redpool:demo:balance {}", balance + 10));
        if conn.transaction(&[update])?.is_some() {
            println!(
                "== WATCH attempt {attempt}: read {balance}, wrote {}: committed",
                balance + 10
            );
            break;
        }
        println!("== WATCH attempt {attempt}: read {balance}, key changed meanwhile: EXEC aborted");
    }

    // 6. An error reply is an `Err` of kind Response; the connection stays in the pool. (This is the
    //    builder form of a command: `redpool::cmd(name).arg(..)`.)
    pool.execute(redpool::cmd("SET").arg("redpool:demo:word").arg("hello"))?;
    let err = pool
        .execute(redpool::cmd("INCR").arg("redpool:demo:word"))
        .expect_err("INCR on a string must fail");
    let (kind, code) = (err.kind(), err.server_code().unwrap_or("-"));
    println!(
        "== INCR on a string: kind={kind}, code={code}, message={:?}",
        err.message()
    );

    // 7. Delete every demo key (SCAN, so keys left by an interrupted earlier run go too).
    let (mut cursor, mut deleted) = ("0".to_string(), 0);
    loop {
        let page = pool.execute(&cmd(&format!(
            "SCAN {cursor} MATCH redpool:demo:* COUNT 500"
        )))?;
        let Value::Array(page) = page else {
            return Err("unexpected SCAN reply".into());
        };
        cursor = text(&page[0]);
        if let Value::Array(keys) = &page[1]
            && !keys.is_empty()
        {
            let mut del = redpool::cmd("DEL");
            for key in keys {
                del.arg(text(key));
            }
            deleted += int(&pool.execute(&del)?);
        }
        if cursor == "0" {
            break;
        }
    }
    println!("== cleanup: deleted {deleted} keys matching redpool:demo:*");

    print_stats(&pool);
    pool.close(Duration::from_secs(1));
    Ok(())
}

/// Appends `knob=value` query options to `url` unless the URL sets that knob itself.
fn with_knobs(url: &str, knobs: &str) -> String {
    let mut out = url.trim().to_string();
    for option in knobs.split('&') {
        let name = option.split('=').next().unwrap_or_default();
        let query = out.split_once('?').map_or("", |(_, q)| q);
        if query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(name))
        {
            continue; // the caller's own setting wins
        }
        if !out.ends_with(['?', '&']) {
            out.push(if out.contains('?') { '&' } else { '?' });
        }
        out.push_str(option);
    }
    out
}

/// A command from a line of space-separated words (the demo's keys and values have no spaces).
fn cmd(line: &str) -> Cmd {
    let mut words = line.split_whitespace();
    let mut command = redpool::cmd(words.next().expect("empty command"));
    for word in words {
        command.arg(word);
    }
    command
}

/// An integer reply (a counter read with GET arrives as a string).
fn int(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        other => text(other).parse().expect("an integer reply"),
    }
}

/// A reply as text (`"nil"` for nil).
fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Int(n) => n.to_string(),
        Value::Nil => "nil".into(),
        other => format!("{other:?}"),
    }
}

/// Prints the pool's gauges and counters as a small table (non-zero error and close counts only).
fn print_stats(pool: &Pool) {
    let s = pool.stats();
    let row = |name: &str, value: String| println!("   {name:<22} {value:>14}");
    println!("== pool stats");
    row(
        "open / idle / in use",
        format!("{} / {} / {}", s.open, s.idle, s.in_use),
    );
    row("connections created", s.connections_created.to_string());
    row("acquires", s.acquires.to_string());
    row("acquire timeouts", s.acquire_timeouts.to_string());
    row("commands sent", s.commands.to_string());
    row(
        "wait total / max",
        format!("{:?} / {:?}", s.wait_time_total, s.wait_time_max),
    );
    for (kind, n) in s.errors.iter().filter(|(_, n)| *n > 0) {
        row(&format!("errors: {kind}"), n.to_string());
    }
    for (reason, n) in s.connections_closed.iter().filter(|(_, n)| *n > 0) {
        row(&format!("closed: {}", reason.as_str()), n.to_string());
    }
}
