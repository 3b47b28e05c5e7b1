//! `redpool`: a command-line tool for the Redis servers redpool talks to. Health checks, a live
//! view of the server's clients by name, finding and closing idle clients, and a connection leak
//! test, all through the redpool core (`redpool::Pool`).
//!
//! This file holds the arguments and the dispatch; each command is its own module.

mod client_list;
mod clients;
mod duration;
mod exit;
mod health;
mod leak_test;
mod monitor;
mod output;
mod password;
mod target;

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser, Subcommand};

use crate::client_list::Filter;
use crate::exit::Failure;

/// Talk to a Redis server through redpool: health, clients, leaks.
///
/// URL is a redpool URL: redis://[user:password@]host:port/db, rediss://... or unix://path, with
/// redpool options as query parameters (for example ?connect_timeout=5s). The tool's own
/// defaults: connect_timeout=2s, acquire_timeout=3s, retries=0, client_name=redpool-cli.
/// The password: from REDISCLI_AUTH or REDIS_PASSWORD, or typed with --ask-pass (a password in
/// the URL works too, but shows in ps and shell history). Passwords are never printed.
#[derive(Debug, Parser)]
#[command(
    name = "redpool",
    version,
    after_help = top_level_help(),
)]
struct Cli {
    /// Ask for the password on the terminal (not echoed) instead of reading it from
    /// REDISCLI_AUTH / REDIS_PASSWORD or the URL.
    #[arg(long, global = true)]
    ask_pass: bool,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check the server's health (PING latency, breaker, INFO fields).
    ///
    /// Exit code 0 healthy, 1 degraded, 2 unhealthy or unreachable, 64 bad arguments.
    #[command(after_help = "Examples:\n  redpool health redis://127.0.0.1:6379\n  \
                            redpool health --json redis://127.0.0.1:6379/0 | jq .status")]
    Health {
        /// The server, e.g. redis://127.0.0.1:6379/0.
        url: String,
        /// Print the report as one JSON object (the same JSON as the /health endpoint).
        #[arg(long)]
        json: bool,
    },
    /// Live view of the server's clients grouped by name, and this tool's pool stats.
    ///
    /// Refreshes every --interval until Ctrl-C, or --count times. When stdout is not a terminal
    /// the frames are printed one after another instead of redrawing the screen.
    #[command(after_help = "Examples:\n  redpool monitor redis://127.0.0.1:6379\n  \
                            redpool monitor --interval 5s --count 3 redis://127.0.0.1:6379 > frames.txt")]
    Monitor {
        /// The server, e.g. redis://127.0.0.1:6379/0.
        url: String,
        /// Time between refreshes.
        #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = duration::parse_positive)]
        interval: Duration,
        /// Stop after N refreshes (default: until Ctrl-C).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// List the server's clients matching filters; close them with --kill.
    ///
    /// A dry run by default: it prints what it would close. This tool's own connection is never
    /// listed or closed. --kill needs at least one filter.
    #[command(
        group(ArgGroup::new("filter").multiple(true).args(["name", "idle_over"])),
        after_help = "Examples:\n  redpool clients --idle-over 5m redis://127.0.0.1:6379\n  \
                      redpool clients --name worker --idle-over 300s --kill redis://127.0.0.1:6379"
    )]
    Clients {
        /// The server, e.g. redis://127.0.0.1:6379/0.
        url: String,
        /// Only clients with exactly this name (CLIENT SETNAME).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Only clients idle for longer than this.
        #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
        idle_over: Option<Duration>,
        /// Close the matching clients (CLIENT KILL ID) instead of only listing them.
        #[arg(long, requires = "filter")]
        kill: bool,
    },
    /// Check that a redpool pool leaves no connection open on the server.
    ///
    /// Records the server's client count, then per round opens a pool with max_connections =
    /// --connections, checks all of them out at once, PINGs each, returns them and closes the
    /// pool, and waits (up to 5s) for the server's count to return to the baseline.
    /// Exit code 0 no leak, 1 leak found, 2 the server could not be reached or a PING failed.
    #[command(
        after_help = "Examples:\n  redpool leak-test redis://127.0.0.1:6379\n  \
                            redpool leak-test --connections 200 --rounds 5 redis://127.0.0.1:6379"
    )]
    LeakTest {
        /// The server, e.g. redis://127.0.0.1:6379/0.
        url: String,
        /// Connections per round (all checked out at once).
        #[arg(long, default_value_t = 50, value_name = "N",
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        connections: u32,
        /// How many rounds (a new pool each).
        #[arg(long, default_value_t = 3, value_name = "N",
              value_parser = clap::value_parser!(u32).range(1..=1_000))]
        rounds: u32,
    },
}

/// The example, duration forms and exit codes under the top-level help.
fn top_level_help() -> String {
    format!(
        "Examples:\n  redpool health redis://127.0.0.1:6379\n  \
         REDISCLI_AUTH=... redpool monitor redis://127.0.0.1:6379/0\n  \
         redpool clients --ask-pass --idle-over 5m redis://127.0.0.1:6379\n\n\
         Durations: 300s, 5m, 1500ms, or a plain number of seconds.\n\n{}",
        exit::HELP
    )
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    if cli.ask_pass {
        if let Err(err) = password::ask() {
            eprintln!("redpool: cannot read the password from the terminal: {err}");
            return ExitCode::from(exit::USAGE);
        }
    }
    let result = match cli.command {
        Command::Health { url, json } => health::run(&url, json),
        Command::Monitor {
            url,
            interval,
            count,
        } => monitor::run(&url, interval, count),
        Command::Clients {
            url,
            name,
            idle_over,
            kill,
        } => clients::run(&url, &Filter { name, idle_over }, kill),
        Command::LeakTest {
            url,
            connections,
            rounds,
        } => leak_test::run(&url, connections as usize, rounds),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => fail(&failure),
    }
}

/// Help and version go to stdout with exit code 0; usage errors become one line on stderr.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = output::print(&err.render().to_string());
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            eprint!("{}", err.render());
            ExitCode::from(exit::USAGE)
        }
        _ => {
            // clap's message is the first paragraph (it may list arguments on further lines).
            let rendered = err.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            fail(&Failure::usage(format!("{message} (see --help)")))
        }
    }
}

/// One line on stderr and the failure's exit code.
fn fail(failure: &Failure) -> ExitCode {
    eprintln!("redpool: {failure}");
    ExitCode::from(failure.code)
}
