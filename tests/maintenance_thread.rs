//! The maintenance thread ends with its pool. Alone in its binary, so no other test's pools start
//! maintenance threads while it counts them.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use redpool::Pool;
use support::{RedisServer, unique_name, with_timeout};

fn maintainers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "redpool-maintai")
        .count()
}

#[test]
fn maintenance_thread_stops_with_its_pool() {
    with_timeout(Duration::from_secs(60), || {
        let server = RedisServer::start();
        let url = |name: String| format!("{}/0?client_name={name}&min_idle=1", server.url());
        let kept = Pool::from_url(&url(unique_name("kept"))).unwrap();
        let closed = Pool::from_url(&url(unique_name("closed"))).unwrap();
        let dropped = Pool::from_url(&url(unique_name("dropped"))).unwrap();
        // A new thread names itself once it runs.
        let deadline = Instant::now() + Duration::from_secs(5);
        while maintainers() != 3 {
            assert!(
                Instant::now() < deadline,
                "one thread per pool: {}",
                maintainers()
            );
            thread::sleep(Duration::from_millis(5));
        }
        closed.close(Duration::from_secs(1));
        drop(dropped);
        // One ends because its pool closed, one because nothing else holds its pool.
        while maintainers() != 1 {
            assert!(Instant::now() < deadline, "threads left: {}", maintainers());
            thread::sleep(Duration::from_millis(20));
        }
        drop(kept);
        while maintainers() != 0 {
            assert!(Instant::now() < deadline, "threads left: {}", maintainers());
            thread::sleep(Duration::from_millis(20));
        }
    });
}
