//! Reading replies off a connection: a buffered reader that finds where each RESP frame ends,
//! builds the replies most commands get (simple strings, integers, bulk strings, nils and arrays
//! of them) itself, and hands every other frame (errors, RESP3 types) to redis-rs's parser, whole.
//!
//! Why not redis-rs's streaming parser for everything: its combinator parser cost about a third
//! of the client CPU of a 100-command pipeline (bench/results/PROFILE.md), far more than the rest
//! of the exchange. The frame scan is incremental (a frame arriving over many reads is scanned
//! once), and redis-rs stays the authority on everything but the five common types, which the
//! tests check against it, split at every byte.

use std::io::{self, Read};

use redis::Value;

/// Aggregates nested deeper than this are refused at once (Redis's own replies nest a handful of
/// levels; a script's reply a few more). It also bounds the recursion of [`build`].
pub(crate) const MAX_NESTING: usize = 128;
/// A line (a simple string, error, number, or a length header) longer than this without its CRLF
/// is refused at once.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// Initial buffer size; also what an emptied buffer shrinks back to after a large reply.
const INITIAL_BUFFER: usize = 16 * 1024;
/// A buffer above this size is shrunk once it is empty again.
const SHRINK_ABOVE: usize = 1024 * 1024;

/// Why no reply could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The socket failed (timeouts included).
    Io(io::Error),
    /// The server closed the connection.
    Closed,
    /// The bytes are not RESP.
    Protocol(String),
}

/// Where the scan of the frame at the front of the buffer stands, so that more bytes resume it.
#[derive(Default)]
struct Scan {
    /// Bytes of the frame (from its first byte) scanned so far: whole elements only.
    scanned: usize,
    /// Where the search for the CRLF of the element at `scanned` resumes (so a long line arriving
    /// over many reads is searched once).
    line_from: usize,
    /// Children still expected by each aggregate opened and not yet complete, innermost last.
    pending: Vec<u64>,
    /// False once the frame holds anything but `+ : $ * _`.
    common: bool,
}

/// The reply reader of one connection: its receive buffer and the scan state of the next frame.
pub(crate) struct ReplyReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    scan: Scan,
    /// The largest bulk length or aggregate count accepted (`max_reply_bytes`).
    max_length: u64,
}

impl ReplyReader {
    /// An empty reader that refuses any bulk length or aggregate count above `max_length`.
    pub fn new(max_length: u64) -> ReplyReader {
        ReplyReader {
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            max_length,
            scan: Scan {
                common: true,
                ..Scan::default()
            },
        }
    }

    /// True when no received byte waits to be parsed (an idle connection must have none).
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Reads the next reply, reading from `stream` as often as it takes.
    pub fn read(&mut self, stream: &mut impl Read) -> Result<Value, ReadError> {
        loop {
            if let Some(len) = self.scan_frame()? {
                let frame = self.start..self.start + len;
                let value = if self.scan.common {
                    build(&self.buf[frame.clone()], &mut 0)
                } else {
                    None
                };
                let value = match value {
                    Some(value) => Ok(value),
                    None => redis::parse_redis_value(&self.buf[frame.clone()])
                        .map_err(|e| ReadError::Protocol(e.to_string())),
                };
                self.consume(len);
                return value;
            }
            self.fill(stream)?;
        }
    }

    /// Continues the scan of the frame at the front; its length once it is complete.
    fn scan_frame(&mut self) -> Result<Option<usize>, ReadError> {
        let frame = &self.buf[self.start..self.end];
        let scan = &mut self.scan;
        loop {
            let line_from = scan.line_from.max(scan.scanned + 1);
            let element = match scan_element(frame, scan.scanned, line_from, self.max_length)? {
                Scanned::Element(element) => element,
                Scanned::Incomplete { searched_to } => {
                    scan.line_from = searched_to;
                    return Ok(None);
                }
            };
            scan.scanned = element.end;
            scan.line_from = 0;
            if !element.common {
                scan.common = false;
            }
            if element.children > 0 {
                if scan.pending.len() >= MAX_NESTING {
                    return Err(protocol(&format!(
                        "aggregates nested deeper than {MAX_NESTING} levels"
                    )));
                }
                scan.pending.push(element.children);
                continue;
            }
            // A complete element: it completes its parent when it was the last child, and so on.
            loop {
                let Some(left) = scan.pending.last_mut() else {
                    return Ok(Some(scan.scanned));
                };
                *left -= 1;
                if *left > 0 {
                    break;
                }
                scan.pending.pop();
            }
        }
    }

    /// Drops the frame just parsed and resets the scan for the next one.
    fn consume(&mut self, len: usize) {
        self.start += len;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > SHRINK_ABOVE {
                self.buf = vec![0; INITIAL_BUFFER];
            }
        }
        // Reset in place: the stack keeps its capacity for the next nested reply.
        self.scan.scanned = 0;
        self.scan.line_from = 0;
        self.scan.pending.clear();
        self.scan.common = true;
    }

    /// Reads more bytes: first makes room (moving the partial frame to the front, or growing).
    fn fill(&mut self, stream: &mut impl Read) -> Result<(), ReadError> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let bigger = self.buf.len() * 2;
                self.buf.resize(bigger, 0);
            }
        }
        loop {
            match stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }
}

/// One element header (and, for blobs, its payload) found at the front of a frame's bytes.
struct Element {
    /// Where the element ends (its header, and payload for blobs; not its children).
    end: usize,
    /// Children it opens (aggregates).
    children: u64,
    /// True for the types [`build`] makes itself.
    common: bool,
}

/// What [`scan_element`] found.
enum Scanned {
    /// The element, complete.
    Element(Element),
    /// More bytes are needed; the search for its line's CRLF got to `searched_to`.
    Incomplete { searched_to: usize },
}

/// The element at `at`, when its header (and blob payload) has fully arrived. The search for the
/// header's CRLF starts at `line_from` (bytes before it were searched already). Lengths are
/// checked as soon as the header is complete: above `max_length`, or negative other than a nil's
/// -1, they are refused before anything is allocated for them.
fn scan_element(
    bytes: &[u8],
    at: usize,
    line_from: usize,
    max_length: u64,
) -> Result<Scanned, ReadError> {
    let Some(&kind) = bytes.get(at) else {
        return Ok(Scanned::Incomplete { searched_to: 0 });
    };
    let Some(line_end) = find_crlf(bytes, line_from) else {
        if bytes.len() - (at + 1) > MAX_LINE {
            return Err(protocol(&format!(
                "a line longer than {MAX_LINE} bytes without CRLF"
            )));
        }
        // The last byte may be the CR of a CRLF split between reads: search it again.
        let searched_to = bytes.len().saturating_sub(1).max(at + 1);
        return Ok(Scanned::Incomplete { searched_to });
    };
    if line_end - (at + 1) > MAX_LINE {
        return Err(protocol(&format!("a line longer than {MAX_LINE} bytes")));
    }
    let line = &bytes[at + 1..line_end];
    let after_line = line_end + 2;
    let element = |end, children, common| {
        Ok(Scanned::Element(Element {
            end,
            children,
            common,
        }))
    };
    match kind {
        b'+' | b':' | b'_' | b'-' => element(after_line, 0, true),
        b',' | b'#' | b'(' => element(after_line, 0, false),
        b'$' | b'!' | b'=' => {
            let Some(len) = checked_length(line, kind == b'$', max_length)? else {
                return element(after_line, 0, true); // a nil
            };
            let end = usize::try_from(len)
                .ok()
                .and_then(|len| after_line.checked_add(len)?.checked_add(2))
                .ok_or_else(|| protocol("a bulk length beyond memory"))?;
            if bytes.len() < end {
                return Ok(Scanned::Incomplete { searched_to: 0 });
            }
            element(end, 0, kind == b'$')
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = checked_length(line, kind == b'*', max_length)?.unwrap_or(0);
            let children = match kind {
                b'%' => count.saturating_mul(2),
                b'|' => count.saturating_mul(2).saturating_add(1), // attributes, then the value
                _ => count,
            };
            element(after_line, children, kind == b'*')
        }
        other => Err(protocol(&format!(
            "unexpected byte {other:#04x} ({:?}) where a reply starts",
            char::from(other)
        ))),
    }
}

/// The length or count on a header line: `None` for a nil (-1, where `nil_allowed`); an error
/// for anything else negative, not a number, or above `max_length`.
fn checked_length(
    line: &[u8],
    nil_allowed: bool,
    max_length: u64,
) -> Result<Option<u64>, ReadError> {
    let value = parse_length(line).ok_or_else(|| protocol("a length that is not a number"))?;
    match u64::try_from(value) {
        Ok(len) if len > max_length => Err(protocol(&format!(
            "a length of {len}, above max_reply_bytes ({max_length})"
        ))),
        Ok(len) => Ok(Some(len)),
        Err(_) if value == -1 && nil_allowed => Ok(None),
        Err(_) => Err(protocol(&format!("a negative length ({value})"))),
    }
}

/// A length line's number: an optional `-` and 1 to 18 digits (so it cannot overflow; longer is
/// beyond any length accepted anyway). Byte by byte: this runs for every bulk string.
fn parse_length(line: &[u8]) -> Option<i64> {
    let (negative, digits) = match line {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(digit - b'0');
    }
    Some(if negative { -value } else { value })
}

fn protocol(what: &str) -> ReadError {
    ReadError::Protocol(format!("invalid RESP: {what}"))
}

/// The position of the next `\r\n` at or after `from`.
fn find_crlf(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let mut offset = 0;
    while let Some(cr) = rest[offset..].iter().position(|&b| b == b'\r') {
        let at = offset + cr;
        match rest.get(at + 1) {
            Some(b'\n') => return Some(from + at),
            Some(_) => offset = at + 1,
            None => return None,
        }
    }
    None
}

/// Builds the value of a complete frame of common types, exactly as redis-rs's parser would;
/// `None` for anything it would refuse (redis-rs then says why).
fn build(frame: &[u8], at: &mut usize) -> Option<Value> {
    let kind = *frame.get(*at)?;
    let line_end = find_crlf(frame, *at + 1)?;
    let line = &frame[*at + 1..line_end];
    *at = line_end + 2;
    if kind == b'-' {
        return server_error(line);
    }
    let line = std::str::from_utf8(line).ok()?;
    Some(match kind {
        b'+' if line == "OK" => Value::Okay,
        b'+' => Value::SimpleString(line.to_string()),
        b':' => Value::Int(line.trim().parse().ok()?),
        b'_' => Value::Nil,
        b'$' => {
            let Ok(len) = usize::try_from(line.trim().parse::<i64>().ok()?) else {
                return Some(Value::Nil);
            };
            let payload = frame.get(*at..*at + len)?;
            if frame.get(*at + len..*at + len + 2)? != b"\r\n" {
                return None;
            }
            *at += len + 2;
            Value::BulkString(payload.to_vec())
        }
        b'*' => {
            let Ok(count) = usize::try_from(line.trim().parse::<i64>().ok()?) else {
                return Some(Value::Nil);
            };
            let mut items = Vec::with_capacity(count.min(frame.len()));
            for _ in 0..count {
                items.push(build(frame, at)?);
            }
            Value::Array(items)
        }
        _ => return None,
    })
}

/// A server error reply (`-ERR ...`) as redis-rs parses it, its invalid UTF-8 replaced by U+FFFD
/// first: errors repeat the caller's arguments (`ERR unknown command '\xff'`), which may be
/// binary, and such a reply is an answer to pass on, not a broken stream (redis-rs refuses it).
fn server_error(line: &[u8]) -> Option<Value> {
    let mut text = String::from_utf8_lossy(line).into_owned().into_bytes();
    text.insert(0, b'-');
    text.extend_from_slice(b"\r\n");
    redis::parse_redis_value(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis's own `proto-max-bulk-len`, the default `max_reply_bytes`.
    const LIMIT: u64 = 512 * 1024 * 1024;

    /// Frames of every RESP2 and RESP3 type, including the odd corners.
    const CORPUS: &[&[u8]] = &[
        b"+OK\r\n",
        b"+PONG\r\n",
        b"+\r\n",
        b":0\r\n",
        b":-42\r\n",
        b":9223372036854775807\r\n",
        b"$3\r\nfoo\r\n",
        b"$0\r\n\r\n",
        b"$-1\r\n",
        b"$4\r\na\r\nb\r\n",
        b"*0\r\n",
        b"*-1\r\n",
        b"*3\r\n$1\r\na\r\n:7\r\n*2\r\n+x\r\n$-1\r\n",
        b"*2\r\n*1\r\n*1\r\n:1\r\n_\r\n",
        b"-ERR unknown command 'x'\r\n",
        b"-WRONGTYPE Operation against a key\r\n",
        b"*2\r\n$1\r\na\r\n-ERR in an array\r\n",
        b"_\r\n",
        b",3.25\r\n",
        b",inf\r\n",
        b"#t\r\n",
        b"#f\r\n",
        b"(3492890328409238509324850943850943825024385\r\n",
        b"!21\r\nSYNTAX invalid syntax\r\n",
        b"=15\r\ntxt:Some string\r\n",
        b"%2\r\n+first\r\n:1\r\n+second\r\n*1\r\n:2\r\n",
        b"~2\r\n+a\r\n:1\r\n",
        b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n",
        b">3\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n_\r\n",
        b">0\r\n",
    ];

    /// A stream that returns at most `chunk` bytes per read.
    struct Trickle<'a> {
        bytes: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(out.len()).min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn read_all(bytes: &[u8], chunk: usize, count: usize) -> Vec<Value> {
        let mut reader = ReplyReader::new(LIMIT);
        let mut stream = Trickle { bytes, chunk };
        (0..count)
            .map(|_| reader.read(&mut stream).expect("a reply"))
            .collect()
    }

    #[test]
    fn every_type_reads_as_redis_rs_parses_it_whatever_the_read_sizes() {
        for frame in CORPUS {
            let expected = redis::parse_redis_value(frame).expect("redis-rs parses the corpus");
            for chunk in [1, 2, 3, 7, 64, 1 << 20] {
                assert_eq!(
                    read_all(frame, chunk, 1),
                    vec![expected.clone()],
                    "{:?} in chunks of {chunk}",
                    String::from_utf8_lossy(frame)
                );
            }
        }
    }

    #[test]
    fn an_error_reply_with_invalid_utf8_is_read_with_it_replaced() {
        let frame = b"*2\r\n-ERR unknown command '\xff\xfe'\r\n-\xff\r\n+OK\r\n";
        let replies = read_all(frame, 3, 2);
        let Value::Array(items) = &replies[0] else {
            panic!("{replies:?}")
        };
        let texts: Vec<_> = items
            .iter()
            .map(|item| match item {
                Value::ServerError(err) => {
                    (err.code().to_string(), err.details().map(String::from))
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            texts,
            [
                (
                    "ERR".into(),
                    Some("unknown command '\u{fffd}\u{fffd}'".into())
                ),
                ("\u{fffd}".into(), None)
            ]
        );
        assert_eq!(replies[1], Value::Okay);
    }

    #[test]
    fn back_to_back_frames_are_read_in_order_and_nothing_is_left() {
        let all: Vec<u8> = CORPUS.concat();
        let expected: Vec<Value> = CORPUS
            .iter()
            .map(|f| redis::parse_redis_value(f).unwrap())
            .collect();
        for chunk in [1, 5, 4096] {
            let mut reader = ReplyReader::new(LIMIT);
            let mut stream = Trickle { bytes: &all, chunk };
            for want in &expected {
                assert_eq!(&reader.read(&mut stream).unwrap(), want);
            }
            assert!(reader.is_empty());
        }
    }

    #[test]
    fn a_large_reply_over_many_reads_grows_the_buffer_then_shrinks_it() {
        let big = vec![b'x'; 3 * 1024 * 1024];
        let mut frame = format!("*2\r\n${}\r\n", big.len()).into_bytes();
        frame.extend_from_slice(&big);
        frame.extend_from_slice(b"\r\n:1\r\n+OK\r\n");
        let replies = read_all(&frame, 64 * 1024, 2);
        assert_eq!(
            replies,
            vec![
                Value::Array(vec![Value::BulkString(big), Value::Int(1)]),
                Value::Okay
            ]
        );
    }

    #[test]
    fn bytes_that_are_not_resp_are_a_protocol_error() {
        let mut reader = ReplyReader::new(LIMIT);
        let mut stream = Trickle {
            bytes: b"HTTP/1.1 400 Bad Request\r\n\r\n",
            chunk: 1 << 10,
        };
        match reader.read(&mut stream) {
            Err(ReadError::Protocol(message)) => assert!(message.contains("'H'"), "{message}"),
            other => panic!("{other:?}"),
        }
        let mut stream = Trickle {
            bytes: b"$abc\r\n",
            chunk: 1 << 10,
        };
        assert!(matches!(
            ReplyReader::new(LIMIT).read(&mut stream),
            Err(ReadError::Protocol(_))
        ));
        // Well framed but refused by redis-rs: its own error.
        let mut stream = Trickle {
            bytes: b":12x\r\n",
            chunk: 1 << 10,
        };
        assert!(matches!(
            ReplyReader::new(LIMIT).read(&mut stream),
            Err(ReadError::Protocol(_))
        ));
    }

    #[test]
    fn a_connection_closed_mid_reply_is_reported_as_closed() {
        let mut stream = Trickle {
            bytes: b"*2\r\n:1\r\n",
            chunk: 3,
        };
        assert!(matches!(
            ReplyReader::new(LIMIT).read(&mut stream),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn nesting_deeper_than_redis_rs_allows_is_refused_not_overflowed() {
        let deep: Vec<u8> = b"*1\r\n"
            .repeat(10_000)
            .into_iter()
            .chain(*b":1\r\n")
            .collect();
        let mut stream = Trickle {
            bytes: &deep,
            chunk: 1 << 20,
        };
        assert!(matches!(
            ReplyReader::new(LIMIT).read(&mut stream),
            Err(ReadError::Protocol(_))
        ));
    }

    fn read_one(bytes: &[u8], chunk: usize) -> Result<Value, ReadError> {
        ReplyReader::new(LIMIT).read(&mut Trickle { bytes, chunk })
    }

    fn refused(bytes: &[u8], what: &str) {
        for chunk in [1, 4096, 1 << 20] {
            match read_one(bytes, chunk) {
                Err(ReadError::Protocol(message)) => {
                    assert!(message.contains(what), "{message} lacks {what:?}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn lengths_above_the_limit_or_negative_are_refused_before_any_payload() {
        refused(b"$536870913\r\n", "above max_reply_bytes");
        refused(b"*9999999999999\r\n", "above max_reply_bytes");
        refused(b"%9999999999999\r\n", "above max_reply_bytes");
        refused(b"$-2\r\n", "negative length");
        refused(b"*-5\r\n", "negative length");
        refused(b"!-1\r\n", "negative length");
        refused(b"$99999999999999999999999\r\n", "not a number");
        let mut small = ReplyReader::new(10);
        let mut stream = Trickle {
            bytes: b"$11\r\nhello world\r\n",
            chunk: 64,
        };
        assert!(matches!(
            small.read(&mut stream),
            Err(ReadError::Protocol(_))
        ));
        // Nils stay nils.
        assert_eq!(read_one(b"$-1\r\n", 1).unwrap(), Value::Nil);
        assert_eq!(read_one(b"*-1\r\n", 1).unwrap(), Value::Nil);
    }

    #[test]
    fn nesting_past_the_limit_is_refused_as_soon_as_it_is_seen() {
        let deep = b"*1\r\n".repeat(MAX_NESTING + 1);
        // No element ever completes: the error comes from the headers alone.
        refused(&deep, "nested deeper");
        let mut ok: Vec<u8> = b"*1\r\n".repeat(MAX_NESTING);
        ok.extend_from_slice(b":1\r\n");
        assert!(read_one(&ok, 7).is_ok());
    }

    #[test]
    fn a_line_without_crlf_is_refused_at_the_limit_and_scanned_once() {
        let mut long = vec![b'+'];
        long.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
        refused(&long, "longer than");
        // Arriving a byte at a time, a line just under the limit is searched once (searching it
        // again from its start on every read would take about two billion steps here).
        let mut fine = vec![b'+'];
        fine.extend(std::iter::repeat_n(b'a', MAX_LINE - 1));
        fine.extend_from_slice(b"\r\n");
        assert!(matches!(read_one(&fine, 1), Ok(Value::SimpleString(_))));
        // A CRLF split between two reads is found.
        assert_eq!(read_one(b"+OK\r\n", 4).unwrap(), Value::Okay);
    }
}
