//! Where the tool's password comes from, so that it never has to be on the command line (where
//! `ps` and shell history show it): `REDISCLI_AUTH` (as redis-cli) or `REDIS_PASSWORD`, or a prompt
//! on the terminal with `--ask-pass`. A password inside the URL still works, with a warning.

use std::io::{self, BufRead, Write};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

/// The environment variables read for the password, first found wins.
pub const VARIABLES: [&str; 2] = ["REDISCLI_AUTH", "REDIS_PASSWORD"];

static PROMPTED: OnceLock<String> = OnceLock::new();

/// The password given outside the URL: typed at the prompt, else from the environment.
pub fn given() -> Option<String> {
    PROMPTED.get().cloned().or_else(|| {
        VARIABLES
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    })
}

/// Asks for the password on the terminal, without echo, once per run.
pub fn ask() -> io::Result<()> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    (&tty).write_all(b"Password: ")?;
    let typed = without_echo(&tty, || {
        let mut line = String::new();
        io::BufReader::new(&tty).read_line(&mut line).map(|_| line)
    })?;
    (&tty).write_all(b"\n")?;
    let _ = PROMPTED.set(typed.trim_end_matches(['\r', '\n']).to_string());
    Ok(())
}

/// Runs `read` with the terminal's echo off, restoring it afterwards.
fn without_echo<T>(tty: &std::fs::File, read: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let fd = tty.as_raw_fd();
    // SAFETY: `termios` is plain data, filled by tcgetattr before use.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open terminal and `saved` a valid termios.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    // SAFETY: as above, with a valid termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let result = read();
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    result
}
