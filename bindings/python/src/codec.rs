//! A pipeline's commands and replies in native code, with redis-py's rules kept exactly: the
//! queued `(args, options)` pairs are encoded into core commands ([`Codec::pack`], the rules of
//! `redpool._protocol.Codec.pack`, itself redis-py's `pack_command` and `Encoder`), and the
//! replies are shaped as redis-py's pipeline shapes them ([`Codec::shape`]: its response
//! callbacks applied with the command's options, errors kept in place or raised as redis-py does).
//!
//! Only the common argument types are encoded here (`bytes`, `str`, `int` of exact types); every
//! other value goes through the client's redis-py `Encoder`, so its results and errors
//! (`DataError` for a `bool` or a `dict`, floats as `repr`, memoryviews, ...) are redis-py's own.
//! A callback is looked up once per command name and call, and a command without one is not
//! shaped by any Python call.

use std::ffi::CString;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyList, PyString, PyTuple, PyType};
use redpool::Cmd;

/// A pipeline's commands, encoded: what `Pool.pipeline` and `transaction` send (and their
/// `submit_*` twins), with the indexes of the replies never decoded (`NEVER_DECODE`).
#[pyclass(frozen, module = "redpool._native")]
pub struct Commands {
    /// The commands, shared with the call that sends them.
    pub cmds: Arc<[Cmd]>,
    /// The indexes of the commands whose replies stay `bytes`.
    pub raw: Vec<usize>,
}

#[pymethods]
impl Commands {
    /// The number of commands.
    fn __len__(&self) -> usize {
        self.cmds.len()
    }
}

/// The encoding and response callbacks of one client (see the module documentation).
#[pyclass(frozen, module = "redpool._native")]
pub struct Codec {
    /// redis-py's `Encoder` of the client: every argument that is not `bytes`, `str` or `int`.
    encoder: Py<PyAny>,
    /// The `str` arguments' codec and its error handler (the encoder's).
    encoding: CString,
    errors: CString,
    /// The client's `response_callbacks` (redis-py's `CaseInsensitiveDict`), read on every
    /// call: an application may change it at any time.
    callbacks: Py<PyAny>,
    /// redis-py's option names: `NEVER_DECODE`, `EMPTY_RESPONSE`, and `keys`, which callbacks
    /// never get.
    never_decode: Py<PyString>,
    empty_response: Py<PyString>,
    keys: Py<PyString>,
    /// redis-py's `ConnectionError` (raised at once from a pipeline) and `ResponseError`.
    connection_error: Py<PyType>,
    response_error: Py<PyType>,
}

/// What one command name stands for within one call: its packed words and its callback.
struct Name {
    /// The name object (compared by identity: it lives as long as the queued command).
    object: *mut pyo3::ffi::PyObject,
    words: Vec<Vec<u8>>,
}

/// A command name's callback within one call, found by the name object's identity.
struct Callback<'py> {
    object: *mut pyo3::ffi::PyObject,
    callback: Option<Bound<'py, PyAny>>,
}

/// A queued command's `(args, options)` pair (redis-py queues tuples: read without a look-up).
fn queued<'py>(item: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
    let (args, options) = match item.cast::<PyTuple>() {
        Ok(pair) if pair.len() == 2 => (pair.get_item(0)?, pair.get_item(1)?),
        _ => (item.get_item(0)?, item.get_item(1)?),
    };
    Ok((args, options.cast_into::<PyDict>()?))
}

/// A command's name: the first of its arguments.
fn command_name<'py>(args: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match args.cast::<PyTuple>() {
        Ok(tuple) => tuple.get_item(0),
        Err(_) => args.get_item(0),
    }
}

/// `bytes.split()`: the words between runs of ASCII whitespace.
fn split_words(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
        .filter(|word| !word.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

impl Codec {
    /// A value redis-py's encoder returned (`bytes`, or a memoryview and the like) as bytes.
    fn encoded<'py>(&self, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = value.py();
        let value = self.encoder.bind(py).call_method1("encode", (value,))?;
        if value.is_exact_instance_of::<PyBytes>() {
            Ok(value)
        } else {
            py.get_type::<PyBytes>().call1((value,))
        }
    }

    /// A `str` argument in the client's encoding (`arg.encode(encoding, errors)`).
    fn encode_str<'py>(&self, arg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        // SAFETY: `arg` is a live str and the two C strings outlive the call, which keeps no
        // pointer; the result is a new reference or NULL with an exception set.
        let bytes = unsafe {
            let obj = pyo3::ffi::PyUnicode_AsEncodedString(
                arg.as_ptr(),
                self.encoding.as_ptr(),
                self.errors.as_ptr(),
            );
            Bound::from_owned_ptr_or_err(arg.py(), obj)?
        };
        Ok(bytes.cast_into::<PyBytes>()?)
    }

    /// A command name's words: a `str` is encoded (UTF-8) and split at whitespace, `bytes` are
    /// split when they hold a space, anything else goes through the encoder whole.
    fn name_words(&self, name: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
        if name.is_exact_instance_of::<PyString>() {
            let bytes = name.cast::<PyString>()?.encode_utf8()?;
            return Ok(split_words(bytes.as_bytes()));
        }
        if name.is_instance_of::<PyString>() {
            let bytes = name.call_method0("encode")?;
            return Ok(split_words(bytes.cast::<PyBytes>()?.as_bytes()));
        }
        if name.is_exact_instance_of::<PyBytes>() {
            let bytes = name.cast::<PyBytes>()?.as_bytes();
            return Ok(if bytes.contains(&b' ') {
                split_words(bytes)
            } else {
                vec![bytes.to_vec()]
            });
        }
        let value = self.encoded(name)?;
        Ok(vec![value.cast::<PyBytes>()?.as_bytes().to_vec()])
    }

    /// One command's arguments (a sequence, its name first) as a core command.
    fn command(&self, args: &Bound<'_, PyAny>, names: &mut Vec<Name>) -> PyResult<Cmd> {
        // redis-py queues a tuple (`*args`); any other sequence is read into one.
        let args = match args.cast::<PyTuple>() {
            Ok(tuple) => tuple.clone(),
            Err(_) => PyTuple::new(args.py(), args.try_iter()?.collect::<PyResult<Vec<_>>>()?)?,
        };
        // Room for a short command without regrowing (the data grows as needed).
        let mut cmd = Cmd::with_capacity(args.len() + 1, 64);
        let mut items = args.iter();
        let Some(name) = items.next() else {
            return Err(PyValueError::new_err("a command needs at least its name"));
        };
        let known = names.iter().position(|n| n.object == name.as_ptr());
        let index = match known {
            Some(index) => index,
            None => {
                names.push(Name {
                    object: name.as_ptr(),
                    words: self.name_words(&name)?,
                });
                names.len() - 1
            }
        };
        for word in &names[index].words {
            cmd.arg(word.as_slice());
        }
        for arg in items {
            if arg.is_exact_instance_of::<PyBytes>() {
                cmd.arg(arg.cast::<PyBytes>()?.as_bytes());
            } else if arg.is_exact_instance_of::<PyString>() {
                cmd.arg(self.encode_str(&arg)?.as_bytes());
            } else if let Some(n) = arg
                .is_exact_instance_of::<PyInt>()
                .then(|| arg.extract::<i64>().ok())
                .flatten()
            {
                cmd.arg(n);
            } else {
                // Ints beyond 64 bits too: the encoder writes them as `repr`.
                cmd.arg(self.encoded(&arg)?.cast::<PyBytes>()?.as_bytes());
            }
        }
        Ok(cmd)
    }

    /// `options` without the names redis-py's callbacks never get; None when nothing is left.
    fn callback_options<'py>(
        &self,
        options: &Bound<'py, PyDict>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let py = options.py();
        let hidden = [
            self.never_decode.bind(py),
            self.empty_response.bind(py),
            self.keys.bind(py),
        ];
        let mut kept: Option<Bound<'py, PyDict>> = None;
        for (key, value) in options.iter() {
            let mut is_hidden = false;
            for name in hidden {
                if key.is(name) || key.eq(name)? {
                    is_hidden = true;
                    break;
                }
            }
            if !is_hidden {
                kept.get_or_insert_with(|| PyDict::new(py))
                    .set_item(key, value)?;
            }
        }
        Ok(kept)
    }

    /// The callback for a command name (cached in `found` for the rest of the call).
    fn callback<'py>(
        &self,
        name: &Bound<'py, PyAny>,
        found: &mut Vec<Callback<'py>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        if let Some(known) = found.iter().find(|c| c.object == name.as_ptr()) {
            return Ok(known.callback.clone());
        }
        let callback = self
            .callbacks
            .bind(name.py())
            .call_method1("get", (name,))?;
        let callback = (!callback.is_none()).then_some(callback);
        found.push(Callback {
            object: name.as_ptr(),
            callback: callback.clone(),
        });
        Ok(callback)
    }
}

#[pymethods]
impl Codec {
    /// A codec over redis-py's `encoder` and the client's `callbacks`; `markers` are redis-py's
    /// `(NEVER_DECODE, EMPTY_RESPONSE)` option names, `errors` its `(ConnectionError,
    /// ResponseError)` classes.
    #[new]
    fn new(
        py: Python<'_>,
        encoder: Bound<'_, PyAny>,
        callbacks: Bound<'_, PyAny>,
        markers: (Bound<'_, PyString>, Bound<'_, PyString>),
        errors: (Bound<'_, PyType>, Bound<'_, PyType>),
    ) -> PyResult<Codec> {
        let text = |attribute: &str| -> PyResult<CString> {
            let value: String = encoder.getattr(attribute)?.extract()?;
            CString::new(value).map_err(|_| {
                PyValueError::new_err(format!("the encoder's {attribute} cannot contain NUL"))
            })
        };
        Ok(Codec {
            encoding: text("encoding")?,
            errors: text("encoding_errors")?,
            encoder: encoder.unbind(),
            callbacks: callbacks.unbind(),
            never_decode: markers.0.unbind(),
            empty_response: markers.1.unbind(),
            keys: PyString::intern(py, "keys").unbind(),
            connection_error: errors.0.unbind(),
            response_error: errors.1.unbind(),
        })
    }

    /// Encodes queued commands (redis-py's `(args, options)` pairs): the `Commands` to send.
    /// Encoding errors are redis-py's (`DataError`, `UnicodeEncodeError`, ...).
    fn pack(&self, stack: &Bound<'_, PyAny>) -> PyResult<Commands> {
        let py = stack.py();
        let never_decode = self.never_decode.bind(py);
        let mut names = Vec::new();
        let mut cmds = Vec::new();
        let mut raw = Vec::new();
        for (i, item) in stack.try_iter()?.enumerate() {
            let (args, options) = queued(&item?)?;
            cmds.push(self.command(&args, &mut names)?);
            if options.contains(never_decode)? {
                raw.push(i);
            }
        }
        Ok(Commands {
            cmds: cmds.into(),
            raw,
        })
    }

    /// redis-py's values for a pipeline's `replies` (one per queued command of `stack`), and the
    /// index of the first that is an exception (None when none is).
    ///
    /// In a pipeline (`transaction` false) a `ConnectionError` reply is raised at once, and an
    /// error reply becomes the command's `EMPTY_RESPONSE` when it has one, as in redis-py. In a
    /// transaction errors stay as they are, and with `raise_on_error` the replies are returned
    /// unshaped as soon as one is an error (redis-py raises it before any callback runs).
    /// Every other reply goes through the command's response callback, with the command's
    /// options but `NEVER_DECODE`, `EMPTY_RESPONSE` and `keys`.
    fn shape<'py>(
        &self,
        stack: &Bound<'py, PyAny>,
        replies: &Bound<'py, PyAny>,
        transaction: bool,
        raise_on_error: bool,
    ) -> PyResult<(Bound<'py, PyAny>, Option<usize>)> {
        let py = stack.py();
        let stack = stack.cast::<PyList>()?;
        let replies = replies.cast::<PyList>()?;
        if stack.len() != replies.len() {
            return Err(PyValueError::new_err(format!(
                "{} replies for {} commands",
                replies.len(),
                stack.len()
            )));
        }
        let is_error =
            |reply: &Bound<'py, PyAny>| reply.is_instance_of::<pyo3::exceptions::PyException>();
        if transaction && raise_on_error {
            if let Some(first) = replies.iter().position(|reply| is_error(&reply)) {
                return Ok((replies.clone().into_any(), Some(first)));
            }
        }
        let connection_error = self.connection_error.bind(py);
        let response_error = self.response_error.bind(py);
        let empty_response = self.empty_response.bind(py);
        let mut found = Vec::new();
        let mut first = None;
        let results = PyList::empty(py);
        for (i, (item, reply)) in stack.iter().zip(replies.iter()).enumerate() {
            let (args, options) = queued(&item)?;
            let options = &options;
            let result = if is_error(&reply) {
                if transaction {
                    reply
                } else if reply.is_instance(connection_error)? {
                    return Err(PyErr::from_value(reply));
                } else if reply.is_instance(response_error)? {
                    options.get_item(empty_response)?.unwrap_or(reply)
                } else {
                    self.parse(&args, reply, options, &mut found)?
                }
            } else {
                self.parse(&args, reply, options, &mut found)?
            };
            if first.is_none() && is_error(&result) {
                first = Some(i);
            }
            results.append(result)?;
        }
        Ok((results.into_any(), first))
    }
}

impl Codec {
    /// One reply through its command's callback, as redis-py's `parse_response`.
    fn parse<'py>(
        &self,
        args: &Bound<'py, PyAny>,
        reply: Bound<'py, PyAny>,
        options: &Bound<'py, PyDict>,
        found: &mut Vec<Callback<'py>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let name = command_name(args)?;
        let Some(callback) = self.callback(&name, found)? else {
            return Ok(reply);
        };
        let kwargs = if options.is_empty() {
            None
        } else {
            self.callback_options(options)?
        };
        callback.call((reply,), kwargs.as_ref())
    }
}
