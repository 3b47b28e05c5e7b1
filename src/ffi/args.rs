//! Commands coming in from C: `argc / argv / argvlen`, as hiredis's `redisCommandArgv`.

use std::ffi::{CStr, c_char};

use redis::Cmd;

use super::null;
use crate::error::{Error, Result};

/// One command of a pipeline or transaction, in `argc / argv / argvlen` form.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct redpool_cmd {
    /// Number of arguments (the command name counts); at least 1.
    pub argc: usize,
    /// The arguments. Borrowed for the duration of the call.
    pub argv: *const *const c_char,
    /// Length of each argument in bytes (binary safe), or NULL when every argument is a
    /// NUL-terminated string.
    pub argvlen: *const usize,
}

/// Builds a command from `argc / argv / argvlen`.
///
/// # Safety
/// `argv` is NULL or points to `argc` pointers, each NULL or valid for `argvlen[i]` bytes (or
/// NUL-terminated when `argvlen` is NULL); `argvlen` is NULL or points to `argc` lengths.
pub(crate) unsafe fn command(
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
) -> Result<Cmd> {
    if argc == 0 {
        return Err(Error::invalid(
            "argc",
            0,
            "a command needs at least its name",
        ));
    }
    if argv.is_null() {
        return Err(null("argv"));
    }
    let arg = |i: usize| -> Result<&[u8]> {
        // SAFETY: `argv` has `argc` elements per the caller's promise.
        let arg = unsafe { *argv.add(i) };
        if arg.is_null() {
            return Err(null(&format!("argv[{i}]")));
        }
        Ok(if argvlen.is_null() {
            // SAFETY: NUL-terminated per the caller's promise when no lengths are given.
            unsafe { CStr::from_ptr(arg) }.to_bytes()
        } else {
            // SAFETY: `argvlen` has `argc` elements and `arg` is valid for that many bytes.
            unsafe { std::slice::from_raw_parts(arg.cast::<u8>(), *argvlen.add(i)) }
        })
    };
    // Sized up front: one allocation for the bytes instead of one per growth.
    let total = (0..argc).try_fold(0usize, |sum, i| Ok::<_, Error>(sum + arg(i)?.len()))?;
    let mut cmd = Cmd::with_capacity(argc, total);
    for i in 0..argc {
        cmd.arg(arg(i)?);
    }
    Ok(cmd)
}

/// Builds the commands of a pipeline or transaction.
///
/// # Safety
/// `cmds` is NULL or points to `count` commands, each valid as for [`command`].
pub(crate) unsafe fn commands(count: usize, cmds: *const redpool_cmd) -> Result<Vec<Cmd>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if cmds.is_null() {
        return Err(null("cmds"));
    }
    (0..count)
        .map(|i| {
            // SAFETY: `cmds` has `count` elements per the caller's promise.
            let c = unsafe { *cmds.add(i) };
            // SAFETY: each command is valid per the caller's promise.
            unsafe { command(c.argc, c.argv, c.argvlen) }
                .map_err(|e| e.context(format!("cmds[{i}]")))
        })
        .collect()
}
