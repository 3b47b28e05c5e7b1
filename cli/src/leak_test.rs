//! `redpool leak-test URL [--connections 50] [--rounds 3]`: opens and returns many connections
//! through a redpool pool, closes it, and checks that the server's client count returns to its
//! baseline (every connection the pool opened was closed).

use std::thread;
use std::time::{Duration, Instant};

use redpool::{Pool, PooledConnection, cmd};

use crate::duration::human;
use crate::exit::{self, Failure};
use crate::output;
use crate::target::{Probe, Target};

/// How long to wait after closing a pool for the server to see every connection gone.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);
/// How often the server's client list is read while waiting.
const POLL: Duration = Duration::from_millis(50);
/// How long closing the pool waits for checked-out connections (all are returned before).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What one round saw on the server.
struct Round {
    /// Connections of this test the server listed while they were all checked out.
    seen: usize,
    /// Connections of this test still listed after the wait (a leak when above zero).
    left: usize,
    /// All clients listed after the wait (the tool's own probe not counted).
    total_after: usize,
    /// How long the server took to drop them.
    settled_in: Duration,
    /// The pool's own count of connections created and closed.
    created: u64,
    closed: u64,
}

/// Runs `rounds` rounds of `connections` connections; 0 when nothing leaked, 1 on a leak.
pub fn run(url: &str, connections: usize, rounds: u32) -> Result<u8, Failure> {
    let target = Target::open(url)?;
    let mut probe = target.probe()?;
    let name = format!("redpool-leak-test-{}", std::process::id());
    let baseline = probe.clients()?.len();
    output::print(&format!(
        "leak test on {}: {rounds} rounds of {connections} connections named {name}\n\
         baseline: {baseline} clients (this tool's own connection not counted)\n",
        target.shown
    ))?;
    let mut leaked = 0;
    for n in 1..=rounds {
        let r = round(&target, &mut probe, &name, connections, baseline)?;
        output::print(&format!(
            "round {n}/{rounds}: checked out {connections} at once, PINGed each; the server \
             listed {} of them\n  \
             pool created {}, closed {}; after close the server listed {} of them (after {}) \
             and {} clients in all (baseline {baseline})\n",
            r.seen,
            r.created,
            r.closed,
            r.left,
            human(r.settled_in),
            r.total_after,
        ))?;
        leaked += r.left;
    }
    if leaked > 0 {
        output::print(&format!(
            "LEAK: {leaked} connections opened by this test were still open on the server {} \
             after their pool was closed\n",
            human(SETTLE_LIMIT)
        ))?;
        return Ok(exit::WARNING);
    }
    output::print("PASS: every connection was closed; the server is back to its baseline\n")?;
    Ok(exit::OK)
}

/// One pool: check out `connections` at once, PING each, return them, close the pool, then wait
/// (bounded) until the server lists none of them and no more clients than the baseline.
fn round(
    target: &Target,
    probe: &mut Probe,
    name: &str,
    connections: usize,
    baseline: usize,
) -> Result<Round, Failure> {
    let size = connections.to_string();
    let config = target.config_with(&[
        ("max_connections", &size),
        ("min_idle", "0"),
        ("client_name", name),
    ])?;
    let pool = Pool::new(config)?;
    let checked_out = match checkout_and_ping(&pool, connections) {
        Ok(held) => held,
        Err(err) => {
            pool.close(CLOSE_GRACE);
            return Err(err);
        }
    };
    let seen = ours(probe, name)?.0;
    drop(checked_out);
    pool.close(CLOSE_GRACE);
    let stats = pool.stats();
    let started = Instant::now();
    let (left, total_after) = loop {
        let (left, total) = ours(probe, name)?;
        if (left == 0 && total <= baseline) || started.elapsed() >= SETTLE_LIMIT {
            break (left, total);
        }
        thread::sleep(POLL);
    };
    Ok(Round {
        seen,
        left,
        total_after,
        settled_in: started.elapsed(),
        created: stats.connections_created,
        closed: stats.closed_total(),
    })
}

/// Checks out `n` connections at once and PINGs each; the first failure ends the test.
fn checkout_and_ping(pool: &Pool, n: usize) -> Result<Vec<PooledConnection>, Failure> {
    let mut held = Vec::with_capacity(n);
    for i in 1..=n {
        let mut conn = pool
            .acquire()
            .map_err(|err| Failure::server(format!("connection {i} of {n}: {err}")))?;
        conn.execute(&cmd("PING"))
            .map_err(|err| Failure::server(format!("PING on connection {i} of {n}: {err}")))?;
        held.push(conn);
    }
    Ok(held)
}

/// (clients named `name`, all clients) on the server now, the probe not counted.
fn ours(probe: &mut Probe, name: &str) -> Result<(usize, usize), Failure> {
    let clients = probe.clients()?;
    let named = clients.iter().filter(|c| c.name == name).count();
    Ok((named, clients.len()))
}
