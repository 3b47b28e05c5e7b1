//! Replies for C, shaped like hiredis's `redisReply`: a tree freed by one call to
//! `redpool_reply_free`.

use std::ffi::c_char;

use redis::Value;

use crate::error::Error;

/// The type of a reply; the same numbers as hiredis's `REDIS_REPLY_*`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum redpool_reply_type {
    /// A bulk string: `str` / `len` (binary safe, NUL-terminated).
    REDPOOL_REPLY_STRING = 1,
    /// An array: `elements` / `element`.
    REDPOOL_REPLY_ARRAY = 2,
    /// An integer: `integer`.
    REDPOOL_REPLY_INTEGER = 3,
    /// A nil reply (missing key, aborted transaction).
    REDPOOL_REPLY_NIL = 4,
    /// A status reply such as "OK" or "PONG": `str` / `len`.
    REDPOOL_REPLY_STATUS = 5,
    /// A server error reply such as "WRONGTYPE ...": `str` / `len`.
    REDPOOL_REPLY_ERROR = 6,
    /// A double (RESP3): `dval`, and its text in `str` / `len`.
    REDPOOL_REPLY_DOUBLE = 7,
    /// A boolean (RESP3): `integer` is 0 or 1.
    REDPOOL_REPLY_BOOL = 8,
    /// A map (RESP3): `elements` is twice the number of pairs, keys and values alternating.
    REDPOOL_REPLY_MAP = 9,
    /// A set (RESP3): `elements` / `element`.
    REDPOOL_REPLY_SET = 10,
    /// A push message (RESP3): `elements` / `element`, the first element being its kind
    /// ("message", "invalidate", ...).
    REDPOOL_REPLY_PUSH = 12,
    /// A big number (RESP3): its decimal text in `str` / `len`.
    REDPOOL_REPLY_BIGNUM = 13,
    /// A verbatim string (RESP3): `str` / `len`, and its format in `vtype`.
    REDPOOL_REPLY_VERB = 14,
}

/// A reply. Owned by whoever received it from a `redpool_*` call, and freed, children included,
/// by one call to `redpool_reply_free` on the root. Children (`element[i]`) are borrowed from their
/// parent and must never be freed on their own. Immutable: any number of threads may read it.
#[repr(C)]
#[derive(Debug)]
pub struct redpool_reply {
    /// The reply type (a `redpool_reply_type` value).
    pub r#type: redpool_reply_type,
    /// For INTEGER and BOOL.
    pub integer: i64,
    /// For DOUBLE.
    pub dval: f64,
    /// Length of `str` in bytes, without the terminating NUL.
    pub len: usize,
    /// For STRING, STATUS, ERROR, DOUBLE, BIGNUM and VERB: the bytes, followed by a NUL (so text
    /// can be printed directly); NULL for other types.
    pub str: *mut c_char,
    /// For VERB: the 3-character format ("txt", "mkd"), NUL-terminated.
    pub vtype: [c_char; 4],
    /// For ARRAY, MAP, SET and PUSH: the number of elements.
    pub elements: usize,
    /// For ARRAY, MAP, SET and PUSH: the elements; NULL when there are none.
    pub element: *mut *mut redpool_reply,
}

impl redpool_reply {
    fn empty(kind: redpool_reply_type) -> redpool_reply {
        redpool_reply {
            r#type: kind,
            integer: 0,
            dval: 0.0,
            len: 0,
            str: std::ptr::null_mut(),
            vtype: [0; 4],
            elements: 0,
            element: std::ptr::null_mut(),
        }
    }

    fn text(kind: redpool_reply_type, bytes: &[u8]) -> redpool_reply {
        let mut owned = Vec::with_capacity(bytes.len() + 1);
        owned.extend_from_slice(bytes);
        owned.push(0);
        let boxed = owned.into_boxed_slice();
        redpool_reply {
            len: bytes.len(),
            str: Box::into_raw(boxed).cast::<c_char>(),
            ..redpool_reply::empty(kind)
        }
    }

    fn aggregate(kind: redpool_reply_type, children: Vec<*mut redpool_reply>) -> redpool_reply {
        if children.is_empty() {
            return redpool_reply::empty(kind);
        }
        let elements = children.len();
        let boxed = children.into_boxed_slice();
        redpool_reply {
            elements,
            element: Box::into_raw(boxed).cast::<*mut redpool_reply>(),
            ..redpool_reply::empty(kind)
        }
    }
}

/// Converts a core value into a heap-allocated reply tree (caller owns the root).
pub(crate) fn from_value(value: Value) -> *mut redpool_reply {
    use redpool_reply_type::*;
    let reply = match value {
        Value::Nil => redpool_reply::empty(REDPOOL_REPLY_NIL),
        Value::Int(i) => redpool_reply {
            integer: i,
            ..redpool_reply::empty(REDPOOL_REPLY_INTEGER)
        },
        Value::BulkString(bytes) => redpool_reply::text(REDPOOL_REPLY_STRING, &bytes),
        Value::SimpleString(s) => redpool_reply::text(REDPOOL_REPLY_STATUS, s.as_bytes()),
        Value::Okay => redpool_reply::text(REDPOOL_REPLY_STATUS, b"OK"),
        Value::Double(d) => redpool_reply {
            dval: d,
            ..redpool_reply::text(REDPOOL_REPLY_DOUBLE, d.to_string().as_bytes())
        },
        Value::Boolean(b) => redpool_reply {
            integer: i64::from(b),
            ..redpool_reply::empty(REDPOOL_REPLY_BOOL)
        },
        Value::BigNumber(digits) => redpool_reply::text(REDPOOL_REPLY_BIGNUM, &digits),
        Value::VerbatimString { format, text } => {
            let mut reply = redpool_reply::text(REDPOOL_REPLY_VERB, text.as_bytes());
            for (slot, byte) in reply
                .vtype
                .iter_mut()
                .zip(format.to_string().bytes().take(3))
            {
                *slot = byte as c_char;
            }
            reply
        }
        Value::ServerError(err) => {
            let message = match err.details() {
                Some(detail) => format!("{} {detail}", err.code()),
                None => err.code().to_string(),
            };
            redpool_reply::text(REDPOOL_REPLY_ERROR, message.as_bytes())
        }
        Value::Array(items) => children(REDPOOL_REPLY_ARRAY, items),
        Value::Set(items) => children(REDPOOL_REPLY_SET, items),
        Value::Push { kind, data } => children(
            REDPOOL_REPLY_PUSH,
            std::iter::once(Value::BulkString(kind.to_string().into_bytes()))
                .chain(data)
                .collect(),
        ),
        Value::Map(pairs) => children(
            REDPOOL_REPLY_MAP,
            pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        ),
        Value::Attribute { data, .. } => return from_value(*data),
        other => redpool_reply::text(
            REDPOOL_REPLY_ERROR,
            format!("redpool: reply type not supported by the C API: {other:?}").as_bytes(),
        ),
    };
    Box::into_raw(Box::new(reply))
}

fn children(kind: redpool_reply_type, items: Vec<Value>) -> redpool_reply {
    redpool_reply::aggregate(kind, items.into_iter().map(from_value).collect())
}

/// An error reply carrying a server error the core reported as an `Error` (single commands).
pub(crate) fn from_server_error(err: &Error) -> *mut redpool_reply {
    Box::into_raw(Box::new(redpool_reply::text(
        redpool_reply_type::REDPOOL_REPLY_ERROR,
        err.message().as_bytes(),
    )))
}

/// Frees a reply tree: the root and every element. NULL is ignored. Call it once, on the root
/// only; the reply and its elements must not be used afterwards.
///
/// # Safety
/// `reply` is NULL or a root reply returned by redpool and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_reply_free(reply: *mut redpool_reply) {
    super::query((), || {
        if !reply.is_null() {
            // SAFETY: a root reply allocated by `from_value`, owned by the caller.
            unsafe { free(reply) }
        }
    })
}

/// # Safety
/// `reply` was allocated by `from_value` and is freed exactly once.
unsafe fn free(reply: *mut redpool_reply) {
    // SAFETY: allocated with `Box::new` in `from_value`.
    let reply = unsafe { Box::from_raw(reply) };
    if !reply.str.is_null() {
        let slice = std::ptr::slice_from_raw_parts_mut(reply.str.cast::<u8>(), reply.len + 1);
        // SAFETY: allocated as a boxed slice of `len + 1` bytes in `redpool_reply::text`.
        drop(unsafe { Box::from_raw(slice) });
    }
    if !reply.element.is_null() {
        let slice = std::ptr::slice_from_raw_parts_mut(reply.element, reply.elements);
        // SAFETY: allocated as a boxed slice of `elements` pointers in `aggregate`.
        let children = unsafe { Box::from_raw(slice) };
        for child in children.iter() {
            // SAFETY: each child was allocated by `from_value` and is owned by this parent.
            unsafe { free(*child) };
        }
    }
}
