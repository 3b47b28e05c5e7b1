//! Type conversion: Python arguments to core commands, core replies to the Python values
//! redis-py's RESP2 parser produces (bulk and status replies as `bytes`, or `str` when the client
//! decodes; integers; `None`; nested lists; server errors as exception instances, not raised).

use std::ffi::CString;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use redpool::{Cmd, Value};

use crate::errors;

/// One command from a Python sequence of `bytes` (the Python layer encodes every argument with
/// redis-py's encoder first).
pub fn command(args: &Bound<'_, PyAny>) -> PyResult<Cmd> {
    let mut cmd = Cmd::new();
    let mut count = 0;
    for arg in args.try_iter()? {
        let arg = arg?;
        let bytes = arg.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "command arguments must be bytes, not {}",
                arg.get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        })?;
        cmd.arg(bytes.as_bytes());
        count += 1;
    }
    if count == 0 {
        return Err(PyValueError::new_err("a command needs at least its name"));
    }
    Ok(cmd)
}

/// How bulk and status replies become `str`: a Python codec and its error handler.
pub struct Decode {
    encoding: CString,
    errors: CString,
}

impl Decode {
    /// From the `(encoding, errors)` pair the Python layer passes (None: keep bytes).
    pub fn new(spec: Option<(String, String)>) -> PyResult<Option<Decode>> {
        let Some((encoding, errors)) = spec else {
            return Ok(None);
        };
        let c = |s: String| {
            CString::new(s).map_err(|_| PyValueError::new_err("encoding names cannot contain NUL"))
        };
        Ok(Some(Decode {
            encoding: c(encoding)?,
            errors: c(errors)?,
        }))
    }

    fn decode<'py>(&self, py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: the pointers are valid for the call (a slice and two C strings it does not keep);
        // PyUnicode_Decode returns a new reference or NULL with an exception set, which
        // `assume_owned_or_err` turns into a PyErr.
        unsafe {
            let obj = pyo3::ffi::PyUnicode_Decode(
                bytes.as_ptr().cast(),
                bytes.len() as pyo3::ffi::Py_ssize_t,
                self.encoding.as_ptr(),
                self.errors.as_ptr(),
            );
            Bound::from_owned_ptr_or_err(py, obj)
        }
    }
}

/// A string reply as `bytes`, or `str` when decoding.
fn text<'py>(
    py: Python<'py>,
    bytes: &[u8],
    decode: Option<&Decode>,
) -> PyResult<Bound<'py, PyAny>> {
    match decode {
        Some(d) => d.decode(py, bytes),
        None => Ok(PyBytes::new(py, bytes).into_any()),
    }
}

/// A core reply as the Python value redis-py's parser would have produced.
pub fn to_python<'py>(
    py: Python<'py>,
    value: Value,
    decode: Option<&Decode>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Nil => py.None().into_bound(py),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::BulkString(bytes) => text(py, &bytes, decode)?,
        Value::SimpleString(s) => text(py, s.as_bytes(), decode)?,
        Value::Okay => text(py, b"OK", decode)?,
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            list(py, items, decode)?.into_any()
        }
        Value::Map(pairs) => {
            let dict = PyDict::new(py);
            for (k, v) in pairs {
                dict.set_item(to_python(py, k, decode)?, to_python(py, v, decode)?)?;
            }
            dict.into_any()
        }
        Value::Attribute { data, .. } => to_python(py, *data, decode)?,
        Value::Double(f) => f.into_pyobject(py)?.into_any(),
        Value::Boolean(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::VerbatimString { text: t, .. } => text(py, t.as_bytes(), decode)?,
        Value::ServerError(err) => {
            let message = match err.details() {
                Some(details) => format!("{} {details}", err.code()),
                None => err.code().to_string(),
            };
            errors::server_error(py, &message)?
        }
        // As redis-py's RESP3 parser: a big number is an int (C gets its digits, Node a string).
        Value::BigNumber(digits) => py
            .get_type::<pyo3::types::PyInt>()
            .call1((PyBytes::new(py, &digits),))?,
        // A type no binding represents: the core's error, as in Node.
        other => {
            return Err(errors::to_pyerr(
                py,
                redpool::Error::unsupported_reply(&other),
            ));
        }
    })
}

/// A list of replies.
pub fn list<'py>(
    py: Python<'py>,
    items: Vec<Value>,
    decode: Option<&Decode>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for item in items {
        list.append(to_python(py, item, decode)?)?;
    }
    Ok(list)
}
