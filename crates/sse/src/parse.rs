//! The parser: bytes of a `text/event-stream` in, [`Item`]s out.
//!
//! It follows the WHATWG HTML "interpreting an event stream" algorithm
//! exactly, fed incrementally: chunks may split the input anywhere, including
//! inside a UTF-8 sequence or between the CR and LF of a CRLF.
//!
//! Raw bytes are buffered per line and decoded when the line ends. CR and LF
//! never occur inside a UTF-8 sequence, and an ASCII byte always ends a
//! broken one, so decoding each line with U+FFFD replacement gives the same
//! text as decoding the whole stream the way a browser does.

use std::mem;

use crate::{Error, Event, Item};

/// An incremental `text/event-stream` parser.
///
/// It keeps the pending line, the data, event type and last event id
/// buffers of the stream. Neither a line nor one event's data may exceed its
/// limit ([`Parser::DEFAULT_LIMIT`] unless set with
/// [`with_limit`](Parser::with_limit)), so a hostile server cannot make it
/// buffer without bound.
///
/// # Examples
///
/// ```
/// use herald_sse::{Item, Parser};
///
/// let mut parser = Parser::new();
/// assert_eq!(parser.feed(b"event: greet\r\ndata: hel")?, []);
/// let items = parser.feed(b"lo\r\n\r\n")?;
/// let Item::Event(event) = &items[0] else { panic!("expected an event") };
/// assert_eq!((event.event_type.as_str(), event.data.as_str()), ("greet", "hello"));
/// # Ok::<(), herald_sse::Error>(())
/// ```
#[derive(Debug)]
pub struct Parser {
    /// Raw bytes of a line that started in an earlier chunk.
    line: Vec<u8>,
    data: String,
    event_type: String,
    /// The spec's "last event ID buffer": set by `id`, kept across events.
    id_buffer: String,
    /// The event source's "last event ID string": copied from the buffer at
    /// each blank line, kept across streams.
    last_event_id: String,
    /// The previous byte was a CR, so a LF right after it is the same line end.
    after_cr: bool,
    /// No line has ended yet in this stream, so a BOM may still be skipped.
    at_start: bool,
    /// A field line was read since the last blank line.
    mid_event: bool,
    limit: usize,
    /// Set once a limit is exceeded; every later `feed` returns it.
    failed: Option<Error>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new()
    }
}

impl Parser {
    /// The default limit, in bytes, on one line and on one event's data:
    /// 1 MiB.
    pub const DEFAULT_LIMIT: usize = 1 << 20;

    /// Creates a parser at the start of a stream, with
    /// [`DEFAULT_LIMIT`](Parser::DEFAULT_LIMIT).
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::Parser;
    ///
    /// assert_eq!(Parser::new().limit(), Parser::DEFAULT_LIMIT);
    /// ```
    pub fn new() -> Self {
        Parser::with_limit(Parser::DEFAULT_LIMIT)
    }

    /// Creates a parser that allows lines of at most `limit` bytes (raw,
    /// without the line end) and event data of at most `limit` bytes
    /// (decoded, LFs between lines included).
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::{Error, Parser};
    ///
    /// let mut parser = Parser::with_limit(8);
    /// assert!(parser.feed(b"data: 12\n").is_ok());
    /// assert_eq!(parser.feed(b"data: 123\n"), Err(Error::LineTooLong { limit: 8 }));
    /// ```
    pub fn with_limit(limit: usize) -> Self {
        Parser {
            line: Vec::new(),
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            after_cr: false,
            at_start: true,
            mid_event: false,
            limit,
            failed: None,
        }
    }

    /// The limit, in bytes, on one line and on one event's data.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::Parser;
    ///
    /// assert_eq!(Parser::with_limit(64).limit(), 64);
    /// ```
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The last event id as of the last blank line: what a client sends as
    /// `Last-Event-ID` when it reconnects. Empty until a block sets one.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::Parser;
    ///
    /// let mut parser = Parser::new();
    /// parser.feed(b"id: 7\n")?;
    /// assert_eq!(parser.last_event_id(), "");
    /// // A blank line commits the id even when no event is dispatched.
    /// parser.feed(b"\n")?;
    /// assert_eq!(parser.last_event_id(), "7");
    /// # Ok::<(), herald_sse::Error>(())
    /// ```
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Parses the next chunk of the stream and returns the items it
    /// completed, in stream order.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::{Item, Parser};
    ///
    /// let mut parser = Parser::new();
    /// assert_eq!(parser.feed(b":ping\r")?, [Item::Comment("ping".into())]);
    /// // The LF completes the CRLF above; it is not a blank line.
    /// assert_eq!(parser.feed(b"\n")?, []);
    /// # Ok::<(), herald_sse::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::LineTooLong`] or [`Error::EventTooLarge`] when the input
    /// exceeds the [`limit`](Parser::limit). The items completed before that
    /// point are lost (use [`feed_into`](Parser::feed_into) to keep them),
    /// and the parser stays failed until [`finish`](Parser::finish).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        self.feed_into(chunk, &mut items)?;
        Ok(items)
    }

    /// Parses the next chunk of the stream, appending the items it completed
    /// to `items`.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::{Error, Item, Parser};
    ///
    /// let mut parser = Parser::with_limit(4);
    /// let mut items = Vec::new();
    /// let result = parser.feed_into(b":a\n:toolong\n", &mut items);
    /// assert_eq!(result, Err(Error::LineTooLong { limit: 4 }));
    /// assert_eq!(items, [Item::Comment("a".into())]);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`feed`](Parser::feed); items completed before the error stay in
    /// `items`.
    pub fn feed_into(&mut self, chunk: &[u8], items: &mut Vec<Item>) -> Result<(), Error> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.scan(chunk, items);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    /// Ends the stream: drops the pending line and any event not yet ended
    /// by a blank line, as the spec requires, and readies the parser for a
    /// new stream (after a reconnect). Keeps
    /// [`last_event_id`](Parser::last_event_id) and the limit, and clears a
    /// failure.
    ///
    /// Returns whether anything was dropped: a partial line, field lines
    /// without their blank line, or input refused for exceeding the limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_sse::Parser;
    ///
    /// let mut parser = Parser::new();
    /// assert_eq!(parser.feed(b"id: 1\ndata: lost\n")?, []);
    /// assert!(parser.finish());
    /// assert_eq!(parser.feed(b"data: next\n\n")?.len(), 1);
    /// assert!(!parser.finish());
    /// # Ok::<(), herald_sse::Error>(())
    /// ```
    pub fn finish(&mut self) -> bool {
        let dropped = self.mid_event || !self.line.is_empty() || self.failed.is_some();
        let last_event_id = mem::take(&mut self.last_event_id);
        *self = Parser {
            last_event_id,
            ..Parser::with_limit(self.limit)
        };
        dropped
    }

    fn scan(&mut self, chunk: &[u8], items: &mut Vec<Item>) -> Result<(), Error> {
        let mut rest = chunk;
        while let Some((&first, tail)) = rest.split_first() {
            if mem::take(&mut self.after_cr) && first == b'\n' {
                rest = tail;
                continue;
            }
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.check_line_len(rest.len())?;
                self.line.extend_from_slice(rest);
                return Ok(());
            };
            self.check_line_len(end)?;
            self.after_cr = rest[end] == b'\r';
            if self.line.is_empty() {
                self.line_ended(&rest[..end], items)?;
            } else {
                // Taken out and put back so its capacity is reused.
                let mut line = mem::take(&mut self.line);
                line.extend_from_slice(&rest[..end]);
                let result = self.line_ended(&line, items);
                line.clear();
                self.line = line;
                result?;
            }
            rest = &rest[end + 1..];
        }
        Ok(())
    }

    fn check_line_len(&self, more: usize) -> Result<(), Error> {
        if self.line.len().saturating_add(more) > self.limit {
            return Err(Error::LineTooLong { limit: self.limit });
        }
        Ok(())
    }

    fn line_ended(&mut self, mut raw: &[u8], items: &mut Vec<Item>) -> Result<(), Error> {
        if mem::take(&mut self.at_start) {
            raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        }
        let line = String::from_utf8_lossy(raw);
        if line.is_empty() {
            self.dispatch(items);
            return Ok(());
        }
        if let Some(text) = line.strip_prefix(':') {
            items.push(Item::Comment(strip_one_space(text).to_owned()));
            return Ok(());
        }
        self.mid_event = true;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, strip_one_space(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event_type),
            "data" => {
                if self.data.len().saturating_add(value.len() + 1) > self.limit {
                    return Err(Error::EventTooLarge { limit: self.limit });
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => value.clone_into(&mut self.id_buffer),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits too many for a u64 are ignored, as Chromium does.
                if let Ok(ms) = value.parse() {
                    items.push(Item::Retry(ms));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, items: &mut Vec<Item>) {
        self.mid_event = false;
        self.last_event_id.clone_from(&self.id_buffer);
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        self.data.pop();
        let event_type = match mem::take(&mut self.event_type) {
            empty if empty.is_empty() => "message".to_owned(),
            event_type => event_type,
        };
        items.push(Item::Event(Event {
            event_type,
            data: mem::take(&mut self.data),
            last_event_id: self.id_buffer.clone(),
        }));
    }
}

fn strip_one_space(value: &str) -> &str {
    value.strip_prefix(' ').unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds each chunk in turn and collects every item.
    fn parse_chunks(chunks: &[&[u8]]) -> Vec<Item> {
        let mut parser = Parser::new();
        let mut items = Vec::new();
        for chunk in chunks {
            parser.feed_into(chunk, &mut items).expect("within limits");
        }
        items
    }

    fn parse(input: &[u8]) -> Vec<Item> {
        parse_chunks(&[input])
    }

    fn event(event_type: &str, data: &str, last_event_id: &str) -> Item {
        Item::Event(Event {
            event_type: event_type.into(),
            data: data.into(),
            last_event_id: last_event_id.into(),
        })
    }

    fn message(data: &str) -> Item {
        event("message", data, "")
    }

    #[test]
    fn lf_cr_and_crlf_all_end_lines() {
        let expected = [message("a\nb"), message("c")];
        assert_eq!(parse(b"data: a\ndata: b\n\ndata: c\n\n"), expected);
        assert_eq!(parse(b"data: a\rdata: b\r\rdata: c\r\r"), expected);
        assert_eq!(
            parse(b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"),
            expected
        );
        assert_eq!(parse(b"data: a\ndata: b\r\rdata: c\r\n\n"), expected);
    }

    #[test]
    fn lf_then_cr_is_two_line_ends() {
        assert_eq!(parse(b"data: a\n\r"), [message("a")]);
    }

    #[test]
    fn cr_at_chunk_end_then_lf_is_one_line_end() {
        assert_eq!(parse_chunks(&[b"data: a\r", b"\n"]), []);
        assert_eq!(
            parse_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]),
            [message("a\nb")]
        );
        // An empty chunk between CR and LF changes nothing.
        assert_eq!(parse_chunks(&[b"data: a\r", b"", b"\n\n"]), [message("a")]);
    }

    #[test]
    fn bom_at_stream_start_is_skipped_once() {
        assert_eq!(parse(b"\xEF\xBB\xBFdata: a\n\n"), [message("a")]);
        assert_eq!(
            parse_chunks(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]),
            [message("a")]
        );
        // A second BOM is part of the field name, which is then unknown.
        assert_eq!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), []);
    }

    #[test]
    fn bom_after_stream_start_is_not_skipped() {
        assert_eq!(parse(b"\n\xEF\xBB\xBFdata: a\n\n"), []);
        assert_eq!(parse(b"data: \xEF\xBB\xBFa\n\n"), [message("\u{FEFF}a")]);
    }

    #[test]
    fn comments_are_reported_with_one_space_stripped() {
        assert_eq!(
            parse(b":\n: ping\n:  two\n:x: y\n"),
            [
                Item::Comment(String::new()),
                Item::Comment("ping".into()),
                Item::Comment(" two".into()),
                Item::Comment("x: y".into()),
            ]
        );
    }

    #[test]
    fn comments_inside_an_event_do_not_end_it() {
        assert_eq!(
            parse(b"data: a\n: hb\ndata: b\n\n"),
            [Item::Comment("hb".into()), message("a\nb")]
        );
    }

    #[test]
    fn data_value_loses_exactly_one_leading_space() {
        assert_eq!(parse(b"data:a\n\n"), [message("a")]);
        assert_eq!(parse(b"data: a\n\n"), [message("a")]);
        assert_eq!(parse(b"data:  a\n\n"), [message(" a")]);
        assert_eq!(parse(b"data:\ta\n\n"), [message("\ta")]);
        assert_eq!(parse(b"data: a: b\n\n"), [message("a: b")]);
    }

    #[test]
    fn field_without_colon_has_empty_value() {
        assert_eq!(parse(b"data\n\n"), [message("")]);
        assert_eq!(parse(b"data\ndata\n\n"), [message("\n")]);
        assert_eq!(parse(b"data\ndata: x\nevent\n\n"), [message("\nx")]);
    }

    #[test]
    fn field_names_are_case_sensitive_and_exact() {
        assert_eq!(parse(b"Data: a\n\n"), []);
        assert_eq!(parse(b"data : a\n\n"), []);
        assert_eq!(parse(b" data: a\n\n"), []);
        assert_eq!(parse(b"foo: a\ndata: b\n\n"), [message("b")]);
    }

    #[test]
    fn event_field_sets_the_type_and_resets_after_dispatch() {
        assert_eq!(
            parse(b"event: add\ndata: 1\n\ndata: 2\n\n"),
            [event("add", "1", ""), message("2")]
        );
        assert_eq!(parse(b"event:\ndata: 1\n\n"), [message("1")]);
        assert_eq!(
            parse(b"event: a\nevent: b\ndata: 1\n\n"),
            [event("b", "1", "")]
        );
    }

    #[test]
    fn block_without_data_dispatches_nothing_and_resets_the_type() {
        assert_eq!(parse(b"event: add\n\ndata: 1\n\n"), [message("1")]);
        assert_eq!(parse(b"\n\n\n"), []);
    }

    #[test]
    fn empty_data_line_dispatches_an_empty_event() {
        assert_eq!(parse(b"data:\n\n"), [message("")]);
        assert_eq!(parse(b"data: \n\n"), [message("")]);
    }

    #[test]
    fn only_one_trailing_lf_is_removed() {
        assert_eq!(parse(b"data: a\ndata:\n\n"), [message("a\n")]);
    }

    #[test]
    fn last_event_id_persists_across_events() {
        assert_eq!(
            parse(b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"),
            [
                event("message", "a", "1"),
                event("message", "b", "1"),
                message("c")
            ]
        );
    }

    #[test]
    fn id_applies_even_from_a_block_without_data() {
        let mut parser = Parser::new();
        assert_eq!(parser.feed(b"id: 5\n\n").expect("small"), []);
        assert_eq!(parser.last_event_id(), "5");
        assert_eq!(
            parser.feed(b"data: a\n\n").expect("small"),
            [event("message", "a", "5")]
        );
    }

    #[test]
    fn id_containing_nul_is_ignored() {
        assert_eq!(
            parse(b"id: 1\n\ndata: a\nid: 2\0x\n\n"),
            [event("message", "a", "1")]
        );
    }

    #[test]
    fn retry_needs_ascii_digits_only() {
        assert_eq!(parse(b"retry: 1500\n"), [Item::Retry(1500)]);
        assert_eq!(parse(b"retry:0\n"), [Item::Retry(0)]);
        assert_eq!(parse(b"retry:007\n"), [Item::Retry(7)]);
        for ignored in [
            &b"retry: 12a\n"[..],
            b"retry:\n",
            b"retry\n",
            b"retry: \n",
            b"retry:  12\n",
            b"retry: -1\n",
            b"retry: +1\n",
            b"retry: 1.5\n",
            b"retry: \xD9\xA1\n",
        ] {
            assert_eq!(parse(ignored), [], "{:?}", String::from_utf8_lossy(ignored));
        }
    }

    #[test]
    fn retry_too_large_for_u64_is_ignored() {
        assert_eq!(
            parse(b"retry: 18446744073709551615\n"),
            [Item::Retry(u64::MAX)]
        );
        assert_eq!(parse(b"retry: 18446744073709551616\n"), []);
        assert_eq!(
            parse(&[b"retry: ".as_slice(), &[b'9'; 5000], b"\n"].concat()),
            []
        );
    }

    #[test]
    fn incomplete_event_at_end_of_stream_is_dropped() {
        let mut parser = Parser::new();
        assert_eq!(
            parser.feed(b"data: a\n\ndata: b\n").expect("small"),
            [message("a")]
        );
        assert!(parser.finish());
        assert_eq!(parser.feed(b"\n").expect("small"), []);
    }

    #[test]
    fn finish_reports_a_partial_line_but_not_a_comment() {
        let mut parser = Parser::new();
        parser.feed(b"da").expect("small");
        assert!(parser.finish());
        parser.feed(b": hb\n").expect("small");
        assert!(!parser.finish());
    }

    #[test]
    fn finish_starts_a_new_stream_but_keeps_the_last_event_id() {
        let mut parser = Parser::new();
        parser
            .feed(b"id: 9\ndata: a\n\nid: 10\ndata: b\n\xEF")
            .expect("small");
        assert!(parser.finish());
        assert_eq!(parser.last_event_id(), "9");
        // The new stream may start with a BOM, and has its own id buffer.
        assert_eq!(
            parser.feed(b"\xEF\xBB\xBFdata: c\n\n").expect("small"),
            [message("c")]
        );
        assert_eq!(parser.last_event_id(), "");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(parse(b"data: a\xFFb\n\n"), [message("a\u{FFFD}b")]);
        // A truncated sequence is one U+FFFD, and the line end is kept.
        assert_eq!(
            parse(b"data: \xE2\x82\ndata: x\n\n"),
            [message("\u{FFFD}\nx")]
        );
        assert_eq!(parse(b"data: \xC0\x80\n\n"), [message("\u{FFFD}\u{FFFD}")]);
    }

    #[test]
    fn utf8_split_across_chunks_is_decoded() {
        assert_eq!(
            parse_chunks(&[b"data: \xE2", b"\x82", b"\xAC\n\n"]),
            [message("€")]
        );
        assert_eq!(
            parse_chunks(&[b"data: \xE2\x82", b"x\n\n"]),
            [message("\u{FFFD}x")]
        );
        assert_eq!(
            parse_chunks(&[b"data: \xF0\x9F", b"\x98\x80\xFF\n\n"]),
            [message("😀\u{FFFD}")]
        );
    }

    #[test]
    fn long_line_fails_even_without_a_line_end() {
        let mut parser = Parser::with_limit(10);
        parser.feed(b"data: 1234").expect("exactly at the limit");
        assert_eq!(parser.feed(b"5"), Err(Error::LineTooLong { limit: 10 }));
        // The parser stays failed until the stream is finished.
        assert_eq!(parser.feed(b"\n\n"), Err(Error::LineTooLong { limit: 10 }));
        assert!(parser.finish());
        assert_eq!(parser.feed(b"data: ok\n\n"), Ok(vec![message("ok")]));
    }

    #[test]
    fn large_event_data_fails() {
        let mut parser = Parser::with_limit(10);
        assert_eq!(parser.feed(b"data: 1234\ndata: 1234\n"), Ok(vec![]));
        assert_eq!(
            parser.feed(b"data: 1\n"),
            Err(Error::EventTooLarge { limit: 10 })
        );
    }

    #[test]
    fn byte_at_a_time_matches_whole_input() {
        let input =
            b"\xEF\xBB\xBF: hi\r\nid: 1\revent: e\ndata: \xC3\xA9\r\n\r\nretry: 5\n\ndata\r";
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(parse_chunks(&chunks), parse(input));
    }
}
