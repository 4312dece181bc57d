//! herald-client: publish to and subscribe from a Herald server over HTTP,
//! for Rust services.
//!
//! A [`Client`] publishes events ([`Client::publish`],
//! [`Client::publish_batch`]) and opens subscriptions
//! ([`Client::subscribe`]). A [`Subscription`] is a `Stream` of [`Item`]s
//! that does what a browser's `EventSource` does and a little more: it
//! reconnects by itself with jittered exponential backoff ([`Backoff`]),
//! honours the server's `retry:` hint, resumes with `Last-Event-ID` from the
//! last event seen, and surfaces Herald's control events as typed items:
//! [`Item::Connected`] with the connection id, [`Item::Reset`] when events
//! were lost. Errors keep the server's JSON error `code` and `message`, and
//! tell a server that could not be reached from one that refused
//! ([`Error`]).
//!
//! HTTP is [`reqwest`]'s (on hyper); the stream is parsed by
//! [`herald_sse::Parser`].
//!
//! # Layout
//!
//! - `client`: [`Client`] and [`ClientBuilder`] (token, timeouts, backoff),
//!   publishing.
//! - `draft`: [`Draft`], one event to publish.
//! - `subscription`: [`Subscription`], the reconnecting stream.
//! - `item`: what it yields: [`Item`], [`Event`].
//! - `backoff`: [`Backoff`], the wait between reconnects.
//! - `error`: [`Error`].
//!
//! `examples/consume.rs` is a service consuming a topic.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use herald_client::{Backoff, Client, Draft};
//! use serde_json::json;
//!
//! let client = Client::builder("http://127.0.0.1:8080")
//!     .token("a-jwt")
//!     .connect_timeout(Duration::from_secs(2))
//!     .backoff(Backoff::new(Duration::from_millis(500), Duration::from_secs(10)))
//!     .build()?;
//! assert_eq!(client.url("/publish"), "http://127.0.0.1:8080/publish");
//!
//! let draft = Draft::new("orders.created", json!({"id": 7})).with_user("alice");
//! assert_eq!(serde_json::to_value(&draft)?["user"], "alice");
//! // Publishing and subscribing need a running server:
//! // let id = client.publish(&draft).await?;
//! // let mut items = client.subscribe(["orders.*"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backoff;
mod client;
mod draft;
mod error;
mod item;
mod subscription;

pub use backoff::Backoff;
pub use client::{Client, ClientBuilder};
pub use draft::Draft;
pub use error::Error;
pub use item::{Event, Item};
pub use subscription::Subscription;
