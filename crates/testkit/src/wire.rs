//! HTTP/1.1 wire pieces the raw clients share: response heads and bodies
//! (`Content-Length`, chunked, or read to the end of the connection).
//!
//! The test clients speak HTTP by hand so that tests see the exact bytes the
//! server sends and can send bytes no HTTP library would (malformed JSON,
//! oversized or chunked bodies). This module is their decoder; it is strict
//! where the server is expected to be (CRLF line ends, well-formed chunks).

use std::io;

use tokio::{io::AsyncReadExt, net::TcpStream};

mod chunked;

pub use chunked::Dechunker;

/// The largest response head the clients accept, in bytes.
const MAX_HEAD: usize = 64 * 1024;

/// A parsed response head: status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code, e.g. `200`.
    pub status: u16,
    /// The reason phrase, e.g. `OK` (may be empty).
    pub reason: String,
    /// The header fields in order, names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// How the body after this head is delimited.
    pub fn body_kind(&self) -> BodyKind {
        if (100..200).contains(&self.status) || self.status == 204 || self.status == 304 {
            return BodyKind::Empty;
        }
        if let Some(te) = self.header("transfer-encoding") {
            if te
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
            {
                return BodyKind::Chunked;
            }
            return BodyKind::UntilEof;
        }
        match self.header("content-length").map(str::parse) {
            Some(Ok(len)) => BodyKind::Length(len),
            _ => BodyKind::UntilEof,
        }
    }
}

/// How a response body is delimited (RFC 9112 §6.3, for responses to
/// anything but `HEAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (1xx, 204, 304).
    Empty,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length` bytes.
    Length(u64),
    /// Everything until the server closes the connection.
    UntilEof,
}

/// The first value of header `name` (any case) in a lowercased header list.
pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// The length of the head at the start of `buf` (up to and including the
/// blank line), once `buf` holds all of it.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses a complete response head (status line, header lines, blank line).
///
/// # Errors
///
/// `InvalidData` when the bytes are not an HTTP/1.x response head.
pub fn parse_head(bytes: &[u8]) -> io::Result<Head> {
    let text = std::str::from_utf8(bytes).map_err(|_| invalid("response head is not UTF-8"))?;
    let text = text
        .strip_suffix("\r\n\r\n")
        .ok_or_else(|| invalid("response head does not end with a blank line"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("bad status line {status_line:?}")));
    }
    let status = parts
        .next()
        .filter(|code| code.len() == 3)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("bad status code in {status_line:?}")))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .filter(|(name, _)| !name.is_empty() && !name.contains([' ', '\t']))
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Head {
        status,
        reason,
        headers,
    })
}

/// Reads from `stream` into `buf` until it holds a final (non-1xx) response
/// head; returns the head and leaves the bytes after it in `buf`.
pub(crate) async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Head> {
    loop {
        if let Some(len) = head_len(buf) {
            let head = parse_head(&buf[..len])?;
            buf.drain(..len);
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            return Ok(head);
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("response head larger than 64 KiB"));
        }
        let mut chunk = [0; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            let got = String::from_utf8_lossy(buf);
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("connection closed before a full response head; got {got:?}"),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Decodes a response body delimited as its [`BodyKind`] says, fed in
/// pieces as they arrive.
#[derive(Debug)]
pub struct BodyDecoder {
    kind: Decoding,
}

#[derive(Debug)]
enum Decoding {
    Chunked(Dechunker),
    Length(u64),
    UntilEof,
    Done,
}

impl BodyDecoder {
    /// A decoder for a body of `kind`.
    pub fn new(kind: BodyKind) -> Self {
        let kind = match kind {
            BodyKind::Empty | BodyKind::Length(0) => Decoding::Done,
            BodyKind::Chunked => Decoding::Chunked(Dechunker::new()),
            BodyKind::Length(len) => Decoding::Length(len),
            BodyKind::UntilEof => Decoding::UntilEof,
        };
        Self { kind }
    }

    /// Decodes `input`, appending body bytes to `out`. Bytes past the end of
    /// the body are ignored.
    ///
    /// # Errors
    ///
    /// `InvalidData` on malformed chunked framing.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        match &mut self.kind {
            Decoding::Chunked(dechunker) => {
                dechunker.feed(input, out)?;
                if dechunker.is_done() {
                    self.kind = Decoding::Done;
                }
            }
            Decoding::Length(left) => {
                let n = input
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                out.extend_from_slice(&input[..n]);
                *left -= n as u64;
                if *left == 0 {
                    self.kind = Decoding::Done;
                }
            }
            Decoding::UntilEof => out.extend_from_slice(input),
            Decoding::Done => {}
        }
        Ok(())
    }

    /// Whether the body is complete (a read-to-EOF body never is).
    pub fn is_done(&self) -> bool {
        matches!(self.kind, Decoding::Done)
    }

    /// Whether a connection closing now ends the body as its framing says
    /// (rather than cutting it short).
    pub fn eof_is_clean(&self) -> bool {
        matches!(self.kind, Decoding::Done | Decoding::UntilEof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_sse_response_head() {
        let bytes = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
            Cache-Control:  no-cache \r\nX-Accel-Buffering: no\r\n\
            transfer-encoding: chunked\r\ndate: x\r\n\r\n";
        assert_eq!(head_len(bytes), Some(bytes.len()));
        let head = parse_head(bytes).unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.reason, "OK");
        assert_eq!(head.header("Content-Type"), Some("text/event-stream"));
        assert_eq!(head.header("cache-control"), Some("no-cache"));
        assert_eq!(head.header("x-accel-buffering"), Some("no"));
        assert_eq!(head.header("missing"), None);
        assert_eq!(head.headers[1].0, "cache-control");
        assert_eq!(head.body_kind(), BodyKind::Chunked);
    }

    #[test]
    fn body_kind_follows_the_head() {
        let kind = |head: &str| parse_head(head.as_bytes()).unwrap().body_kind();
        assert_eq!(
            kind("HTTP/1.1 400 Bad Request\r\ncontent-length: 17\r\n\r\n"),
            BodyKind::Length(17)
        );
        assert_eq!(kind("HTTP/1.1 204 No Content\r\n\r\n"), BodyKind::Empty);
        assert_eq!(kind("HTTP/1.0 200 OK\r\n\r\n"), BodyKind::UntilEof);
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            BodyKind::Chunked
        );
    }

    #[test]
    fn malformed_heads_are_errors() {
        for bytes in [
            &b"HTTP/1.1 200 OK\r\n\r"[..],
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
        ] {
            assert!(
                parse_head(bytes).is_err(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(head_len(b"HTTP/1.1 200 OK\r\n"), None);
    }

    #[test]
    fn body_decoder_stops_at_content_length() {
        let mut decoder = BodyDecoder::new(BodyKind::Length(5));
        let mut out = Vec::new();
        decoder.feed(b"{\"a\"", &mut out).unwrap();
        assert!(!decoder.is_done() && !decoder.eof_is_clean());
        decoder.feed(b"}extra", &mut out).unwrap();
        assert_eq!(out, b"{\"a\"}");
        assert!(decoder.is_done() && decoder.eof_is_clean());
    }
}
