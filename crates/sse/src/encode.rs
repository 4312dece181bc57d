//! The encoder: one [`Frame`] (or a [`comment`], or a [`retry`] hint) to the
//! exact bytes of a `text/event-stream` block.
//!
//! Wire format, following the WHATWG HTML "Server-sent events" section:
//!
//! - fields come in the order `id`, `event`, `retry`, then one `data` line
//!   per line of data, then a blank line that makes the browser dispatch;
//! - a field with a value is written `name: value`, with exactly one space
//!   after the colon, because the parser strips exactly one; so a value that
//!   starts with a space survives the trip;
//! - a field with an empty value is written `name:` with no trailing space;
//! - data is split on CRLF, lone CR and lone LF, and every line end is `\n`.
//!
//! Encoding runs once per published event and the resulting [`Bytes`] is
//! shared by every receiver, so the output length is computed first and the
//! buffer is allocated exactly once.

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;

/// One event to send: optional `id`, `event` type and `retry` hint, and the
/// data (required, may be empty).
///
/// A `Frame` borrows its strings; build it, [`encode`](Frame::encode) it,
/// and share the [`Bytes`].
///
/// # Examples
///
/// ```
/// use herald_sse::Frame;
///
/// let frame = Frame::new("hello\nworld").id("7")?.event("greeting")?.retry(1500);
/// assert_eq!(
///     &frame.encode()[..],
///     b"id: 7\nevent: greeting\nretry: 1500\ndata: hello\ndata: world\n\n",
/// );
/// # Ok::<(), herald_sse::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    id: Option<&'a str>,
    event_type: Option<&'a str>,
    retry: Option<u64>,
    data: &'a str,
}

impl<'a> Frame<'a> {
    /// Creates a frame carrying `data` and no other field.
    ///
    /// Data may hold any text: each of its lines (split on CRLF, CR or LF)
    /// becomes one `data` line. Empty data still yields one `data:` line, so
    /// that the browser dispatches the event.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::Frame;
    ///
    /// assert_eq!(&Frame::new("a\r\nb\rc").encode()[..], b"data: a\ndata: b\ndata: c\n\n");
    /// assert_eq!(&Frame::new("").encode()[..], b"data:\n\n");
    /// // A trailing line end gives a last, empty data line, so it round-trips.
    /// assert_eq!(&Frame::new("a\n").encode()[..], b"data: a\ndata:\n\n");
    /// ```
    pub fn new(data: &'a str) -> Self {
        Frame {
            id: None,
            event_type: None,
            retry: None,
            data,
        }
    }

    /// Sets the event id, which the browser keeps and sends back as
    /// `Last-Event-ID` when it reconnects.
    ///
    /// An empty id is allowed: it resets the browser's last event id.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::Frame;
    ///
    /// assert_eq!(&Frame::new("x").id("42")?.encode()[..], b"id: 42\ndata: x\n\n");
    /// assert_eq!(&Frame::new("x").id("")?.encode()[..], b"id:\ndata: x\n\n");
    /// # Ok::<(), herald_sse::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] if `id` contains CR, LF or NUL: CR and LF would
    /// start a new field, and a browser ignores an id containing NUL.
    pub fn id(self, id: &'a str) -> Result<Self, Error> {
        if has_forbidden_char(id) {
            return Err(Error::InvalidId);
        }
        Ok(Frame {
            id: Some(id),
            ..self
        })
    }

    /// Sets the event type, which selects the browser listener
    /// (`addEventListener(type, ..)`).
    ///
    /// An empty type is allowed, and the browser reads it as `message`.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::Frame;
    ///
    /// let frame = Frame::new("x").event("update")?;
    /// assert_eq!(&frame.encode()[..], b"event: update\ndata: x\n\n");
    /// # Ok::<(), herald_sse::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEventType`] if `event_type` contains CR, LF or NUL.
    pub fn event(self, event_type: &'a str) -> Result<Self, Error> {
        if has_forbidden_char(event_type) {
            return Err(Error::InvalidEventType);
        }
        Ok(Frame {
            event_type: Some(event_type),
            ..self
        })
    }

    /// Sets the reconnection delay hint, in milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::Frame;
    ///
    /// assert_eq!(&Frame::new("x").retry(3000).encode()[..], b"retry: 3000\ndata: x\n\n");
    /// ```
    pub fn retry(self, ms: u64) -> Self {
        Frame {
            retry: Some(ms),
            ..self
        }
    }

    /// Encodes the frame into the bytes of one event block, ending with the
    /// blank line that dispatches it.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::Frame;
    ///
    /// let bytes = Frame::new(" padded").id("1")?.encode();
    /// assert_eq!(&bytes[..], b"id: 1\ndata:  padded\n\n");
    /// # Ok::<(), herald_sse::Error>(())
    /// ```
    pub fn encode(&self) -> Bytes {
        let len = self.encoded_len();
        let mut buf = BytesMut::with_capacity(len);
        if let Some(id) = self.id {
            put_field(&mut buf, "id", id);
        }
        if let Some(event_type) = self.event_type {
            put_field(&mut buf, "event", event_type);
        }
        if let Some(ms) = self.retry {
            put_retry(&mut buf, ms);
        }
        for line in lines(self.data) {
            put_field(&mut buf, "data", line);
        }
        buf.put_u8(b'\n');
        debug_assert_eq!(buf.len(), len, "encoded_len must be exact");
        buf.freeze()
    }

    /// The exact length of [`encode`](Frame::encode)'s output.
    fn encoded_len(&self) -> usize {
        let id = self.id.map_or(0, |id| field_len("id", id));
        let event_type = self.event_type.map_or(0, |t| field_len("event", t));
        let retry = self.retry.map_or(0, retry_len);
        let data: usize = lines(self.data).map(|line| field_len("data", line)).sum();
        id + event_type + retry + data + 1
    }
}

/// Encodes a comment: one `:` line per line of `text`, and no blank line.
///
/// Browsers ignore comments; a server sends them as heartbeats, to keep
/// proxies from closing an idle connection. The [`Parser`](crate::Parser)
/// reports them as [`Item::Comment`](crate::Item::Comment).
///
/// # Examples
///
/// ```
/// use herald_sse::comment;
///
/// assert_eq!(&comment("keep-alive")[..], b": keep-alive\n");
/// assert_eq!(&comment("")[..], b":\n");
/// assert_eq!(&comment("two\r\nlines")[..], b": two\n: lines\n");
/// ```
pub fn comment(text: &str) -> Bytes {
    let len: usize = lines(text).map(|line| field_len("", line)).sum();
    let mut buf = BytesMut::with_capacity(len);
    for line in lines(text) {
        put_field(&mut buf, "", line);
    }
    debug_assert_eq!(buf.len(), len, "comment length must be exact");
    buf.freeze()
}

/// Encodes a block carrying only a reconnection delay hint, in milliseconds.
///
/// The block ends with a blank line, but since it has no data the browser
/// only records the new delay and dispatches no event.
///
/// # Examples
///
/// ```
/// use herald_sse::retry;
///
/// assert_eq!(&retry(2500)[..], b"retry: 2500\n\n");
/// ```
pub fn retry(ms: u64) -> Bytes {
    let len = retry_len(ms) + 1;
    let mut buf = BytesMut::with_capacity(len);
    put_retry(&mut buf, ms);
    buf.put_u8(b'\n');
    buf.freeze()
}

/// Whether `value` contains a character that must never reach an `id` or
/// `event` line.
fn has_forbidden_char(value: &str) -> bool {
    value.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0'))
}

/// Length of `name: value\n` (or `name:\n` when `value` is empty).
fn field_len(name: &str, value: &str) -> usize {
    let value_len = if value.is_empty() { 0 } else { 1 + value.len() };
    name.len() + 1 + value_len + 1
}

fn put_field(buf: &mut BytesMut, name: &str, value: &str) {
    buf.put_slice(name.as_bytes());
    buf.put_u8(b':');
    if !value.is_empty() {
        buf.put_u8(b' ');
        buf.put_slice(value.as_bytes());
    }
    buf.put_u8(b'\n');
}

/// Length of `retry: N\n`.
fn retry_len(ms: u64) -> usize {
    let digits = ms.checked_ilog10().map_or(1, |log| log as usize + 1);
    "retry: ".len() + digits + 1
}

fn put_retry(buf: &mut BytesMut, ms: u64) {
    // u64::MAX has 20 decimal digits; formatting on the stack avoids the
    // `fmt` machinery and any temporary String.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = ms;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    buf.put_slice(b"retry: ");
    buf.put_slice(&digits[start..]);
    buf.put_u8(b'\n');
}

/// Splits `text` on CRLF, lone CR and lone LF, like the event stream parser
/// does. Always yields at least one (possibly empty) line, and a trailing
/// line end yields a final empty line.
fn lines(text: &str) -> Lines<'_> {
    Lines { rest: Some(text) }
}

#[derive(Debug)]
struct Lines<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        // A byte search: CR and LF never occur inside a multi-byte character.
        match memchr::memchr2(b'\r', b'\n', rest.as_bytes()) {
            Some(end) => {
                let next = if rest.as_bytes()[end..].starts_with(b"\r\n") {
                    end + 2
                } else {
                    end + 1
                };
                self.rest = Some(&rest[next..]);
                Some(&rest[..end])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn assert_encodes(bytes: Bytes, expected: &str) {
        assert_eq!(
            std::str::from_utf8(&bytes).expect("encoder writes UTF-8"),
            expected
        );
    }

    #[test]
    fn lines_split_on_crlf_cr_and_lf() {
        let split: Vec<_> = lines("a\r\nb\rc\nd").collect();
        assert_eq!(split, ["a", "b", "c", "d"]);
    }

    #[test]
    fn lines_count_crlf_once_but_lf_cr_twice() {
        assert_eq!(lines("a\r\n").collect::<Vec<_>>(), ["a", ""]);
        assert_eq!(lines("a\n\rb").collect::<Vec<_>>(), ["a", "", "b"]);
        assert_eq!(lines("\r\r\n").collect::<Vec<_>>(), ["", "", ""]);
    }

    #[test]
    fn lines_of_empty_text_is_one_empty_line() {
        assert_eq!(lines("").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn fields_come_in_id_event_retry_data_order() {
        let frame = Frame::new("d")
            .retry(5)
            .event("t")
            .and_then(|f| f.id("i"))
            .expect("valid fields");
        assert_encodes(frame.encode(), "id: i\nevent: t\nretry: 5\ndata: d\n\n");
    }

    #[test]
    fn data_splits_on_every_line_end() {
        assert_encodes(
            Frame::new("a\nb\r\nc\rd").encode(),
            "data: a\ndata: b\ndata: c\ndata: d\n\n",
        );
    }

    #[test]
    fn empty_data_still_yields_one_data_line() {
        assert_encodes(Frame::new("").encode(), "data:\n\n");
    }

    #[test]
    fn trailing_and_blank_data_lines_are_kept() {
        assert_encodes(Frame::new("a\n").encode(), "data: a\ndata:\n\n");
        assert_encodes(Frame::new("\n\n").encode(), "data:\ndata:\ndata:\n\n");
        assert_encodes(
            Frame::new("a\r\n\r\nb").encode(),
            "data: a\ndata:\ndata: b\n\n",
        );
    }

    #[test]
    fn leading_space_in_a_value_is_kept_after_the_separator_space() {
        let frame = Frame::new("  two").id(" one").expect("valid id");
        assert_encodes(frame.encode(), "id:  one\ndata:   two\n\n");
    }

    #[test]
    fn data_may_hold_colons_and_nul() {
        assert_encodes(Frame::new("a: b\0").encode(), "data: a: b\0\n\n");
    }

    #[test]
    fn empty_id_is_allowed_and_written_without_space() {
        let frame = Frame::new("x").id("").expect("empty id is valid");
        assert_encodes(frame.encode(), "id:\ndata: x\n\n");
    }

    #[test]
    fn id_injection_is_rejected() {
        for id in ["1\ndata: evil", "1\revent: x", "1\r\n", "a\0b", "\n"] {
            assert_eq!(Frame::new("x").id(id), Err(Error::InvalidId), "{id:?}");
        }
    }

    #[test]
    fn event_type_injection_is_rejected() {
        for event_type in ["a\nid: 9", "a\r", "a\r\n\r\n", "a\0"] {
            assert_eq!(
                Frame::new("x").event(event_type),
                Err(Error::InvalidEventType),
                "{event_type:?}"
            );
        }
    }

    #[test]
    fn retry_writes_the_full_u64_range() {
        assert_encodes(Frame::new("x").retry(0).encode(), "retry: 0\ndata: x\n\n");
        assert_encodes(retry(9), "retry: 9\n\n");
        assert_encodes(retry(10), "retry: 10\n\n");
        assert_encodes(retry(u64::MAX), "retry: 18446744073709551615\n\n");
    }

    #[test]
    fn comment_is_one_line_per_line_of_text() {
        assert_encodes(comment("ping"), ": ping\n");
        assert_encodes(comment(""), ":\n");
        assert_encodes(comment("a\nb\rc\r\n"), ": a\n: b\n: c\n:\n");
    }

    #[test]
    fn encoded_len_is_exact() {
        let frame = Frame::new("é\r\n\nx")
            .id("ü")
            .and_then(|f| f.event(""))
            .map(|f| f.retry(1_000))
            .expect("valid fields");
        let bytes = frame.encode();
        assert_eq!(bytes.len(), frame.encoded_len());
    }
}
