//! Reply integrity, generated: every command of the real server's `COMMAND` table (subcommands
//! included), with arguments that satisfy its arity, sent through the shared pool as one-shot
//! calls, inside pipelines, inside transactions and inside auto-pipelined batches
//! (`execute_batch`), from 8 threads over 2 connections, interleaved with probes whose replies
//! are known (`ECHO <token>`, `SET`/`GET` of a unique key). Every probe must get its own reply: a
//! reply left unread by any command would shift every later reply on its connection, and a probe
//! would see it.
//!
//! The cases come from a seed printed at the start (`REDPOOL_SEED=<n>` replays a run).

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use redpool::{Cmd, ErrorKind, Pool, Value};
use support::{RawReply, RedisServer, with_timeout};

/// Commands the generator never sends, each for a reason outside the client's control: they stop
/// the server, wipe or swap the probes' data, or make the server reach another address.
const NOT_SENT: &[(&str, &str)] = &[
    ("shutdown", "stops the server under test"),
    ("flushall", "deletes the probes' keys"),
    ("flushdb", "deletes the probes' keys"),
    ("swapdb", "swaps the probes' keys away"),
    ("replicaof", "makes the server a replica of another address"),
    ("slaveof", "makes the server a replica of another address"),
    ("failover", "hands the server's role to another address"),
    ("migrate", "connects the server to another address"),
];

const THREADS: usize = 8;
const CONNECTIONS: usize = 2;

/// A command of the server's table: its name (and subcommand), arity and whether it blocks.
#[derive(Clone, Debug)]
struct Spec {
    words: Vec<String>,
    arity: i64,
    blocking: bool,
}

/// xorshift64*: small, seedable, the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seed() -> u64 {
    let seed = std::env::var("REDPOOL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        .max(1);
    eprintln!("alignment: seed {seed} (replay with REDPOOL_SEED={seed})");
    seed
}

/// Every command and subcommand of the server's `COMMAND` reply.
fn command_table(server: &RedisServer) -> Vec<Spec> {
    let reply = server.raw().cmd_str(&["COMMAND"]);
    let mut specs = Vec::new();
    for entry in reply.as_array().expect("COMMAND answers an array") {
        collect(entry, &mut specs);
    }
    specs.sort_by(|a, b| a.words.cmp(&b.words));
    assert!(
        specs.len() > 200,
        "only {} commands in the table",
        specs.len()
    );
    specs
}

fn collect(entry: &RawReply, specs: &mut Vec<Spec>) {
    let fields = entry.as_array().expect("a command entry");
    let name = fields[0].as_str().expect("a name").to_lowercase();
    let arity = fields[1].as_int().expect("an arity");
    let blocking = fields[2]
        .as_array()
        .is_some_and(|flags| flags.iter().any(|f| f.as_str() == Some("blocking")));
    let subcommands = fields.get(9).and_then(RawReply::as_array).unwrap_or(&[]);
    for sub in subcommands {
        collect(sub, specs);
    }
    let words: Vec<String> = name.split('|').map(str::to_string).collect();
    if NOT_SENT.iter().any(|(n, _)| *n == words[0]) || (words.len() == 1 && !subcommands.is_empty())
    {
        return; // a container is sent through its subcommands
    }
    specs.push(Spec {
        words,
        arity,
        blocking,
    });
}

/// One call to make: a command with arguments that satisfy its arity. Numbers stay small (a
/// count, a few milliseconds); a blocking command waits at most 10 ms.
fn generate(spec: &Spec, rng: &mut Rng, seed: u64) -> Cmd {
    let fixed = spec.arity.unsigned_abs() as usize;
    let mut count = fixed.max(spec.words.len());
    if spec.arity < 0 {
        count += rng.below(3);
    }
    let mut cmd = redpool::cmd(&spec.words[0]);
    for word in &spec.words[1..] {
        cmd.arg(word.as_str());
    }
    for _ in spec.words.len()..count {
        match rng.below(10) {
            _ if spec.blocking && rng.below(2) == 0 => cmd.arg("0.01"),
            0..=4 => cmd.arg(format!("gen:{seed}:{}", rng.below(40))),
            5..=7 => cmd.arg(1 + rng.below(3)),
            _ => cmd.arg(format!("w{}", rng.below(1000))),
        };
    }
    cmd
}

/// A probe: a command and the reply it must get.
fn echo_probe(rng: &mut Rng, thread: usize) -> (Cmd, Vec<u8>) {
    let token = format!("probe-{thread}-{}", rng.next());
    (
        redpool::cmd("ECHO").arg(token.as_str()).clone(),
        token.into_bytes(),
    )
}

/// What one run saw.
#[derive(Default)]
struct Tally {
    calls: usize,
    probes_checked: usize,
    wrong: Vec<String>,
    error_kinds: BTreeMap<String, usize>,
    /// A few connection and timeout errors, printed (QUIT closes its connection, for one).
    notes: Vec<String>,
}

impl Tally {
    fn error(&mut self, what: &str, err: &redpool::Error) {
        *self
            .error_kinds
            .entry(err.kind().as_str().to_string())
            .or_default() += 1;
        if matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout) && self.notes.len() < 10
        {
            self.notes.push(format!("{what}: {err}"));
        }
        if err.kind() == ErrorKind::Protocol {
            self.wrong.push(format!("{what}: a protocol error: {err}"));
        }
    }
    fn check(&mut self, what: &str, got: Option<&Value>, want: &[u8]) {
        self.probes_checked += 1;
        let wanted = match want {
            b"QUEUED" => Value::SimpleString("QUEUED".into()),
            token => Value::BulkString(token.to_vec()),
        };
        if got != Some(&wanted) {
            self.wrong.push(format!(
                "{what}: probe expected {:?}, got {got:?}",
                String::from_utf8_lossy(want)
            ));
        }
    }
}

/// One thread's share of the work: each command of `specs` once alone, once in a pipeline and
/// once in a transaction, each surrounded by probes.
fn drive(pool: &Pool, specs: &[Spec], thread: usize, seed: u64, tally: &Mutex<Tally>) {
    let mut rng = Rng(seed ^ ((thread as u64 + 1) << 32));
    let mut local = Tally::default();
    for (i, spec) in specs.iter().enumerate() {
        let name = spec.words.join(" ");
        // Alone.
        let cmd = generate(spec, &mut rng, seed);
        local.calls += 1;
        if let Err(err) = pool.execute(&cmd) {
            local.error(&format!("{name} alone"), &err);
        }
        probe_alone(pool, &mut rng, thread, i, &name, &mut local);
        // In a pipeline and in a transaction, between probes.
        for transaction in [false, true] {
            let mut cmds = Vec::new();
            let mut probes = Vec::new();
            // In a pipeline, a probe after a generated MULTI (and before an EXEC or DISCARD) is
            // queued: its reply is QUEUED.
            let mut queued = false;
            for _ in 0..1 + rng.below(3) {
                if rng.below(2) == 0 {
                    let (probe, token) = echo_probe(&mut rng, thread);
                    probes.push((cmds.len(), if queued { b"QUEUED".to_vec() } else { token }));
                    cmds.push(probe);
                }
                match spec.words[0].as_str() {
                    "multi" => queued = true,
                    "exec" | "discard" => queued = false,
                    _ => {}
                }
                cmds.push(generate(spec, &mut rng, seed));
            }
            let (probe, token) = echo_probe(&mut rng, thread);
            probes.push((
                cmds.len(),
                if queued && !transaction {
                    b"QUEUED".to_vec()
                } else {
                    token
                },
            ));
            cmds.push(probe);
            local.calls += 1;
            let what = format!(
                "{name} in a {}",
                if transaction {
                    "transaction"
                } else {
                    "pipeline"
                }
            );
            let replies = if transaction {
                match pool.transaction(&cmds) {
                    Ok(Some(replies)) => Ok(replies),
                    Ok(None) => {
                        local.wrong.push(format!("{what}: aborted with no WATCH"));
                        continue;
                    }
                    Err(err) => Err(err),
                }
            } else {
                pool.pipeline(&cmds)
            };
            match replies {
                Ok(replies) => {
                    for (at, token) in &probes {
                        local.check(&what, replies.get(*at), token);
                    }
                }
                Err(err) => local.error(&what, &err),
            }
            probe_alone(pool, &mut rng, thread, i, &name, &mut local);
        }
        in_a_batch(pool, spec, &mut rng, thread, seed, &mut local);
        probe_alone(pool, &mut rng, thread, i, &name, &mut local);
    }
    let mut tally = tally.lock().unwrap();
    tally.calls += local.calls;
    tally.probes_checked += local.probes_checked;
    tally.wrong.extend(local.wrong);
    tally.notes.extend(local.notes);
    for (kind, n) in local.error_kinds {
        *tally.error_kinds.entry(kind).or_default() += n;
    }
}

/// The command of `spec`, 1 to 3 times, in one `execute_batch` (auto-pipelining) between
/// probes: each probe must get its own reply whatever the generated commands did (refused, sent
/// alone because they block, failed on the server).
fn in_a_batch(
    pool: &Pool,
    spec: &Spec,
    rng: &mut Rng,
    thread: usize,
    seed: u64,
    tally: &mut Tally,
) {
    let what = format!("{} in a batch", spec.words.join(" "));
    let mut cmds = Vec::new();
    let mut probes = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let (probe, token) = echo_probe(rng, thread);
        probes.push((cmds.len(), token));
        cmds.push(probe);
        cmds.push(generate(spec, rng, seed));
    }
    let (probe, token) = echo_probe(rng, thread);
    probes.push((cmds.len(), token));
    cmds.push(probe);
    tally.calls += 1;
    let outcomes = pool.execute_batch(&cmds);
    if outcomes.len() != cmds.len() {
        tally.wrong.push(format!(
            "{what}: {} outcomes for {} commands",
            outcomes.len(),
            cmds.len()
        ));
        return;
    }
    for (at, token) in &probes {
        match &outcomes[*at] {
            Ok(value) => tally.check(&what, Some(value), token),
            Err(err) => tally.error(&what, err),
        }
    }
}

/// An ECHO and a SET/GET of a key no other call touches, each checked.
fn probe_alone(
    pool: &Pool,
    rng: &mut Rng,
    thread: usize,
    i: usize,
    after: &str,
    tally: &mut Tally,
) {
    let what = format!("probe after {after}");
    let (echo, token) = echo_probe(rng, thread);
    match pool.execute(&echo) {
        Ok(value) => tally.check(&what, Some(&value), &token),
        Err(err) => tally.wrong.push(format!("{what}: ECHO failed: {err}")),
    }
    let key = format!("probe:{thread}:{i}");
    let value = format!("v{}", rng.next());
    match pool
        .execute(redpool::cmd("SET").arg(&key).arg(&value))
        .and_then(|_| pool.execute(redpool::cmd("GET").arg(&key)))
    {
        Ok(got) => tally.check(&what, Some(&got), value.as_bytes()),
        Err(err) => tally.wrong.push(format!("{what}: SET/GET failed: {err}")),
    }
}

#[test]
fn every_command_of_the_server_leaves_every_reply_with_its_caller() {
    with_timeout(Duration::from_secs(300), || {
        let seed = seed();
        let server = RedisServer::start();
        let specs = command_table(&server);
        let url = format!(
            "{}?max_connections={CONNECTIONS}&acquire_timeout=60s&socket_timeout=30s&retries=0",
            server.url()
        );
        let pool = Pool::from_url(&url).expect("pool");
        let tally = Arc::new(Mutex::new(Tally::default()));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                // Every command goes to two threads, each taking its share in its own order.
                let mut share: Vec<Spec> = specs
                    .iter()
                    .skip(t % (THREADS / 2))
                    .step_by(THREADS / 2)
                    .cloned()
                    .collect();
                let mut rng = Rng(seed.wrapping_add(t as u64 * 7919));
                for i in (1..share.len()).rev() {
                    share.swap(i, rng.below(i + 1));
                }
                let (pool, tally) = (pool.clone(), tally.clone());
                thread::spawn(move || drive(&pool, &share, t, seed, &tally))
            })
            .collect();
        for handle in handles {
            handle.join().expect("a driver thread panicked");
        }
        let tally = tally.lock().unwrap();
        eprintln!(
            "alignment: seed {seed}: {} commands, {} calls, {} probes checked, errors by kind {:?}",
            specs.len(),
            tally.calls,
            tally.probes_checked,
            tally.error_kinds
        );
        for note in &tally.notes {
            eprintln!("alignment: {note}");
        }
        assert!(tally.probes_checked > specs.len() * 4, "too few probes");
        assert!(
            tally.wrong.is_empty(),
            "seed {seed}: {} wrong replies, first ones:\n{}",
            tally.wrong.len(),
            tally
                .wrong
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    });
}
