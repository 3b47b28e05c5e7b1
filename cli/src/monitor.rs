//! `redpool monitor URL [--interval 2s] [--count N]`: a live view of the server's clients grouped
//! by name, and the CLI's own pool stats.

use std::io::IsTerminal;
use std::thread;
use std::time::{Duration, Instant};

use crate::client_list::{self, ClientInfo, Group};
use crate::duration::secs;
use crate::exit::{self, Failure};
use crate::output::{self, pool_stats_line};
use crate::target::Target;

/// Groups shown per frame; the rest are summed up in one line.
const MAX_GROUPS: usize = 30;
/// Moves the cursor home and clears the screen (only when stdout is a terminal).
const CLEAR: &str = "\x1b[H\x1b[2J";

/// Refreshes every `interval`, `count` times (forever when `None`, until Ctrl-C). The first frame
/// failing is an error (the server is unreachable); later failures are shown in the frame and
/// the view keeps refreshing. Returns 0, or 2 when the last frame could not reach the server.
pub fn run(url: &str, interval: Duration, count: Option<u64>) -> Result<u8, Failure> {
    let target = Target::open(url)?;
    let tty = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut frame = 0u64;
    let last_ok = loop {
        frame += 1;
        let clients = target.probe().and_then(|mut probe| probe.clients());
        if frame == 1 {
            if let Err(err) = clients {
                return Err(err);
            }
        }
        let header = format!(
            "redpool monitor {}  refresh {}{}, every {}, {} elapsed\n",
            target.shown,
            frame,
            count.map_or(String::new(), |n| format!(" of {n}")),
            crate::duration::human(interval),
            secs(started.elapsed().as_secs()),
        );
        let body = match &clients {
            Ok(clients) => render(clients),
            Err(err) => format!("server: {err}\n"),
        };
        let local = format!(
            "\nthis monitor's pool: {}\n",
            pool_stats_line(&target.pool.stats())
        );
        let (before, after) = if tty { (CLEAR, "") } else { ("", "\n") };
        output::print(&format!("{before}{header}{body}{local}{after}"))?;
        if count.is_some_and(|n| frame >= n) {
            break clients.is_ok();
        }
        thread::sleep(interval);
    };
    Ok(if last_ok { exit::OK } else { exit::FAILURE })
}

/// The client table of one frame.
fn render(clients: &[ClientInfo]) -> String {
    let groups = client_list::group_by_name(clients);
    let mut text = format!(
        "server: {} clients in {} groups (this monitor's own connection not counted)\n\n",
        clients.len(),
        groups.len()
    );
    let width = groups
        .iter()
        .take(MAX_GROUPS)
        .map(|g| g.name.len())
        .max()
        .unwrap_or(0)
        .max(8);
    text.push_str(&format!(
        "{:width$}  {:>7}  {:>8}  {:>8}  {:>8}  {:>8}  LAST CMD\n",
        "NAME", "CLIENTS", "IDLE MIN", "MEDIAN", "MAX", "OLDEST"
    ));
    for g in groups.iter().take(MAX_GROUPS) {
        text.push_str(&row(g, width));
    }
    if groups.len() > MAX_GROUPS {
        let rest = &groups[MAX_GROUPS..];
        let n: usize = rest.iter().map(|g| g.count).sum();
        text.push_str(&format!("... {} more groups, {n} clients\n", rest.len()));
    }
    text.push_str(&format!("{:width$}  {:>7}\n", "TOTAL", clients.len()));
    text
}

fn row(g: &Group, width: usize) -> String {
    let (cmd, n) = &g.top_cmd;
    format!(
        "{:width$}  {:>7}  {:>8}  {:>8}  {:>8}  {:>8}  {cmd} ({n})\n",
        g.name,
        g.count,
        secs(g.idle_min),
        secs(g.idle_median),
        secs(g.idle_max),
        secs(g.oldest),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_groups_and_a_total() {
        let clients = client_list::parse(
            "id=1 addr=a name=web age=90 idle=5 db=0 cmd=get\n\
             id=2 addr=b name=web age=30 idle=65 db=0 cmd=get\n\
             id=3 addr=c name= age=1 idle=1 db=0 cmd=ping\n",
            0,
        );
        let text = render(&clients);
        assert!(text.starts_with("server: 3 clients in 2 groups"), "{text}");
        let web = text.lines().find(|l| l.starts_with("web")).expect(&text);
        let cols: Vec<&str> = web.split_whitespace().collect();
        assert_eq!(
            cols,
            ["web", "2", "5s", "5s", "1m5s", "1m30s", "get", "(2)"]
        );
        assert!(text.contains("(no name)"), "{text}");
        assert!(
            text.lines()
                .last()
                .unwrap()
                .split_whitespace()
                .eq(["TOTAL", "3"])
        );
    }
}
