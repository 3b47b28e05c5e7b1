//! `redpool clients URL [--name NAME] [--idle-over 300s] [--kill]`: lists the clients matching
//! the filters; closes them only with `--kill` (a dry run by default).

use crate::client_list::{ClientInfo, Filter};
use crate::duration::{human, secs};
use crate::exit::{self, Failure};
use crate::output;
use crate::target::Target;

/// Lists the matching clients (never the CLI's own connection) and, with `kill`, closes each with
/// `CLIENT KILL ID`. Returns 0; a failed kill is an error (exit 2).
pub fn run(url: &str, filter: &Filter, kill: bool) -> Result<u8, Failure> {
    let target = Target::open(url)?;
    let mut probe = target.probe()?;
    let matching: Vec<ClientInfo> = probe
        .clients()?
        .into_iter()
        .filter(|c| filter.matches(c))
        .collect();
    let mut text = table(&matching);
    text.push_str(&format!(
        "{} matching {} on {} (this tool's own connection, id {}, is never included)\n",
        count(matching.len(), "client"),
        describe(filter),
        target.shown,
        probe.own_id,
    ));
    if !kill {
        if !matching.is_empty() {
            text.push_str("dry run: pass --kill to close them\n");
        }
        output::print(&text)?;
        return Ok(exit::OK);
    }
    output::print(&text)?;
    // Read again just before killing: a client that became active (or left) since the listing
    // above is spared. CLIENT KILL ID takes no condition, so a small window remains.
    let still_matching: Vec<u64> = probe
        .clients()?
        .into_iter()
        .filter(|c| filter.matches(c))
        .map(|c| c.id)
        .collect();
    let mut killed = 0;
    for client in matching.iter().filter(|c| still_matching.contains(&c.id)) {
        if probe.kill(client.id)? {
            killed += 1;
        }
    }
    let spared = matching.len() - killed;
    let note = if spared > 0 {
        format!(" ({spared} no longer matched: active again or disconnected)")
    } else {
        String::new()
    };
    let of = count(matching.len(), "client");
    output::print(&format!("killed {killed} of {of}{note}\n"))?;
    Ok(exit::OK)
}

/// `1 client`, `2 clients`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The filters in words: `(name = "worker", idle over 5m)` or `(no filter)`.
fn describe(filter: &Filter) -> String {
    let mut parts = Vec::new();
    if let Some(name) = &filter.name {
        parts.push(format!("name = {name:?}"));
    }
    if let Some(limit) = filter.idle_over {
        parts.push(format!("idle over {}", human(limit)));
    }
    if parts.is_empty() {
        "(no filter)".to_string()
    } else {
        format!("({})", parts.join(", "))
    }
}

/// One line per client under a header; empty when there are none.
fn table(clients: &[ClientInfo]) -> String {
    if clients.is_empty() {
        return String::new();
    }
    let name_width = clients
        .iter()
        .map(|c| c.shown_name().len())
        .max()
        .unwrap_or(0)
        .max(4);
    let addr_width = clients
        .iter()
        .map(|c| c.addr.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut text = format!(
        "{:>8}  {:addr_width$}  {:name_width$}  {:>8}  {:>8}  {:>3}  CMD\n",
        "ID", "ADDR", "NAME", "AGE", "IDLE", "DB"
    );
    for c in clients {
        text.push_str(&format!(
            "{:>8}  {:addr_width$}  {:name_width$}  {:>8}  {:>8}  {:>3}  {}\n",
            c.id,
            c.addr,
            c.shown_name(),
            secs(c.age),
            secs(c.idle),
            c.db,
            c.cmd
        ));
    }
    text
}
