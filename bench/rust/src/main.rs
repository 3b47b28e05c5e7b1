//! Pool checkout + return alone (no command in between): redpool's `Pool::acquire` + drop
//! against r2d2's `Pool::get` + drop on redis-rs's r2d2 adapter.
//!
//! ```text
//! redpool-bench --client redpool|r2d2|r2d2-tested --port P [--concurrency T] [--connections N]
//!               [--ops N] [--max-seconds S] [--label L]
//! ```
//!
//! `r2d2` turns off r2d2's test-on-checkout (a PING round trip per checkout, its default);
//! `r2d2-tested` keeps the default. T threads share N checkouts+returns over a pool of N
//! connections opened beforehand; prints one JSON line (CPU per op from getrusage).
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

struct Args {
    client: String,
    port: u16,
    concurrency: usize,
    connections: usize,
    ops: u64,
    max_seconds: f64,
    label: String,
}

fn parse() -> Args {
    let mut a = Args {
        client: String::new(),
        port: 0,
        concurrency: 1,
        connections: 4,
        ops: 1_000_000,
        max_seconds: 30.0,
        label: String::new(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let [key, value] = pair else { usage("options come in pairs") };
        match key.as_str() {
            "--client" => a.client = value.clone(),
            "--port" => a.port = num(key, value),
            "--concurrency" => a.concurrency = num(key, value),
            "--connections" => a.connections = num(key, value),
            "--ops" => a.ops = num(key, value),
            "--max-seconds" => a.max_seconds = num(key, value),
            "--label" => a.label = value.clone(),
            _ => usage(key),
        }
    }
    if a.port == 0 || a.concurrency == 0 || a.connections == 0 {
        usage("need --port and positive counts");
    }
    a
}

fn num<T: std::str::FromStr>(key: &str, value: &str) -> T {
    value.parse().unwrap_or_else(|_| usage(key))
}

fn usage(why: &str) -> ! {
    eprintln!("redpool-bench: bad option: {why} (see src/main.rs)");
    std::process::exit(2)
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Runs `ops` checkouts + returns of `checkout` over `threads` threads, each bounded by `limit`.
fn measure(threads: usize, ops: u64, limit: Duration, checkout: Arc<dyn Fn() + Send + Sync>) -> (u64, f64, f64) {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (barrier, checkout) = (barrier.clone(), checkout.clone());
            let mine = ops / threads as u64 + u64::from((t as u64) < ops % threads as u64);
            std::thread::spawn(move || {
                barrier.wait();
                let deadline = Instant::now() + limit;
                let mut done = 0;
                while done < mine {
                    if done % 1024 == 0 && Instant::now() > deadline {
                        break;
                    }
                    checkout();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    barrier.wait();
    let done: u64 = handles.into_iter().map(|h| h.join().expect("bench thread")).sum();
    (done, t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0)
}

fn main() {
    let a = parse();
    let url = format!("redis://127.0.0.1:{}/0", a.port);
    let n = a.connections;
    let checkout: Arc<dyn Fn() + Send + Sync> = match a.client.as_str() {
        "redpool" => {
            let pool = redpool::Pool::from_url(&format!("{url}?max_connections={n}&min_idle={n}"))
                .expect("redpool pool");
            // Open every connection before timing (min_idle warms up; this makes sure).
            let held: Vec<_> = (0..n).map(|_| pool.acquire().expect("acquire")).collect();
            drop(held);
            Arc::new(move || drop(std::hint::black_box(pool.acquire().expect("acquire"))))
        }
        "r2d2" | "r2d2-tested" => {
            let client = redis::Client::open(url.as_str()).expect("redis client");
            let pool = r2d2::Pool::builder()
                .max_size(n as u32)
                .min_idle(Some(n as u32))
                .test_on_check_out(a.client == "r2d2-tested")
                .build(client)
                .expect("r2d2 pool");
            let held: Vec<_> = (0..n).map(|_| pool.get().expect("get")).collect();
            drop(held);
            Arc::new(move || drop(std::hint::black_box(pool.get().expect("get"))))
        }
        other => usage(other),
    };
    let (ops, seconds, cpu) = measure(a.concurrency, a.ops, Duration::from_secs_f64(a.max_seconds), checkout);
    println!(
        "{{\"lang\":\"rust\",\"scenario\":\"checkout\",\"label\":\"{}\",\"client\":\"{}\",\"concurrency\":{},\
         \"pipeline\":0,\"value_size\":0,\"connections\":{},\"ops\":{},\"seconds\":{:.6},\"ops_per_sec\":{:.1},\
         \"cpu_us_per_op\":{:.4},\"ns_per_op\":{:.1}}}",
        a.label,
        a.client,
        a.concurrency,
        n,
        ops,
        seconds,
        ops as f64 / seconds,
        cpu * 1e6 / ops as f64,
        seconds * 1e9 / ops as f64,
    );
}
