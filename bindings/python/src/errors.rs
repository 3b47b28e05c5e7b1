//! The one mapping from the core's errors to Python exceptions.
//!
//! The classes live in pure Python (`redpool/exceptions.py`), where they can inherit from both
//! redpool's hierarchy and redis-py's, so `except redis.ConnectionError:` keeps working in an app
//! that switched. Server error replies are classified by the Python side exactly the way
//! redis-py's parser does it (`WRONGTYPE` → `ResponseError`, `NOSCRIPT` → `NoScriptError`, ...).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use redpool::{Error, ErrorKind};

pyo3::import_exception!(redpool.exceptions, RedisPoolError);
pyo3::import_exception!(redpool.exceptions, ConnectionError);
pyo3::import_exception!(redpool.exceptions, TimeoutError);
pyo3::import_exception!(redpool.exceptions, PoolTimeoutError);
pyo3::import_exception!(redpool.exceptions, CircuitOpenError);
pyo3::import_exception!(redpool.exceptions, AuthenticationError);
pyo3::import_exception!(redpool.exceptions, ProtocolError);
pyo3::import_exception!(redpool.exceptions, ConfigError);
pyo3::import_exception!(redpool.exceptions, PoolClosedError);

/// A core error as the matching Python exception. Messages never contain secrets (the core
/// guarantees it), so they are passed through unchanged. An EXECABORT carries the commands the
/// server rejected as `rejected_commands`: `[(position among those sent, exception), ...]`.
pub fn to_pyerr(py: Python<'_>, err: Error) -> PyErr {
    if err.server_code().is_some() || err.kind() == ErrorKind::Response {
        return match reply_exception(py, &err) {
            Ok(exc) => PyErr::from_value(exc),
            Err(failed) => failed,
        };
    }
    let message = err.to_string();
    let kind = err.kind();
    let exception = match kind {
        ErrorKind::Connection => ConnectionError::new_err(message),
        ErrorKind::Timeout => TimeoutError::new_err(message),
        ErrorKind::PoolExhausted => PoolTimeoutError::new_err(message),
        ErrorKind::CircuitOpen => CircuitOpenError::new_err(message),
        ErrorKind::Auth => AuthenticationError::new_err(message),
        ErrorKind::Protocol => ProtocolError::new_err(message),
        ErrorKind::InvalidArgument => ConfigError::new_err(message),
        ErrorKind::Closed => PoolClosedError::new_err(message),
        // `ErrorKind` is non-exhaustive: a kind added later is still a redpool error.
        _ => RedisPoolError::new_err(message),
    };
    // The core's classifier, the same in every language: may the same call succeed later?
    if let Err(failed) = exception
        .value(py)
        .setattr("transient", kind.is_transient())
    {
        return failed;
    }
    exception
}

/// The exception of a server error reply, with its `rejected_commands` when it is an EXECABORT.
fn reply_exception<'py>(py: Python<'py>, err: &Error) -> PyResult<Bound<'py, PyAny>> {
    let exception = server_error(py, err.message())?;
    let rejected = err.rejected_commands();
    if !rejected.is_empty() {
        let rejected = rejected
            .iter()
            .map(|(index, command)| Ok((*index, server_error(py, command.message())?)))
            .collect::<PyResult<Vec<_>>>()?;
        exception.setattr("rejected_commands", rejected)?;
    }
    Ok(exception)
}

static CLASSIFY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The exception instance (not raised) for a server error reply such as
/// `WRONGTYPE Operation against a key holding the wrong kind of value`.
pub fn server_error<'py>(py: Python<'py>, message: &str) -> PyResult<Bound<'py, PyAny>> {
    CLASSIFY
        .import(py, "redpool.exceptions", "from_server_reply")?
        .call1((message,))
}

/// Imports the exception classes and the classifier at import of the module, so no thread fills
/// these caches later (see `lib.rs`).
pub fn prepare(py: Python<'_>) -> PyResult<()> {
    CLASSIFY.import(py, "redpool.exceptions", "from_server_reply")?;
    for class in [
        py.get_type::<RedisPoolError>(),
        py.get_type::<ConnectionError>(),
        py.get_type::<TimeoutError>(),
        py.get_type::<PoolTimeoutError>(),
        py.get_type::<CircuitOpenError>(),
        py.get_type::<AuthenticationError>(),
        py.get_type::<ProtocolError>(),
        py.get_type::<ConfigError>(),
        py.get_type::<PoolClosedError>(),
    ] {
        drop(class);
    }
    Ok(())
}

/// Shorthand: a core result as a Python result.
pub trait IntoPyResult<T> {
    /// Maps the error with [`to_pyerr`].
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for redpool::Result<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|err| to_pyerr(py, err))
    }
}

/// The positions (0 is the command's name) of the words of a command that are passwords, so
/// that a message showing the command can hide them: the core's one rule
/// ([`redpool::secret_arguments`]), as Node uses it.
#[pyfunction]
pub fn secret_arguments(words: Vec<pyo3::pybacked::PyBackedBytes>) -> Vec<usize> {
    redpool::secret_arguments(&words)
}
