//! The server a command talks to: the pool configuration with the CLI's defaults, and the probe
//! connection (one checked-out connection that knows its own `CLIENT ID`).

use std::time::Duration;

use redpool::{Config, ConfigBuilder, Pool, PooledConnection, Value, cmd};

use crate::client_list::{self, ClientInfo};
use crate::exit::Failure;

/// The client name of the CLI's own connections (visible in `CLIENT LIST`).
pub const CLIENT_NAME: &str = "redpool-cli";

/// Settings the CLI uses unless the URL's query sets them: fail in seconds, not after long
/// retries, against an unreachable server, and name the CLI's connections.
const CLI_DEFAULTS: &[(&str, &str)] = &[
    ("connect_timeout", "2s"),
    ("acquire_timeout", "3s"),
    ("socket_timeout", "5s"),
    ("retries", "0"),
    ("client_name", CLIENT_NAME),
    ("max_connections", "2"),
];

/// How long closing a pool waits for checked-out connections.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The knob names set in `url`'s query string.
fn query_knobs(url: &str) -> Vec<&str> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(k, _)| k))
        .collect()
}

/// The configuration for `url`: the URL's own settings, then the CLI defaults for knobs the URL
/// does not set, then `forced` (settings a command needs whatever the URL says).
pub fn config(url: &str, forced: &[(&str, &str)]) -> Result<Config, Failure> {
    let mut builder = ConfigBuilder::from_url(url)?;
    let url_has_password = builder
        .clone()
        .build()
        .is_ok_and(|c| c.password().is_some());
    if !url_has_password {
        if let Some(password) = crate::password::given() {
            builder.set("password", &password)?;
        }
    }
    let in_url = query_knobs(url);
    for (knob, value) in CLI_DEFAULTS.iter().filter(|(k, _)| !in_url.contains(k)) {
        builder.set(knob, value)?;
    }
    for (knob, value) in forced {
        builder.set(knob, value)?;
    }
    Ok(builder.build()?)
}

/// The server and the CLI's own small pool to it.
pub struct Target {
    /// The CLI's pool (`pool.stats()` is what the monitor shows as local stats).
    pub pool: Pool,
    /// The server as `redis://host:port/db`, without the password: safe to print.
    pub shown: String,
    /// The URL as given (for commands that open more pools to the same server).
    url: String,
}

impl Target {
    /// Parses `url` and creates the pool (no connection is opened yet).
    pub fn open(url: &str) -> Result<Target, Failure> {
        let config = config(url, &[])?;
        if url.contains('@') && config.password().is_some() && crate::password::given().is_none() {
            eprintln!(
                "redpool: warning: a password in the URL shows in ps and shell history; set \
                 REDISCLI_AUTH (or REDIS_PASSWORD) or use --ask-pass instead"
            );
        }
        let shown = config.redacted_url();
        Ok(Target {
            pool: Pool::new(config)?,
            shown,
            url: url.to_string(),
        })
    }

    /// The configuration for another pool to the same server (see [`config`]).
    pub fn config_with(&self, forced: &[(&str, &str)]) -> Result<Config, Failure> {
        config(&self.url, forced)
    }

    /// Checks out the probe connection and asks for its `CLIENT ID`. Failing to connect is a
    /// one-line error naming the server.
    pub fn probe(&self) -> Result<Probe, Failure> {
        let connect = |err: redpool::Error| match err.to_string().strip_prefix("connecting to ") {
            // The core names the server as host:port (never the password).
            Some(rest) => Failure::server(format!("cannot connect to {rest}")),
            None => Failure::server(format!("{}: {err}", self.shown)),
        };
        let mut conn = self.pool.acquire().map_err(connect)?;
        let own_id = match conn.execute(cmd("CLIENT").arg("ID")).map_err(connect)? {
            Value::Int(id) => u64::try_from(id).unwrap_or(0),
            other => return Err(unexpected("CLIENT ID", &other)),
        };
        Ok(Probe { conn, own_id })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.pool.close(CLOSE_GRACE);
    }
}

/// The CLI's own connection to the server, held for the whole command so its id stays valid.
pub struct Probe {
    conn: PooledConnection,
    /// Its `CLIENT ID`: left out of every listing, never killed.
    pub own_id: u64,
}

impl Probe {
    /// `CLIENT LIST`, without the probe itself.
    pub fn clients(&mut self) -> Result<Vec<ClientInfo>, Failure> {
        let reply = self.conn.execute(cmd("CLIENT").arg("LIST"))?;
        let text = match &reply {
            Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Value::VerbatimString { text, .. } => text.clone(),
            Value::SimpleString(text) => text.clone(),
            other => return Err(unexpected("CLIENT LIST", other)),
        };
        Ok(client_list::parse(&text, self.own_id))
    }

    /// `CLIENT KILL ID id`: true when it was closed, false when it had already gone.
    pub fn kill(&mut self, id: u64) -> Result<bool, Failure> {
        if id == self.own_id {
            return Ok(false);
        }
        match self
            .conn
            .execute(cmd("CLIENT").arg("KILL").arg("ID").arg(id))
        {
            Ok(Value::Int(n)) => Ok(n > 0),
            Ok(other) => Err(unexpected("CLIENT KILL", &other)),
            Err(err) if err.message().contains("No such client") => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

fn unexpected(what: &str, reply: &Value) -> Failure {
    Failure::server(format!("{what}: unexpected reply {reply:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_settings_win_over_cli_defaults_and_forced_settings_win_over_both() {
        let c = config("redis://127.0.0.1:6379/0", &[]).unwrap();
        assert_eq!(c.connect_timeout(), Duration::from_secs(2));
        assert_eq!(c.client_name(), CLIENT_NAME);
        let c = config(
            "redis://127.0.0.1:6379/0?connect_timeout=7s&client_name=x",
            &[],
        )
        .unwrap();
        assert_eq!(c.connect_timeout(), Duration::from_secs(7));
        assert_eq!(c.client_name(), "x");
        let c = config(
            "redis://127.0.0.1/?max_connections=5",
            &[("max_connections", "9")],
        )
        .unwrap();
        assert_eq!(c.max_connections(), 9);
    }

    #[test]
    fn bad_urls_are_usage_errors_without_the_password() {
        let err = config("redis://:hunter2@127.0.0.1:6379/0?nonsense=1", &[])
            .err()
            .unwrap();
        assert_eq!(err.code, crate::exit::USAGE);
        assert!(err.message.contains("nonsense"), "{}", err.message);
        assert!(!err.message.contains("hunter2"), "{}", err.message);
        let shown = config("redis://:hunter2@127.0.0.1:6379/0", &[])
            .unwrap()
            .redacted_url();
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
