//! Replies for C, shaped like hiredis's `redisReply`: a tree freed by one call to
//! `redpool_reply_free`.

use std::borrow::Cow;
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
}

/// One node of a reply tree before it is laid out: the fixed fields, its text, and how many
/// nodes its subtree holds (itself included), in pre-order.
struct Flat<'v> {
    node: redpool_reply,
    text: Option<Cow<'v, [u8]>>,
    subtree: usize,
}

/// Flattens `value` into `out` in pre-order; the number of nodes added.
fn flatten<'v>(value: &'v Value, out: &mut Vec<Flat<'v>>) -> usize {
    use redpool_reply_type::*;
    let leaf = |kind, text: Option<Cow<'v, [u8]>>| Flat {
        node: redpool_reply::empty(kind),
        text,
        subtree: 1,
    };
    let flat = match value {
        Value::Nil => leaf(REDPOOL_REPLY_NIL, None),
        Value::Int(i) => Flat {
            node: redpool_reply {
                integer: *i,
                ..redpool_reply::empty(REDPOOL_REPLY_INTEGER)
            },
            ..leaf(REDPOOL_REPLY_INTEGER, None)
        },
        Value::BulkString(bytes) => leaf(REDPOOL_REPLY_STRING, Some(Cow::Borrowed(bytes))),
        Value::SimpleString(s) => leaf(REDPOOL_REPLY_STATUS, Some(Cow::Borrowed(s.as_bytes()))),
        Value::Okay => leaf(REDPOOL_REPLY_STATUS, Some(Cow::Borrowed(b"OK"))),
        Value::Double(d) => Flat {
            node: redpool_reply {
                dval: *d,
                ..redpool_reply::empty(REDPOOL_REPLY_DOUBLE)
            },
            ..leaf(
                REDPOOL_REPLY_DOUBLE,
                Some(Cow::Owned(d.to_string().into_bytes())),
            )
        },
        Value::Boolean(b) => Flat {
            node: redpool_reply {
                integer: i64::from(*b),
                ..redpool_reply::empty(REDPOOL_REPLY_BOOL)
            },
            ..leaf(REDPOOL_REPLY_BOOL, None)
        },
        Value::BigNumber(digits) => leaf(REDPOOL_REPLY_BIGNUM, Some(Cow::Borrowed(digits))),
        Value::VerbatimString { format, text } => {
            let mut flat = leaf(REDPOOL_REPLY_VERB, Some(Cow::Borrowed(text.as_bytes())));
            for (slot, byte) in flat
                .node
                .vtype
                .iter_mut()
                .zip(format.to_string().bytes().take(3))
            {
                *slot = byte as c_char;
            }
            flat
        }
        Value::ServerError(err) => {
            let message = match err.details() {
                Some(detail) => format!("{} {detail}", err.code()),
                None => err.code().to_string(),
            };
            leaf(REDPOOL_REPLY_ERROR, Some(Cow::Owned(message.into_bytes())))
        }
        Value::Array(items) => return aggregate(REDPOOL_REPLY_ARRAY, None, items.iter(), out),
        Value::Set(items) => return aggregate(REDPOOL_REPLY_SET, None, items.iter(), out),
        Value::Push { kind, data } => {
            let kind = leaf(
                REDPOOL_REPLY_STRING,
                Some(Cow::Owned(kind.to_string().into_bytes())),
            );
            return aggregate(REDPOOL_REPLY_PUSH, Some(kind), data.iter(), out);
        }
        Value::Map(pairs) => {
            let items = pairs.iter().flat_map(|(k, v)| [k, v]);
            return aggregate(REDPOOL_REPLY_MAP, None, items, out);
        }
        Value::Attribute { data, .. } => return flatten(data, out),
        other => leaf(
            REDPOOL_REPLY_ERROR,
            Some(Cow::Owned(
                crate::Error::unsupported_reply(other)
                    .to_string()
                    .into_bytes(),
            )),
        ),
    };
    out.push(flat);
    1
}

/// Flattens an aggregate: its node, an optional synthesized first element, then its items.
fn aggregate<'v>(
    kind: redpool_reply_type,
    first: Option<Flat<'v>>,
    items: impl Iterator<Item = &'v Value>,
    out: &mut Vec<Flat<'v>>,
) -> usize {
    let at = out.len();
    out.push(Flat {
        node: redpool_reply::empty(kind),
        text: None,
        subtree: 1,
    });
    let mut elements = 0;
    let mut subtree = 1;
    if let Some(first) = first {
        out.push(first);
        elements += 1;
        subtree += 1;
    }
    for item in items {
        subtree += flatten(item, out);
        elements += 1;
    }
    out[at].node.elements = elements;
    out[at].subtree = subtree;
    subtree
}

/// What precedes the root of every tree in its allocation: the allocation's size (so
/// `redpool_reply_free` can give it back) and the root marker, padded to the alignment.
const HEADER: usize = 16;
/// The alignment of a tree's allocation (enough for `redpool_reply` and the header).
const ALIGN: usize = 16;
/// The root marker is this XOR the root's address, in the 8 bytes just before the root. An
/// element's 8 bytes before it are the `element` field of the node laid out before it: NULL or a
/// pointer into the tree, so always even, while the marker is always odd (the constant is odd,
/// node addresses are even). `redpool_reply_free` refuses a pointer without it.
const ROOT_MARK: usize = 0x5250_4f4f_4c52_4f4f_u64 as usize | 1;

// What the marker's argument rests on: the 8 bytes before an element are the `element` field of
// the node before it, and every node's address is a multiple of 8.
const _: () = assert!(
    std::mem::offset_of!(redpool_reply, element) + 8 == std::mem::size_of::<redpool_reply>()
        && std::mem::size_of::<redpool_reply>() % 8 == 0
        && HEADER % 8 == 0
);

/// The marker of a root at `root`.
fn root_mark(root: *const redpool_reply) -> usize {
    ROOT_MARK ^ (root as usize)
}

/// Lays a flattened tree out in one allocation: the header, every node (root first), the element
/// pointer arrays, then the texts, each NUL-terminated. A tree costs one `malloc` and one `free`
/// however many replies it holds (a 100-command pipeline made 200 allocations before).
fn lay_out(flat: Vec<Flat<'_>>) -> *mut redpool_reply {
    let nodes = flat.len();
    let pointers: usize = flat.iter().map(|f| f.node.elements).sum();
    let text_bytes: usize = flat
        .iter()
        .filter_map(|f| f.text.as_ref().map(|t| t.len() + 1))
        .sum();
    let node_size = std::mem::size_of::<redpool_reply>();
    let pointer_size = std::mem::size_of::<*mut redpool_reply>();
    let nodes_at = HEADER;
    let pointers_at = nodes_at + nodes * node_size;
    let texts_at = pointers_at + pointers * pointer_size;
    let size = texts_at + text_bytes;
    let layout = std::alloc::Layout::from_size_align(size, ALIGN).expect("a reply fits in memory");
    // SAFETY: `size` is at least HEADER + one node, so never zero.
    let block = unsafe { std::alloc::alloc(layout) };
    if block.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: every write below stays inside the `size` bytes just allocated: the offsets were
    // computed from the same counts, and each region is aligned for what is written to it
    // (ALIGN-aligned block, HEADER a multiple of 8, node and pointer sizes multiples of 8).
    unsafe {
        block.cast::<usize>().write(size);
        let node_ptr = |i: usize| block.add(nodes_at + i * node_size).cast::<redpool_reply>();
        let mut next_pointer = block.add(pointers_at).cast::<*mut redpool_reply>();
        let mut next_text = block.add(texts_at);
        for (i, f) in flat.iter().enumerate() {
            let mut node = redpool_reply { ..f.node };
            if let Some(text) = &f.text {
                std::ptr::copy_nonoverlapping(text.as_ptr(), next_text, text.len());
                next_text.add(text.len()).write(0);
                node.str = next_text.cast::<c_char>();
                node.len = text.len();
                next_text = next_text.add(text.len() + 1);
            }
            if node.elements > 0 {
                node.element = next_pointer;
                // Children in pre-order: the first right after the node, each next one after
                // the previous one's subtree.
                let mut child = i + 1;
                for _ in 0..node.elements {
                    next_pointer.write(node_ptr(child));
                    next_pointer = next_pointer.add(1);
                    child += flat[child].subtree;
                }
            }
            node_ptr(i).write(node);
        }
        let root = node_ptr(0);
        block.add(HEADER - 8).cast::<usize>().write(root_mark(root));
        root
    }
}

/// Converts a core value into a reply tree (caller owns the root; one allocation).
pub(crate) fn from_value(value: Value) -> *mut redpool_reply {
    let mut flat = Vec::new();
    flatten(&value, &mut flat);
    lay_out(flat)
}

/// An error reply carrying a server error the core reported as an `Error` (single commands).
pub(crate) fn from_server_error(err: &Error) -> *mut redpool_reply {
    lay_out(vec![Flat {
        node: redpool_reply::empty(redpool_reply_type::REDPOOL_REPLY_ERROR),
        text: Some(Cow::Borrowed(err.message().as_bytes())),
        subtree: 1,
    }])
}

/// Frees a reply tree: the root and every element. NULL is ignored (`REDPOOL_STATUS_OK`). Call it
/// once, on the root only; the reply and its elements must not be used afterwards. Like every
/// free function it leaves this thread's last error message alone when it succeeds.
///
/// An element of a tree (`element[i]`, at any depth) is not freed on its own: the call is
/// refused with `REDPOOL_STATUS_INVALID_ARGUMENT` and changes nothing (the tree stays valid, to
/// be freed through its root). Each root carries a marker that elements never have, so this is
/// detected for certain; it cannot be for a pointer that never came from redpool or a tree
/// already freed (do not do that).
///
/// # Safety
/// `reply` is NULL, a root reply returned by redpool and not yet freed, or an element of such a
/// tree.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_reply_free(reply: *mut redpool_reply) -> super::redpool_status {
    // Not `boundary`: a free that succeeds leaves the thread's last error as it was (it is often
    // the cleanup between a failed call and reading that call's message).
    let freed = std::panic::catch_unwind(|| {
        if reply.is_null() {
            return true;
        }
        if reply as usize % std::mem::align_of::<redpool_reply>() != 0 {
            return false;
        }
        // SAFETY: `reply` is a node of a live tree (per the contract): a root has its header
        // before it, and any other node has the node laid out before it; either way the 8 bytes
        // just before it are inside the tree's allocation.
        let mark = unsafe { reply.cast::<u8>().sub(8).cast::<usize>().read() };
        if mark != root_mark(reply) {
            return false;
        }
        // SAFETY: a root laid out by `lay_out`: its block starts HEADER bytes before it and
        // records its size there. The marker is cleared first, so a stale pointer to the freed
        // tree is less likely to pass for a root.
        unsafe {
            let block = reply.cast::<u8>().sub(HEADER);
            block.add(HEADER - 8).cast::<usize>().write(0);
            let size = block.cast::<usize>().read();
            let layout = std::alloc::Layout::from_size_align_unchecked(size, ALIGN);
            std::alloc::dealloc(block, layout);
        }
        true
    });
    match freed {
        Ok(true) => super::redpool_status::REDPOOL_STATUS_OK,
        Ok(false) => super::status::fail(&not_a_root()),
        Err(payload) => super::status::panicked(payload.as_ref()),
    }
}

fn not_a_root() -> Error {
    Error::new(
        crate::error::ErrorKind::InvalidArgument,
        "redpool_reply_free: reply is not the root of a reply tree (an element is freed with its \
         root, never on its own); nothing was freed",
    )
}
