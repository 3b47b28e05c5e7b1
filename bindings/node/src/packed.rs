//! The commands of an auto-pipelined batch as the JS batcher packs them (node/lib/packed.js), so
//! that reading a batch takes a few Node-API calls instead of several per argument: `text`, every
//! string argument end to end; `lengths`, per command its argument count, then per argument its
//! length in UTF-16 code units, or [`BLOB`] for the next Buffer of `blobs`.

use napi::bindgen_prelude::*;
use napi::{check_status, sys};
use redpool::Cmd;

use crate::convert::{Scratch, empty_command};
use crate::errors::Failure;

/// The length that stands for a Buffer argument (the next of `blobs`).
pub const BLOB: u32 = u32::MAX;

/// The string arguments of a batch, end to end, as UTF-16 code units.
pub struct Text(Vec<u16>);

impl TypeName for Text {
    fn type_name() -> &'static str {
        "string"
    }

    fn value_type() -> ValueType {
        ValueType::String
    }
}

impl FromNapiValue for Text {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut len = 0;
        check_status!(unsafe {
            sys::napi_get_value_string_utf16(env, value, std::ptr::null_mut(), 0, &mut len)
        })?;
        let mut units = Vec::with_capacity(len + 1);
        let mut written = 0;
        check_status!(unsafe {
            sys::napi_get_value_string_utf16(env, value, units.as_mut_ptr(), len + 1, &mut written)
        })?;
        // SAFETY: Node-API wrote `written` code units there.
        unsafe { units.set_len(written) };
        Ok(Text(units))
    }
}

/// The counts and lengths of a batch (a `Uint32Array`), copied.
pub struct Lengths(Vec<u32>);

impl TypeName for Lengths {
    fn type_name() -> &'static str {
        "Uint32Array"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl FromNapiValue for Lengths {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut kind = 0;
        let mut len = 0;
        let mut data = std::ptr::null_mut();
        let mut buffer = std::ptr::null_mut();
        let mut offset = 0;
        check_status!(
            unsafe {
                sys::napi_get_typedarray_info(
                    env,
                    value,
                    &mut kind,
                    &mut len,
                    &mut data,
                    &mut buffer,
                    &mut offset,
                )
            },
            "expected a Uint32Array"
        )?;
        if kind != sys::TypedarrayType::uint32_array {
            return Err(Error::new(Status::InvalidArg, "expected a Uint32Array"));
        }
        if len == 0 {
            return Ok(Lengths(Vec::new()));
        }
        // SAFETY: Node-API gives the array's elements, alive while `value` is (this call).
        let lengths = unsafe { std::slice::from_raw_parts(data.cast::<u32>(), len) };
        Ok(Lengths(lengths.to_vec()))
    }
}

/// The core commands packed in `text`, `lengths` and `blobs`. Strings become UTF-8, a lone
/// surrogate U+FFFD (as Node-API's UTF-8 conversion does).
pub fn commands(
    text: &Text,
    lengths: &Lengths,
    blobs: &[Buffer],
) -> std::result::Result<Vec<Cmd>, Failure> {
    let malformed = || Failure::invalid("malformed packed commands");
    let (text, lengths) = (&text.0[..], &lengths.0[..]);
    let mut cmds = Vec::new();
    let mut scratch = Scratch::default();
    let (mut at, mut pos, mut blob) = (0, 0, 0);
    while at < lengths.len() {
        let count = lengths[at] as usize;
        if count == 0 {
            return Err(empty_command());
        }
        let args = lengths.get(at + 1..at + 1 + count).ok_or_else(malformed)?;
        at += 1 + count;
        scratch.clear();
        for &len in args {
            if len == BLOB {
                let bytes = blobs.get(blob).ok_or_else(malformed)?;
                blob += 1;
                scratch.bytes().extend_from_slice(&bytes[..]);
            } else {
                let len = len as usize;
                let units = text.get(pos..pos + len).ok_or_else(malformed)?;
                pos += len;
                push_utf16(scratch.bytes(), units);
            }
            scratch.end_argument();
        }
        cmds.push(scratch.cmd());
    }
    if pos != text.len() || blob != blobs.len() {
        return Err(malformed()); // packed.js and this reader disagree: send nothing
    }
    Ok(cmds)
}

/// Appends UTF-16 `units` as UTF-8.
fn push_utf16(out: &mut Vec<u8>, units: &[u16]) {
    if units.iter().all(|&unit| unit < 0x80) {
        out.extend(units.iter().map(|&unit| unit as u8));
        return;
    }
    for c in char::decode_utf16(units.iter().copied()) {
        let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
}
