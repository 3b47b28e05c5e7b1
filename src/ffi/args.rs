//! Commands coming in from C: `argc / argv / argvlen`, as hiredis's `redisCommandArgv`.

use std::cell::RefCell;
use std::ffi::{CStr, c_char};

use redis::Cmd;

use super::null;
use crate::command::arg_slices;
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

/// Fills `cmd` (cleared first) from `argc / argv / argvlen`.
///
/// # Safety
/// `argv` is NULL or points to `argc` pointers, each NULL or valid for `argvlen[i]` bytes (or
/// NUL-terminated when `argvlen` is NULL); `argvlen` is NULL or points to `argc` lengths.
unsafe fn fill(
    cmd: &mut Cmd,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
) -> Result<()> {
    cmd.clear();
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
    for i in 0..argc {
        // SAFETY: `argv` has `argc` elements per the caller's promise.
        let arg = unsafe { *argv.add(i) };
        if arg.is_null() {
            return Err(null(&format!("argv[{i}]")));
        }
        let bytes = if argvlen.is_null() {
            // SAFETY: NUL-terminated per the caller's promise when no lengths are given.
            unsafe { CStr::from_ptr(arg) }.to_bytes()
        } else {
            // SAFETY: `argvlen` has `argc` elements and `arg` is valid for that many bytes.
            unsafe { std::slice::from_raw_parts(arg.cast::<u8>(), *argvlen.add(i)) }
        };
        cmd.arg(bytes);
    }
    Ok(())
}

thread_local! {
    /// Commands built by earlier calls on this thread, kept (cleared) for their buffers: a C
    /// pipeline of 100 commands built 200 allocations per call before.
    static SPARE: RefCell<Vec<Cmd>> = const { RefCell::new(Vec::new()) };
}

/// Most commands kept per thread, and the most argument bytes a kept command may have held.
const SPARE_COMMANDS: usize = 1024;
const SPARE_BYTES: usize = 64 * 1024;

/// Runs `f` on the commands built from `count` C commands (NULL `cmds` only when `count` is 0),
/// in buffers reused from earlier calls on this thread.
///
/// # Safety
/// `cmds` is NULL or points to `count` commands, each valid as for [`fill`].
pub(crate) unsafe fn with_commands<R>(
    count: usize,
    cmds: *const redpool_cmd,
    f: impl FnOnce(&[Cmd]) -> R,
) -> Result<R> {
    if count > 0 && cmds.is_null() {
        return Err(null("cmds"));
    }
    let mut built = SPARE.with(|spare| spare.take());
    if built.len() < count {
        built.resize_with(count, Cmd::new);
    }
    let filled = (0..count).try_for_each(|i| {
        // SAFETY: `cmds` has `count` elements per the caller's promise.
        let c = unsafe { *cmds.add(i) };
        // SAFETY: each command is valid per the caller's promise.
        unsafe { fill(&mut built[i], c.argc, c.argv, c.argvlen) }
            .map_err(|e| e.context(format!("cmds[{i}]")))
    });
    let result = filled.map(|()| f(&built[..count]));
    built.truncate(SPARE_COMMANDS);
    // A command that held a large argument gives its buffer back (so what is kept stays small).
    for cmd in built.iter_mut() {
        if arg_slices(cmd).map(<[u8]>::len).sum::<usize>() > SPARE_BYTES {
            *cmd = Cmd::new();
        }
    }
    // A nested call on this thread (from an event callback) may have put its own back: either
    // set is fine to keep.
    SPARE.with(|spare| *spare.borrow_mut() = built);
    result
}

/// Runs `f` on the command built from `argc / argv / argvlen` (see [`with_commands`]).
///
/// # Safety
/// As for [`fill`].
pub(crate) unsafe fn with_command<R>(
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
    f: impl FnOnce(&Cmd) -> R,
) -> Result<R> {
    let one = redpool_cmd {
        argc,
        argv,
        argvlen,
    };
    // SAFETY: one command, valid per the caller's promise.
    unsafe { with_commands(1, &one, |cmds| f(&cmds[0])) }
}
