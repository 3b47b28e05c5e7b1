//! Conversions between JS values and the core's commands and replies.
//!
//! Arguments are copied into [`redpool::Cmd`]s on the main thread, before the call leaves it.
//! Replies cross back as Rust [`Value`]s and become JS values only in `to_napi_value`, which runs on
//! the main thread when the promise settles. Strings are UTF-8 JS strings, or Buffers where the JS
//! layer asked for them (ioredis's `...Buffer` methods). A server error inside a pipeline or
//! transaction becomes an `Error` with `.code = 'ERR_REPLY'` in its place.

use napi::bindgen_prelude::*;
use napi::sys;
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
        return Err(Failure::invalid("a command needs at least its name"));
    }
    let mut cmd = Cmd::new();
    for arg in args {
        match arg {
            Either::A(text) => cmd.arg(text.as_bytes()),
            Either::B(bytes) => cmd.arg(&bytes[..]),
        };
    }
    Ok(cmd)
}

/// Builds one core command per entry of `commands`.
pub fn commands(commands: &[JsArgs]) -> std::result::Result<Vec<Cmd>, Failure> {
    commands.iter().map(command).collect()
}

/// A reply on its way to JS; `buffers` makes strings Buffers.
pub struct Reply {
    pub value: Value,
    pub buffers: bool,
}

/// The replies of a pipeline or transaction, one `buffers` flag per command.
pub struct Replies {
    pub values: Vec<Value>,
    pub buffers: Vec<bool>,
}

impl Replies {
    fn into_vec(self) -> Vec<Reply> {
        let flags = self.buffers.into_iter().chain(std::iter::repeat(false));
        self.values
            .into_iter()
            .zip(flags)
            .map(|(value, buffers)| Reply { value, buffers })
            .collect()
    }
}

impl ToNapiValue for Replies {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        unsafe { Vec::<Reply>::to_napi_value(env, val.into_vec()) }
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
