//! Conversions between JS values and the core's commands and replies.
//!
//! Arguments are copied into [`redpool::Cmd`]s on the main thread, before the call leaves it.
//! Replies cross back as Rust [`Value`]s and become JS values only in `to_napi_value`, which runs on
//! the main thread when the promise settles. Strings are UTF-8 JS strings, or Buffers where the JS
//! layer asked for them (ioredis's `...Buffer` methods). A server error inside a pipeline or
//! transaction becomes an `Error` with `.code = 'ERR_REPLY'` in its place.

use napi::bindgen_prelude::*;
use napi::{check_status, sys};
use napi_derive::napi;
use redpool::{Cmd, Value};

use crate::errors::Failure;

/// One command's arguments (name first), as JS passes them: strings or Buffers. `#[napi]` makes
/// it a type of native.d.ts (the functions taking it name it there).
#[napi]
pub type JsArgs = Vec<Either<String, Buffer>>;

/// Builds a core command from JS arguments.
pub fn command(args: &JsArgs) -> std::result::Result<Cmd, Failure> {
    if args.is_empty() {
        return Err(empty_command());
    }
    let mut cmd = Cmd::new();
    for arg in args {
        cmd.arg(bytes_of(arg));
    }
    Ok(cmd)
}

/// The bytes of one JS argument: a string's UTF-8, a Buffer's contents.
pub fn bytes_of(arg: &Either<String, Buffer>) -> &[u8] {
    match arg {
        Either::A(text) => text.as_bytes(),
        Either::B(bytes) => bytes,
    }
}

/// Why an empty command is refused (`ERR_INVALID_ARGUMENT`).
pub fn empty_command() -> Failure {
    Failure::invalid("a command needs at least its name")
}

/// The commands of a pipeline or transaction (`JsArgs[]` in JS), read straight into core
/// commands: a string argument is written as UTF-8 into one scratch buffer the call reuses, and
/// each command is then copied into a [`Cmd`] sized for it, so no argument gets a `String` or a
/// napi-rs value of its own (the commands of a 100-GET batch are 200 arguments). An empty
/// command is the call's `ERR_INVALID_ARGUMENT`, as in [`command`].
pub struct Commands(std::result::Result<Vec<Cmd>, Failure>);

impl Commands {
    /// The core commands, or why there are none.
    pub fn into_cmds(self) -> std::result::Result<Vec<Cmd>, Failure> {
        self.0
    }
}

impl TypeName for Commands {
    fn type_name() -> &'static str {
        "Array<JsArgs>"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl FromNapiValue for Commands {
    unsafe fn from_napi_value(env: sys::napi_env, list: sys::napi_value) -> Result<Self> {
        let count = unsafe { array_length(env, list) }?;
        let mut cmds = Vec::with_capacity(count as usize);
        let mut scratch = Scratch::default();
        for i in 0..count {
            let args = unsafe { element(env, list, i) }?;
            match unsafe { scratch.command(env, args) }? {
                Some(cmd) => cmds.push(cmd),
                None => return Ok(Commands(Err(empty_command()))),
            }
        }
        Ok(Commands(Ok(cmds)))
    }
}

/// The bytes of one command's arguments, laid end to end, and where each ends; reused from
/// command to command of one call.
#[derive(Default)]
pub struct Scratch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

/// A string of at most this many bytes is read with one call (else its length is asked first).
const SHORT_ARGUMENT: usize = 256;

impl Scratch {
    /// Reads JS array `args` (`[name, ...args]`, strings or Buffers) as one core command; `None`
    /// when it is empty.
    unsafe fn command(&mut self, env: sys::napi_env, args: sys::napi_value) -> Result<Option<Cmd>> {
        let count = unsafe { array_length(env, args) }?;
        if count == 0 {
            return Ok(None);
        }
        self.clear();
        for i in 0..count {
            let arg = unsafe { element(env, args, i) }?;
            unsafe { self.push(env, arg) }?;
            self.end_argument();
        }
        Ok(Some(self.cmd()))
    }

    /// Starts a new command.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Where the current argument's bytes go.
    pub fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Ends the current argument.
    pub fn end_argument(&mut self) {
        self.ends.push(self.bytes.len());
    }

    /// The command of the arguments since [`Scratch::clear`], in a [`Cmd`] sized for them.
    pub fn cmd(&self) -> Cmd {
        let mut cmd = Cmd::with_capacity(self.ends.len(), self.bytes.len());
        let mut start = 0;
        for &end in &self.ends {
            cmd.arg(&self.bytes[start..end]);
            start = end;
        }
        cmd
    }

    /// Appends one argument's bytes: a string as UTF-8 (lone surrogates as U+FFFD, as napi-rs's
    /// `String` has them), a Buffer as it is.
    unsafe fn push(&mut self, env: sys::napi_env, arg: sys::napi_value) -> Result<()> {
        let mut kind = 0;
        check_status!(unsafe { sys::napi_typeof(env, arg, &mut kind) })?;
        if kind == sys::ValueType::napi_string {
            return unsafe { self.push_string(env, arg) };
        }
        let mut data = std::ptr::null_mut();
        let mut len = 0;
        let status = unsafe { sys::napi_get_buffer_info(env, arg, &mut data, &mut len) };
        if kind != sys::ValueType::napi_object || status != sys::Status::napi_ok {
            return Err(Error::new(
                Status::InvalidArg,
                "a command's arguments must be strings or Buffers",
            ));
        }
        if len > 0 {
            // SAFETY: Node-API gives the Buffer's bytes, alive while `arg` is (this call).
            let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
            self.bytes.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Appends string `arg` as UTF-8: one Node-API call for a short one (nearly every key and
    /// value), three for a longer one (its length first).
    unsafe fn push_string(&mut self, env: sys::napi_env, arg: sys::napi_value) -> Result<()> {
        let start = self.bytes.len();
        // Room for a short argument and the terminating NUL Node-API writes. V8 never splits a
        // character, so a write that leaves more than 4 bytes of that room unused is complete.
        let room = SHORT_ARGUMENT + 1;
        self.bytes.reserve(room);
        let mut written = 0;
        check_status!(unsafe {
            sys::napi_get_value_string_utf8(
                env,
                arg,
                self.bytes.as_mut_ptr().add(start).cast(),
                room,
                &mut written,
            )
        })?;
        if written + 4 < SHORT_ARGUMENT {
            // SAFETY: Node-API wrote `written` bytes there.
            unsafe { self.bytes.set_len(start + written) };
            return Ok(());
        }
        let mut len = 0;
        check_status!(unsafe {
            sys::napi_get_value_string_utf8(env, arg, std::ptr::null_mut(), 0, &mut len)
        })?;
        self.bytes.reserve(len + 1);
        check_status!(unsafe {
            sys::napi_get_value_string_utf8(
                env,
                arg,
                self.bytes.as_mut_ptr().add(start).cast(),
                len + 1,
                &mut written,
            )
        })?;
        // SAFETY: as above.
        unsafe { self.bytes.set_len(start + written) };
        Ok(())
    }
}

/// The length of JS array `array`.
unsafe fn array_length(env: sys::napi_env, array: sys::napi_value) -> Result<u32> {
    let mut len = 0;
    check_status!(
        unsafe { sys::napi_get_array_length(env, array, &mut len) },
        "expected an array of commands, each an array of strings or Buffers"
    )?;
    Ok(len)
}

/// Element `i` of JS array `array`.
unsafe fn element(env: sys::napi_env, array: sys::napi_value, i: u32) -> Result<sys::napi_value> {
    let mut value = std::ptr::null_mut();
    check_status!(unsafe { sys::napi_get_element(env, array, i, &mut value) })?;
    Ok(value)
}

/// A reply on its way to JS; `buffers` makes strings Buffers.
pub struct Reply {
    pub value: Value,
    pub buffers: bool,
}

/// The replies of a pipeline or transaction, one `buffers` flag per command (a missing flag is
/// false).
pub struct Replies {
    pub values: Vec<Value>,
    pub buffers: Vec<bool>,
}

impl ToNapiValue for Replies {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let mut array = std::ptr::null_mut();
        check_status!(unsafe {
            sys::napi_create_array_with_length(env, val.values.len(), &mut array)
        })?;
        let mut flags = val.buffers.into_iter();
        for (i, value) in val.values.into_iter().enumerate() {
            let buffers = flags.next().unwrap_or(false);
            let item = unsafe { Reply::to_napi_value(env, Reply { value, buffers }) }?;
            check_status!(unsafe { sys::napi_set_element(env, array, i as u32, item) })?;
        }
        Ok(array)
    }
}

impl ToNapiValue for Reply {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let buffers = val.buffers;
        let text = |text: String| -> Result<sys::napi_value> {
            if buffers {
                unsafe { Buffer::to_napi_value(env, Buffer::from(text.into_bytes())) }
            } else {
                unsafe { String::to_napi_value(env, text) }
            }
        };
        let nested = |items: Vec<Value>| -> Result<sys::napi_value> {
            let items: Vec<Reply> = items
                .into_iter()
                .map(|value| Reply { value, buffers })
                .collect();
            unsafe { Vec::<Reply>::to_napi_value(env, items) }
        };
        match val.value {
            Value::Nil => unsafe { Null::to_napi_value(env, Null) },
            Value::Int(n) => unsafe { i64::to_napi_value(env, n) },
            Value::BulkString(bytes) if buffers => unsafe {
                Buffer::to_napi_value(env, Buffer::from(bytes))
            },
            Value::BulkString(bytes) => text(match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
            }),
            Value::SimpleString(s) => text(s),
            Value::Okay => text("OK".into()),
            Value::Array(items) | Value::Set(items) => nested(items),
            Value::Push { data, .. } => nested(data),
            Value::Map(pairs) => nested(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
            Value::Attribute { data, .. } => unsafe {
                Reply::to_napi_value(
                    env,
                    Reply {
                        value: *data,
                        buffers,
                    },
                )
            },
            Value::Double(d) => unsafe { f64::to_napi_value(env, d) },
            Value::Boolean(b) => unsafe { bool::to_napi_value(env, b) },
            Value::VerbatimString { text: t, .. } => text(t),
            Value::ServerError(err) => {
                let failure =
                    Failure::from(redpool::Error::from_server_reply(err.code(), err.details()));
                let env = Env::from_raw(env);
                unsafe { Error::to_napi_value(env.raw(), failure.into_napi(&env)) }
            }
            // Digits, as C gets them (a JS number cannot hold it; Python gets an int).
            Value::BigNumber(digits) => text(String::from_utf8_lossy(&digits).into_owned()),
            // A type no binding represents: the call fails with the core's error, as in Python.
            other => Err(Failure::from(redpool::Error::unsupported_reply(&other))
                .into_napi(&Env::from_raw(env))),
        }
    }
}
