//! `Transfer-Encoding: chunked` decoding (RFC 9112 §7.1).

use std::io;

use super::invalid;

/// The longest chunk-size or trailer line the decoder accepts, in bytes.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// An incremental decoder for `Transfer-Encoding: chunked` bodies; the input
/// may be split anywhere.
#[derive(Debug)]
pub struct Dechunker {
    state: State,
}

#[derive(Debug)]
enum State {
    /// Reading a chunk-size line (with optional extensions).
    Size(Vec<u8>),
    /// Inside a chunk's data: bytes left.
    Data(u64),
    /// After a chunk's data: how many bytes of its CRLF were seen.
    DataEnd(usize),
    /// After the last chunk: reading trailer lines up to the blank line.
    Trailer(Vec<u8>),
    /// The terminating blank line was read.
    Done,
}

impl Default for Dechunker {
    fn default() -> Self {
        Self::new()
    }
}

impl Dechunker {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        Self {
            state: State::Size(Vec::new()),
        }
    }

    /// Whether the last chunk and the trailer section were read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Decodes `input`, appending chunk data to `out`; returns how many
    /// bytes of `input` belonged to the body (all of them, unless the body
    /// ended inside `input`).
    ///
    /// # Errors
    ///
    /// `InvalidData` on a bad chunk size, a missing CRLF, or an overlong line.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<usize> {
        let mut rest = input;
        while !rest.is_empty() {
            self.state = match std::mem::replace(&mut self.state, State::Done) {
                State::Done => break,
                State::Data(left) => {
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    match left - n as u64 {
                        0 => State::DataEnd(0),
                        left => State::Data(left),
                    }
                }
                State::DataEnd(seen) => {
                    if rest[0] != b"\r\n"[seen] {
                        return Err(invalid("chunk data not followed by CRLF"));
                    }
                    rest = &rest[1..];
                    if seen == 1 {
                        State::Size(Vec::new())
                    } else {
                        State::DataEnd(1)
                    }
                }
                State::Size(mut line) => match take_line(&mut line, &mut rest)? {
                    false => State::Size(check_line_len(line)?),
                    true => match parse_chunk_size(&line)? {
                        0 => State::Trailer(Vec::new()),
                        size => State::Data(size),
                    },
                },
                State::Trailer(mut line) => match take_line(&mut line, &mut rest)? {
                    false => State::Trailer(check_line_len(line)?),
                    true if line.is_empty() => State::Done,
                    true => State::Trailer(Vec::new()),
                },
            };
        }
        Ok(input.len() - rest.len())
    }
}

/// Moves bytes from `rest` into `line` up to and including an LF; when the
/// line is complete, strips its CRLF and returns true.
fn take_line(line: &mut Vec<u8>, rest: &mut &[u8]) -> io::Result<bool> {
    match rest.iter().position(|&b| b == b'\n') {
        None => {
            line.extend_from_slice(rest);
            *rest = &[];
            Ok(false)
        }
        Some(i) => {
            line.extend_from_slice(&rest[..=i]);
            *rest = &rest[i + 1..];
            if !line.ends_with(b"\r\n") {
                return Err(invalid("chunk line not ended by CRLF"));
            }
            line.truncate(line.len() - 2);
            Ok(true)
        }
    }
}

fn check_line_len(line: Vec<u8>) -> io::Result<Vec<u8>> {
    if line.len() > MAX_CHUNK_LINE {
        return Err(invalid("chunk-size or trailer line too long"));
    }
    Ok(line)
}

fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let size = line.split(|&b| b == b';').next().unwrap_or_default();
    let size = size.trim_ascii();
    let bad = || {
        invalid(format!(
            "bad chunk size {:?}",
            String::from_utf8_lossy(line)
        ))
    };
    if size.is_empty() || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let text = std::str::from_utf8(size).map_err(|_| bad())?;
    u64::from_str_radix(text, 16).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dechunk_in_pieces(input: &[u8], piece: usize) -> io::Result<(Vec<u8>, bool, usize)> {
        let mut dechunker = Dechunker::new();
        let mut out = Vec::new();
        let mut used = 0;
        for part in input.chunks(piece) {
            used += dechunker.feed(part, &mut out)?;
        }
        Ok((out, dechunker.is_done(), used))
    }
    #[test]
    fn dechunks_whatever_the_split() {
        let wire = b"7\r\nretry: \r\n1d;ext=1\r\n2000\n\nevent: herald.connected\r\n0\r\n\r\n";
        for piece in 1..=wire.len() {
            let (out, done, used) = dechunk_in_pieces(wire, piece).unwrap();
            assert_eq!(
                out, b"retry: 2000\n\nevent: herald.connected",
                "piece {piece}"
            );
            assert!(done);
            assert_eq!(used, wire.len());
        }
    }

    #[test]
    fn dechunker_stops_at_the_end_and_skips_trailers() {
        let wire = b"3\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\nHTTP/1.1 200 OK";
        let mut dechunker = Dechunker::new();
        let mut out = Vec::new();
        let used = dechunker.feed(wire, &mut out).unwrap();
        assert_eq!(out, b"abc");
        assert!(dechunker.is_done());
        assert_eq!(&wire[used..], b"HTTP/1.1 200 OK");
    }

    #[test]
    fn open_stream_is_not_done() {
        let (out, done, _) = dechunk_in_pieces(b"C\r\n: heartbeat\n\r\n5\r\ndat", 3).unwrap();
        assert_eq!(out, b": heartbeat\ndat");
        assert!(!done);
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for wire in [
            &b"zz\r\nab\r\n"[..],
            b"\r\n",
            b"+2\r\nab\r\n",
            b"2\r\nabX\n",
            b"2\nab\r\n",
        ] {
            let err = dechunk_in_pieces(wire, wire.len()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{wire:?}");
        }
    }
}
