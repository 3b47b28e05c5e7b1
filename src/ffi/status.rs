//! Status codes (one per core `ErrorKind`, plus PANIC) and the per-thread last error message.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::c_char;

use crate::error::{Error, ErrorKind};

/// The result of every fallible function. Values are stable; new ones are only ever added.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum redpool_status {
    /// Success.
    REDPOOL_STATUS_OK = 0,
    /// The server could not be reached, or the connection broke.
    REDPOOL_STATUS_CONNECTION = 1,
    /// Connecting, reading or writing timed out.
    REDPOOL_STATUS_TIMEOUT = 2,
    /// No connection became free within the acquire timeout.
    REDPOOL_STATUS_POOL_EXHAUSTED = 3,
    /// The circuit breaker is open: the call failed fast.
    REDPOOL_STATUS_CIRCUIT_OPEN = 4,
    /// The server refused the credentials.
    REDPOOL_STATUS_AUTH = 5,
    /// Reserved for a request the server rejects as a whole. Error replies to commands (including
    /// EXECABORT from a transaction) are replies of type REDPOOL_REPLY_ERROR with status OK.
    REDPOOL_STATUS_RESPONSE = 6,
    /// The server sent bytes that are not valid RESP.
    REDPOOL_STATUS_PROTOCOL = 7,
    /// An argument or setting was invalid (including a NULL pointer or invalid UTF-8).
    REDPOOL_STATUS_INVALID_ARGUMENT = 8,
    /// The pool was closed.
    REDPOOL_STATUS_CLOSED = 9,
    /// A bug inside redpool (a caught panic); the message says where.
    REDPOOL_STATUS_PANIC = 10,
}

impl redpool_status {
    /// The status for a core error kind (1:1).
    pub(crate) fn of(kind: ErrorKind) -> redpool_status {
        match kind {
            ErrorKind::Connection => redpool_status::REDPOOL_STATUS_CONNECTION,
            ErrorKind::Timeout => redpool_status::REDPOOL_STATUS_TIMEOUT,
            ErrorKind::PoolExhausted => redpool_status::REDPOOL_STATUS_POOL_EXHAUSTED,
            ErrorKind::CircuitOpen => redpool_status::REDPOOL_STATUS_CIRCUIT_OPEN,
            ErrorKind::Auth => redpool_status::REDPOOL_STATUS_AUTH,
            ErrorKind::Response => redpool_status::REDPOOL_STATUS_RESPONSE,
            ErrorKind::Protocol => redpool_status::REDPOOL_STATUS_PROTOCOL,
            ErrorKind::InvalidArgument => redpool_status::REDPOOL_STATUS_INVALID_ARGUMENT,
            ErrorKind::Closed => redpool_status::REDPOOL_STATUS_CLOSED,
        }
    }

    /// The core error kind of a failure status (None for OK and PANIC).
    fn kind(self) -> Option<ErrorKind> {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| redpool_status::of(*kind) == self)
    }

    fn from_u32(value: u32) -> Option<redpool_status> {
        use redpool_status::*;
        [
            REDPOOL_STATUS_OK,
            REDPOOL_STATUS_CONNECTION,
            REDPOOL_STATUS_TIMEOUT,
            REDPOOL_STATUS_POOL_EXHAUSTED,
            REDPOOL_STATUS_CIRCUIT_OPEN,
            REDPOOL_STATUS_AUTH,
            REDPOOL_STATUS_RESPONSE,
            REDPOOL_STATUS_PROTOCOL,
            REDPOOL_STATUS_INVALID_ARGUMENT,
            REDPOOL_STATUS_CLOSED,
            REDPOOL_STATUS_PANIC,
        ]
        .into_iter()
        .find(|s| *s as u32 == value)
    }

    fn text(self) -> &'static [u8] {
        use redpool_status::*;
        match self {
            REDPOOL_STATUS_OK => b"ok\0",
            REDPOOL_STATUS_CONNECTION => b"connection error\0",
            REDPOOL_STATUS_TIMEOUT => b"timeout\0",
            REDPOOL_STATUS_POOL_EXHAUSTED => b"pool exhausted\0",
            REDPOOL_STATUS_CIRCUIT_OPEN => b"circuit open\0",
            REDPOOL_STATUS_AUTH => b"authentication failed\0",
            REDPOOL_STATUS_RESPONSE => b"error response\0",
            REDPOOL_STATUS_PROTOCOL => b"protocol error\0",
            REDPOOL_STATUS_INVALID_ARGUMENT => b"invalid argument\0",
            REDPOOL_STATUS_CLOSED => b"pool closed\0",
            REDPOOL_STATUS_PANIC => b"internal error (panic)\0",
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `err` as this thread's last error and returns its status.
pub(crate) fn fail(err: &Error) -> redpool_status {
    LAST_ERROR.with(|last| *last.borrow_mut() = err.to_string());
    redpool_status::of(err.kind())
}

/// Records a caught panic as this thread's last error.
pub(crate) fn panicked(payload: &(dyn Any + Send)) -> redpool_status {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    LAST_ERROR.with(|last| *last.borrow_mut() = format!("panic: {message}"));
    redpool_status::REDPOOL_STATUS_PANIC
}

pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|last| last.borrow_mut().clear());
}

/// A static, human-readable name for a status value. Never returns NULL: unknown values give
/// "unknown status". Takes an integer so any value a C program holds is safe to pass.
#[unsafe(no_mangle)]
pub extern "C" fn redpool_status_str(status: u32) -> *const c_char {
    let text: &'static [u8] = match redpool_status::from_u32(status) {
        Some(s) => s.text(),
        None => b"unknown status\0",
    };
    text.as_ptr().cast()
}

/// True when a call that failed with `status` may succeed if tried again later: the core's
/// `ErrorKind::is_transient` (connection, timeout, protocol, pool exhausted, circuit open), the
/// same rule in every language. redpool already retries safe calls itself.
#[unsafe(no_mangle)]
pub extern "C" fn redpool_status_is_retryable(status: u32) -> bool {
    redpool_status::from_u32(status)
        .and_then(redpool_status::kind)
        .is_some_and(ErrorKind::is_transient)
}

/// Copies this thread's last error message into `buf` (at most `len` bytes including the NUL,
/// always NUL-terminated when `len > 0`), like `snprintf`: returns the full length of the message
/// without the NUL, so a return value `>= len` means it was truncated. The message describes the
/// last failed `redpool_*` call on this thread and is empty after a successful one. `buf` may be
/// NULL when `len` is 0 (to ask for the length).
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_last_error_message(buf: *mut c_char, len: usize) -> usize {
    super::query(0, || {
        LAST_ERROR.with(|last| {
            let message = last.borrow();
            let bytes = message.as_bytes();
            if !buf.is_null() && len > 0 {
                let n = bytes.len().min(len - 1);
                // SAFETY: `buf` is valid for `len` bytes and `n < len`.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            bytes.len()
        })
    })
}

/// Clears this thread's last error message.
#[unsafe(no_mangle)]
pub extern "C" fn redpool_clear_last_error() {
    super::query((), clear_last_error);
}
