//! herald-bus: in-process pub/sub of named topics, with wildcard selectors, user- and
//! connection-scoped audiences, ordered ids, bounded history and lossless resume.
//!
//! Business code publishes [`Draft`]s to [`Topic`]s on a [`Bus`] (the way a NestJS
//! service calls `EventEmitter2.emit`); subscribers ask for [`Selector`]s and receive a
//! [`Subscriber`] stream of [`Delivery`]s. There is no HTTP here: `herald-sse` serves a
//! subscriber as Server-Sent Events.
//!
//! # Guarantees
//!
//! - **Order.** Every event gets an [`EventId`] from one log; each subscriber receives
//!   what its selectors and audience admit in that order, each event at most once.
//! - **No silent loss.** A subscriber gets every admitted event, or a [`Reset`] before
//!   any newer one.
//! - **Resume.** [`Resume::After`] replays retained history after an id, then goes live,
//!   with no gap and no duplicate at the seam, across any number of topics.
//! - **Slow consumers** never block publishers or each other: a subscriber that overflows
//!   its buffer catches up from history, and only past retention gets a reset.
//! - **Audience.** A user-scoped event reaches only that user's subscribers, a
//!   connection-scoped one only that connection; nobody else is even woken.
//! - **Cleanup.** Dropping a [`Subscriber`] unregisters it at once; expired topics are
//!   freed.
//!
//! # Layout
//!
//! - [`topic`](Topic), [`selector`](Selector): validated names and NATS-style patterns.
//! - [`event`](Event): [`Draft`], [`Event`], [`EventName`], [`Data`].
//! - [`audience`](Audience): [`Audience`], [`UserId`], [`ConnectionId`].
//! - [`id`](EventId): ids as `(epoch, offset)`.
//! - [`control`]: Herald's own events (`herald.connected`, `herald.reset`), the reserved
//!   `herald.` prefix and their data bodies.
//! - [`log`]: the [`Log`] seam and the in-memory [`MemoryLog`].
//! - `bus`: the [`Bus`] handle and its dispatcher; `registry`, `trie`, `mailbox`: who
//!   receives what, and the bounded per-subscriber buffer.
//! - `subscriber`: [`Subscription`], [`Subscriber`], [`Delivery`], [`Reset`].
//!
//! # Example
//!
//! ```
//! use futures_util::StreamExt;
//! use herald_bus::{Audience, Bus, Delivery, Draft, Selector, Subscription, Topic, UserId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = Bus::new();
//! let alice = UserId::new("alice")?;
//! let mut inbox = bus.subscribe(
//!     Subscription::new([Selector::new("users.*.notifications")?]).with_user(alice.clone()),
//! )?;
//!
//! let topic = Topic::new("users.alice.notifications")?;
//! bus.publish(Draft::new(topic.clone(), "for bob").with_audience(Audience::User(UserId::new("bob")?))).await?;
//! bus.publish(Draft::new(topic, "for alice").with_audience(Audience::User(alice))).await?;
//!
//! let Some(Delivery::Event(event)) = inbox.next().await else { panic!() };
//! assert_eq!(event.data().as_str(), "for alice");
//! # Ok(())
//! # }
//! ```

mod audience;
mod bus;
pub mod control;
mod error;
mod event;
mod id;
pub mod log;
mod mailbox;
mod registry;
mod selector;
mod subscriber;
mod topic;
mod trie;

pub use audience::{Audience, ConnectionId, UserId};
pub use bus::{
    Builder, Bus, DEFAULT_MAX_EVENT_BYTES, DEFAULT_REPLAY_PAGE, DEFAULT_SUBSCRIBER_BUFFER, Metrics,
    Stats, SubscribeError, TopicStats,
};
pub use error::{IdError, LogError, NameError, PublishError};
pub use event::{Data, Draft, Event, EventName};
pub use id::EventId;
pub use log::{Filter, Gap, Log, MemoryLog, Page, Retention, Tail, TailItem};
pub use selector::Selector;
pub use subscriber::{Delivery, Reset, ResetReason, Resume, Subscriber, Subscription};
pub use topic::{MAX_NAME_LEN, Topic};
