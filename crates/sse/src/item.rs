//! What the [`Parser`](crate::Parser) reports: [`Item`]s, among them
//! dispatched [`Event`]s.

/// One thing the stream said: a dispatched event, a comment or a retry hint.
///
/// # Examples
///
/// ```
/// use herald_sse::{Item, Parser};
///
/// let items = Parser::new().feed(b": hi\nretry: 10\ndata: x\n\n")?;
/// assert_eq!(items[0], Item::Comment("hi".into()));
/// assert_eq!(items[1], Item::Retry(10));
/// assert!(matches!(&items[2], Item::Event(event) if event.data == "x"));
/// # Ok::<(), herald_sse::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A blank line ended a block that had data.
    Event(Event),
    /// A line starting with `:`; the text after it, with one leading space
    /// removed if present. Browsers ignore these; servers send them as
    /// heartbeats.
    Comment(String),
    /// A valid `retry` field: the new reconnection delay, in milliseconds.
    /// Reported when the line is read, not when the event is dispatched.
    Retry(u64),
}

/// A dispatched event, as a browser's `MessageEvent` would see it.
///
/// # Examples
///
/// ```
/// use herald_sse::{Event, Item, Parser};
///
/// let items = Parser::new().feed(b"id: 3\ndata: a\ndata: b\n\n")?;
/// let expected = Event {
///     event_type: "message".into(),
///     data: "a\nb".into(),
///     last_event_id: "3".into(),
/// };
/// assert_eq!(items, [Item::Event(expected)]);
/// # Ok::<(), herald_sse::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event` field, or `message` when it was absent or empty.
    pub event_type: String,
    /// The `data` lines joined with LF.
    pub data: String,
    /// The last `id` the stream set, in this block or an earlier one; empty
    /// if none.
    pub last_event_id: String,
}
