//! Incremental HTTP/1.1 response body decoding (chunked or plain), handing
//! out slices of the input without copying.

use crate::Error;

/// Longest chunk-size line accepted (size, extensions, CRLF).
const MAX_SIZE_LINE: usize = 1024;

/// A response body decoder, fed whatever the socket gives.
#[derive(Debug, Clone)]
pub(crate) struct BodyDecoder {
    state: State,
    /// A chunk-size line split across reads.
    line: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not chunked: everything until the connection closes is body.
    Plain,
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk, this many bytes left.
    Data(u64),
    /// After a chunk's data, this many bytes of its CRLF left.
    DataEnd(u8),
    /// After the last chunk: trailer lines until an empty one.
    Trailer,
    /// The body is complete.
    Done,
}

impl BodyDecoder {
    /// A decoder for `Transfer-Encoding: chunked`.
    pub(crate) fn chunked() -> Self {
        Self {
            state: State::Size,
            line: Vec::new(),
        }
    }

    /// A decoder for a body delimited by the connection's end.
    pub(crate) fn plain() -> Self {
        Self {
            state: State::Plain,
            line: Vec::new(),
        }
    }

    /// Whether the final chunk and trailer were read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, calling `out` with each run of body bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] on a malformed chunk size or framing.
    pub(crate) fn decode<'a>(
        &mut self,
        mut input: &'a [u8],
        mut out: impl FnMut(&'a [u8]),
    ) -> Result<(), Error> {
        while !input.is_empty() {
            match self.state {
                State::Plain => {
                    out(input);
                    return Ok(());
                }
                State::Data(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    out(&input[..take]);
                    input = &input[take..];
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd(2)
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd(left) => {
                    let expected: &[u8] = if left == 2 { b"\r\n" } else { b"\n" };
                    if input[0] != expected[0] {
                        return Err(Error::Protocol("chunk data not followed by CRLF".into()));
                    }
                    input = &input[1..];
                    self.state = if left == 2 {
                        State::DataEnd(1)
                    } else {
                        State::Size
                    };
                }
                State::Size | State::Trailer => {
                    let Some(end) = input.iter().position(|&b| b == b'\n') else {
                        self.push_line(input)?;
                        return Ok(());
                    };
                    self.push_line(&input[..end])?;
                    input = &input[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.state = if self.state == State::Trailer {
                        if line.is_empty() {
                            State::Done
                        } else {
                            State::Trailer
                        }
                    } else {
                        match parse_size(line)? {
                            0 => State::Trailer,
                            size => State::Data(size),
                        }
                    };
                }
                State::Done => return Ok(()),
            }
        }
        Ok(())
    }

    fn push_line(&mut self, part: &[u8]) -> Result<(), Error> {
        if self.line.len() + part.len() > MAX_SIZE_LINE {
            return Err(Error::Protocol("chunk-size line too long".into()));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }
}

fn parse_size(line: &[u8]) -> Result<u64, Error> {
    let hex = line.split(|&b| b == b';').next().unwrap_or_default();
    let hex = std::str::from_utf8(hex).unwrap_or_default().trim();
    u64::from_str_radix(hex, 16).map_err(|_| {
        Error::Protocol(format!(
            "bad chunk size {:?}",
            String::from_utf8_lossy(line)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(body: &[u8], piece: usize) -> (Vec<u8>, bool) {
        let mut decoder = BodyDecoder::chunked();
        let mut out = Vec::new();
        for part in body.chunks(piece) {
            decoder
                .decode(part, |bytes| out.extend_from_slice(bytes))
                .unwrap();
        }
        (out, decoder.is_done())
    }

    const BODY: &[u8] =
        b"7\r\nevent: \r\n1A;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";

    #[test]
    fn chunked_body_decodes_however_it_is_split() {
        for piece in 1..BODY.len() {
            let (out, done) = decode_in_pieces(BODY, piece);
            assert_eq!(out, b"event: abcdefghijklmnopqrstuvwxyz", "piece {piece}");
            assert!(done, "piece {piece}");
        }
    }

    #[test]
    fn open_stream_is_not_done() {
        let (out, done) = decode_in_pieces(b"3\r\nabc\r\n2\r\nde", 4);
        assert_eq!(out, b"abcde");
        assert!(!done);
    }

    #[test]
    fn plain_body_passes_through() {
        let mut decoder = BodyDecoder::plain();
        let mut out = Vec::new();
        decoder
            .decode(b"data: 1\n\n", |b| out.extend_from_slice(b))
            .unwrap();
        assert_eq!(out, b"data: 1\n\n");
        assert!(!decoder.is_done());
    }

    #[test]
    fn malformed_framing_is_an_error() {
        let mut decoder = BodyDecoder::chunked();
        assert!(decoder.decode(b"zz\r\n", |_| {}).is_err());
        let mut decoder = BodyDecoder::chunked();
        assert!(decoder.decode(b"1\r\nab", |_| {}).is_err());
        let mut decoder = BodyDecoder::chunked();
        assert!(decoder.decode(&[b'1'; 2000], |_| {}).is_err());
    }

    #[test]
    fn a_chunk_split_across_reads_is_joined() -> Result<(), crate::Error> {
        let mut body = BodyDecoder::chunked();
        let mut out = Vec::new();
        body.decode(b"5\r\nhel", |part| out.extend_from_slice(part))?;
        body.decode(b"lo\r\n0\r\n\r\n", |part| out.extend_from_slice(part))?;
        assert_eq!(out, b"hello");
        assert!(body.is_done());
        Ok(())
    }
}
