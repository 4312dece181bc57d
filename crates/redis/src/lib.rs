//! herald-redis: the shared, ordered event log of several `herald` nodes, on a Redis
//! Stream.
//!
//! [`RedisLog`] implements [`herald_bus::Log`]. Give it to
//! [`Bus::builder().log(..)`](herald_bus::Builder::log) on every node with the same key
//! prefix: a publish on any node gets one global id and reaches subscribers on every
//! node, in one order, and a `Last-Event-ID` from one node resumes on any other.
//!
//! # How it is stored
//!
//! - `{prefix}:seq` counts offsets; an event at offset `n` is the stream entry `n-1` in
//!   `{prefix}:log`, with fields `d` (the draft as JSON), `t` (append time, Redis's
//!   clock) and `p` (the topic).
//! - `{prefix}:epoch` names the log's life. Redis losing the keys (a restart without
//!   persistence, a flush) starts a new life with a new epoch, so older ids read as
//!   unknown, never as positions.
//! - `{prefix}:topics` counts retained entries per topic, for [`Log::retained`](herald_bus::Log::retained).
//! - `{prefix}:attempt:<id>` fences one append (a random id each): the append script
//!   runs only if the key is new and records its outcome there, so a node whose append
//!   got no reply can learn whether it ran, or cancel it for good (see
//!   [`RedisLog`](RedisLog#failures)). These keys expire by themselves after two minutes
//!   (ten call timeouts, if longer); each takes about 200 bytes while it lives (some
//!   24 MB at a steady 1,000 appends a second).
//! - Appends, reads, trims and settlings are Lua scripts, so each is atomic: a batch of
//!   drafts gets contiguous offsets and is stored whole or not at all.
//! - Each log follows the stream with `XREAD BLOCK` on a connection of its own and
//!   broadcasts entries to its tails; every other call shares one multiplexed
//!   connection and is bounded by [`RedisOptions::call_timeout`].
//!
//! # Running Redis for it
//!
//! - Persistence is optional. Without it, a Redis restart loses the log: every node
//!   moves to a new epoch and subscribers resuming from older ids get a reset.
//! - The keys must not be evicted: use `maxmemory-policy noeviction`. A log missing some
//!   of its keys starts a new life rather than reuse offsets; a `volatile-*` policy would
//!   spare the log's own keys (they have no TTL) but may evict attempt keys, which
//!   weakens the fencing of appends whose reply was lost.
//! - On Redis Cluster, put the prefix in braces (`{herald}`): the append script touches
//!   the log's four keys and its attempt key, which must share a slot.
//!
//! # Layout
//!
//! - `log`: [`RedisLog`], the [`Log`](herald_bus::Log) implementation.
//! - `options`: [`RedisOptions`] and its defaults.
//! - `tail`: the task that follows the stream and feeds [`Log::tail`](herald_bus::Log::tail).
//! - `script` and `lua/`: the scripts (append, read, trim, and settle for an append
//!   whose reply was lost) and the decoding of their replies.
//! - `shared`: what the handles and tasks share; the retention sweep.
//! - `client`: timed, counted calls on the shared connection.
//! - `error`: [`Error`], the source of every [`LogError`](herald_bus::LogError) it returns.
//! - `stats`: [`Stats`] for metrics.
//!
//! # Example
//!
//! Two nodes (here in one process) on one log: what one publishes, the other's
//! subscriber receives, under the same id.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use herald_bus::{Bus, Delivery, Draft, Selector, Subscription, Topic};
//! use herald_redis::{RedisLog, RedisOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = RedisOptions {
//!     key_prefix: "shop".into(),
//!     ..RedisOptions::new("redis://127.0.0.1:6379")
//! };
//! let node_a = Bus::builder().log(RedisLog::connect(options.clone()).await?).build();
//! let node_b = Bus::builder().log(RedisLog::connect(options).await?).build();
//!
//! let mut orders = node_a.subscribe(Subscription::new([Selector::new("orders.>")?]))?;
//! let id = node_b.publish(Draft::new(Topic::new("orders.created")?, "order 7")).await?;
//!
//! let Some(Delivery::Event(event)) = orders.next().await else { panic!("no event") };
//! assert_eq!((event.id(), event.data().as_str()), (id, "order 7"));
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod log;
mod options;
mod script;
mod shared;
mod stats;
mod tail;

pub use error::Error;
pub use log::RedisLog;
pub use options::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_KEY_PREFIX, DEFAULT_MAX_AGE, DEFAULT_MAX_LEN, DEFAULT_URL,
    RedisOptions,
};
pub use stats::Stats;
