//! herald-sse: Server-Sent Events for Herald: the `text/event-stream` codec, a bus
//! subscriber as an SSE body, and the warp filters that serve one.
//!
//! Herald fans events out to browsers as Server-Sent Events. This crate
//! turns one event into the exact bytes of an event block, once per
//! published event, as a [`bytes::Bytes`] that every receiver shares; and it
//! parses such a stream back, incrementally and exactly as the WHATWG HTML
//! "interpreting an event stream" algorithm says a browser does, for test
//! clients and tools. The codec (`encode`, `parse`) knows nothing of topics,
//! audiences or HTTP; [`EventStream`] turns a `herald_bus` subscriber into the
//! frames of one stream, and `reply` is the only part that speaks HTTP, as
//! warp filters. The control events it sends (`herald.connected`,
//! `herald.reset`) are built by [`herald_bus::control`].
//!
//! # Layout
//!
//! - `encode`: [`Frame`] (id, event type, retry hint, data) and its
//!   [`encode`](Frame::encode), plus [`comment`] (heartbeats) and [`retry`].
//!   Refuses ids and event types that could inject fields.
//! - `parse`: the incremental [`Parser`]; chunks may split the input
//!   anywhere.
//! - `item`: what the parser reports: [`Item`] and [`Event`].
//! - `error`: [`Error`], for refused field values and parser limits.
//! - `stream`: [`EventStream`], a `herald_bus::Subscriber` as the bytes of an
//!   SSE body: first frame, one shared frame per event, resets, heartbeats.
//! - `reply`: the warp adapter: the [`resume`] filter (`Last-Event-ID` header
//!   or query) and [`reply`], an SSE response around any frame stream.
//!
//! See `examples/embedded.rs` for Herald inside an existing warp app.
//!
//! # Examples
//!
//! ```
//! use herald_sse::{Event, Frame, Item, Parser};
//!
//! let bytes = Frame::new("line one\nline two").id("42")?.event("update")?.encode();
//! assert_eq!(
//!     &bytes[..],
//!     b"id: 42\nevent: update\ndata: line one\ndata: line two\n\n",
//! );
//!
//! let mut parser = Parser::new();
//! let items = parser.feed(&bytes)?;
//! let expected = Event {
//!     event_type: "update".into(),
//!     data: "line one\nline two".into(),
//!     last_event_id: "42".into(),
//! };
//! assert_eq!(items, [Item::Event(expected)]);
//! # Ok::<(), herald_sse::Error>(())
//! ```

mod encode;
mod error;
mod item;
mod parse;
mod reply;
mod stream;

pub use encode::{Frame, comment, retry};
pub use error::Error;
/// The control event types, owned by [`herald_bus::control`].
pub use herald_bus::control::{CONNECTED, RESET};
pub use item::{Event, Item};
pub use parse::Parser;
pub use reply::{LAST_EVENT_ID_PARAMS, reply, resume, resume_from};
pub use stream::{EventStream, StreamOptions, encode, encode_event, encode_reset};
