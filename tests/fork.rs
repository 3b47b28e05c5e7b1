//! Fork safety: a child process uses the shared pool with its own connections, and the parent's
//! pool keeps working on its own sockets. One test per binary, so no other test thread runs
//! while the process forks.

mod support;

use std::time::Duration;

use redpool::{CloseReason, Value, cmd};
use support::{RedisServer, unique_name, with_timeout};

/// Runs `child` in a forked child process and returns its exit code.
fn in_child(child: impl FnOnce() -> bool) -> i32 {
    // SAFETY: fork() in a test process; the child only runs `child` and then `_exit`s without
    // unwinding or running destructors of the parent's state.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(false);
        // SAFETY: ends the child immediately.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child did not exit normally");
    libc::WEXITSTATUS(status)
}

#[test]
fn child_after_fork_uses_its_own_connections_and_parent_is_undisturbed() {
    with_timeout(Duration::from_secs(60), || {
        let server = RedisServer::start();
        let name = unique_name("forked");
        let url = format!(
            "{}/0?client_name={name}&max_connections=4&min_idle=2",
            server.url()
        );
        let pool = redpool::shared(&url).unwrap();
        pool.execute(cmd("SET").arg("who").arg("parent")).unwrap();
        let parent_ids: Vec<String> = server
            .client_list()
            .into_iter()
            .filter(|c| c.get("name") == Some(&name))
            .map(|c| c["id"].clone())
            .collect();
        assert_eq!(parent_ids.len(), 2);
        // Hold one connection across the fork, as a careless caller might.
        let mut held = pool.acquire().unwrap();

        let code = in_child(|| {
            let pool = redpool::shared(&url).unwrap();
            // The held connection belongs to the parent: using it in the child is refused.
            let mut ok = held.execute(&cmd("PING")).is_err();
            for i in 0..50 {
                ok &= pool.execute(cmd("INCR").arg("child-count")).ok() == Some(Value::Int(i + 1));
            }
            let stats = pool.stats();
            if !ok {
                eprintln!("child: unexpected replies; stats {stats:?}");
            }
            // The idle connection inherited from the parent (one of two is held) was dropped unused.
            ok && stats.closed(CloseReason::Forked) == 1 && stats.open >= 1
        });
        assert_eq!(code, 0, "the child could not use the pool");

        // The parent's sockets were not touched: same server-side clients, and they still work.
        let mut still_there: Vec<String> = server
            .client_list()
            .into_iter()
            .filter(|c| c.get("name") == Some(&name))
            .map(|c| c["id"].clone())
            .collect();
        still_there.sort();
        for id in &parent_ids {
            assert!(
                still_there.contains(id),
                "parent connection {id} was closed by the child"
            );
        }
        assert_eq!(
            held.execute(cmd("GET").arg("who")).unwrap(),
            Value::BulkString(b"parent".to_vec())
        );
        drop(held);
        for _ in 0..20 {
            assert_eq!(
                pool.execute(cmd("GET").arg("who")).unwrap(),
                Value::BulkString(b"parent".to_vec())
            );
        }
        assert_eq!(
            pool.execute(cmd("GET").arg("child-count")).unwrap(),
            Value::BulkString(b"50".to_vec())
        );
        assert_eq!(pool.stats().closed_total(), 0, "the parent closed nothing");
    });
}
