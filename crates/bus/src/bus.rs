//! The [`Bus`] handle: publish, subscribe, statistics; and the dispatcher task that
//! fans the log's tail out to subscribers.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use futures_util::{StreamExt, stream::BoxStream};
use tokio::task::JoinHandle;

use crate::{
    EventId, Subscriber, Subscription, Topic,
    error::{LogError, PublishError},
    event::Draft,
    log::{Filter, Log, MemoryLog, Retention, TailItem},
    registry::{Registration, Registry},
};

/// Default limit on an event's size (data, topic and type): 64 KiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024;
/// Default number of live events a subscriber buffers before it lags and catches up from
/// history: a pointer each, so 8 KiB per subscriber when full.
pub const DEFAULT_SUBSCRIBER_BUFFER: usize = 1024;
/// Default number of events one history read returns.
pub const DEFAULT_REPLAY_PAGE: usize = 256;

/// A handle to an event bus: publish events to topics, subscribe with selectors.
///
/// Cloning is cheap and every clone is the same bus. The bus runs one dispatcher task on
/// the Tokio runtime it was built in; when the last handle is dropped the task stops and
/// every subscriber stream ends.
///
/// # Examples
///
/// ```
/// use futures_util::StreamExt;
/// use herald_bus::{Bus, Delivery, Draft, Selector, Subscription, Topic};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = Bus::new();
/// let mut orders = bus.subscribe(Subscription::new([Selector::new("orders.>")?]))?;
///
/// let id = bus.publish(Draft::new(Topic::new("orders.created")?, "order 7")).await?;
///
/// let Some(Delivery::Event(event)) = orders.next().await else { panic!("no event") };
/// assert_eq!((event.id(), event.data().as_str()), (id, "order 7"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Bus {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    log: Arc<dyn Log>,
    registry: Arc<Registry>,
    counters: Arc<Counters>,
    max_event_bytes: usize,
    subscriber_buffer: usize,
    replay_page: usize,
    dispatcher: JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.dispatcher.abort();
        self.registry.close();
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// A subscription needs at least one selector.
    #[error("a subscription needs at least one selector")]
    NoSelectors,
    /// The bus was closed.
    #[error("the bus is closed")]
    Closed,
}

/// Configures a [`Bus`].
#[derive(Debug)]
pub struct Builder {
    log: Option<Arc<dyn Log>>,
    retention: Retention,
    max_event_bytes: usize,
    subscriber_buffer: usize,
    replay_page: usize,
}

impl Builder {
    /// Uses `log` instead of a new [`MemoryLog`].
    pub fn log(mut self, log: impl Log) -> Self {
        self.log = Some(Arc::new(log));
        self
    }

    /// History kept per topic by the default [`MemoryLog`] (ignored with [`Builder::log`]).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Largest event accepted, in bytes of data, topic and type.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes;
        self
    }

    /// Live events a subscriber buffers before it lags (at least 1).
    pub fn subscriber_buffer(mut self, events: usize) -> Self {
        self.subscriber_buffer = events.max(1);
        self
    }

    /// Events one history read returns (at least 1): bounds the memory and the time of
    /// one step of a resume.
    pub fn replay_page(mut self, events: usize) -> Self {
        self.replay_page = events.max(1);
        self
    }

    /// Builds the bus and starts its dispatcher.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn build(self) -> Bus {
        let log = self
            .log
            .unwrap_or_else(|| Arc::new(MemoryLog::new(self.retention)));
        let tail = log.tail();
        let registry = Arc::new(Registry::new(tail.start));
        let dispatcher = tokio::spawn(dispatch(Arc::clone(&registry), tail.items));
        Bus {
            shared: Arc::new(Shared {
                log,
                registry,
                counters: Arc::default(),
                max_event_bytes: self.max_event_bytes,
                subscriber_buffer: self.subscriber_buffer,
                replay_page: self.replay_page,
                dispatcher,
            }),
        }
    }
}

/// Most tailed events the dispatcher hands to the registry at once.
const DISPATCH_BATCH: usize = 256;

/// Fans every tailed event out to the registry, in log order, until the log ends.
///
/// Events that are ready together are dispatched together (up to [`DISPATCH_BATCH`]),
/// so a burst costs each subscriber one mailbox lock per run of same-topic events.
async fn dispatch(registry: Arc<Registry>, items: BoxStream<'static, TailItem>) {
    let mut items = items.ready_chunks(DISPATCH_BATCH);
    let mut events = Vec::with_capacity(DISPATCH_BATCH);
    while let Some(chunk) = items.next().await {
        for item in chunk {
            match item {
                TailItem::Event(event) => events.push(event),
                TailItem::Lagged => {
                    registry.dispatch(&events);
                    events.clear();
                    tracing::warn!(
                        "dispatcher fell behind the log; subscribers catch up from history"
                    );
                    registry.lag_all();
                }
            }
        }
        registry.dispatch(&events);
        events.clear();
    }
    registry.close();
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    /// A bus on a [`MemoryLog`] with default settings.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A [`Builder`] with the defaults: in-memory log, [`Retention::default`],
    /// [`DEFAULT_MAX_EVENT_BYTES`], [`DEFAULT_SUBSCRIBER_BUFFER`], [`DEFAULT_REPLAY_PAGE`].
    pub fn builder() -> Builder {
        Builder {
            log: None,
            retention: Retention::default(),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            subscriber_buffer: DEFAULT_SUBSCRIBER_BUFFER,
            replay_page: DEFAULT_REPLAY_PAGE,
        }
    }

    /// Publishes one event and returns its id. Never waits for subscribers.
    ///
    /// # Errors
    ///
    /// [`PublishError::TooLarge`] over the size limit; [`PublishError::Log`] when the log
    /// cannot store it. A refused event is never delivered.
    pub async fn publish(&self, draft: Draft) -> Result<EventId, PublishError> {
        let ids = self.publish_batch(vec![draft]).await?;
        Ok(ids[0])
    }

    /// Publishes events atomically and in order: all get consecutive ids, or none is
    /// published.
    ///
    /// # Errors
    ///
    /// As [`Bus::publish`], plus [`PublishError::EmptyBatch`].
    pub async fn publish_batch(&self, drafts: Vec<Draft>) -> Result<Vec<EventId>, PublishError> {
        if drafts.is_empty() {
            return Err(PublishError::EmptyBatch);
        }
        let limit = self.shared.max_event_bytes;
        if let Some((index, size)) = drafts
            .iter()
            .map(Draft::size)
            .enumerate()
            .find(|&(_, s)| s > limit)
        {
            return Err(PublishError::TooLarge { index, size, limit });
        }
        // An in-memory append never waits, so a publishing loop would never yield and
        // could starve the dispatcher on its worker: give way when the task's budget is
        // spent.
        tokio::task::consume_budget().await;
        let events = self.shared.log.append(drafts).await?;
        self.shared
            .counters
            .published
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(events.iter().map(|e| e.id()).collect())
    }

    /// Subscribes. Every event published after this returns is delivered (or reported
    /// missing by a reset); with [`Resume::After`](crate::Resume::After) retained history comes first.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::NoSelectors`], or [`SubscribeError::Closed`] after
    /// [`Bus::close`].
    pub fn subscribe(&self, subscription: Subscription) -> Result<Subscriber, SubscribeError> {
        if subscription.selectors().is_empty() {
            return Err(SubscribeError::NoSelectors);
        }
        let (selectors, user, connection, resume) = subscription.into_parts();
        let filter = Arc::new(Filter::new(selectors, user, connection));
        let registry = &self.shared.registry;
        let (member, live_from) = registry
            .register(filter, self.shared.subscriber_buffer)
            .ok_or(SubscribeError::Closed)?;
        Ok(Subscriber::start(
            Registration::new(Arc::clone(registry), member),
            Arc::clone(&self.shared.log),
            Arc::clone(&self.shared.counters),
            live_from,
            resume,
            self.shared.replay_page,
        ))
    }

    /// Ends every subscriber stream and refuses new subscriptions; publishing still works.
    /// For graceful shutdown.
    pub fn close(&self) {
        self.shared.registry.close();
    }

    /// The size limit for one event, in bytes.
    pub fn max_event_bytes(&self) -> usize {
        self.shared.max_event_bytes
    }

    /// Running totals and the current subscriber count.
    pub fn metrics(&self) -> Metrics {
        let c = &self.shared.counters;
        Metrics {
            published: c.published.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            subscribers: self.shared.registry.subscribers(),
        }
    }

    /// Per-topic subscribers and retained events, for every topic held in memory.
    ///
    /// # Errors
    ///
    /// When the log cannot be reached.
    pub async fn stats(&self) -> Result<Stats, LogError> {
        let registry = &self.shared.registry;
        let mut retained: std::collections::HashMap<Topic, usize> =
            self.shared.log.retained().await?.into_iter().collect();
        for topic in registry.exact_topics() {
            retained.entry(topic).or_insert(0);
        }
        let mut topics: Vec<TopicStats> = retained
            .into_iter()
            .map(|(topic, retained)| TopicStats {
                subscribers: registry.subscribers_of(&topic),
                topic,
                retained,
            })
            .collect();
        topics.sort_by(|a, b| a.topic.cmp(&b.topic));
        Ok(Stats {
            subscribers: registry.subscribers(),
            topics,
        })
    }
}

/// Running totals of a bus, see [`Bus::metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Events published.
    pub published: u64,
    /// Events handed to subscribers (history included).
    pub delivered: u64,
    /// Reset notices handed to subscribers.
    pub resets: u64,
    /// Subscribers now.
    pub subscribers: usize,
}

/// A snapshot of a bus, see [`Bus::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Subscribers now.
    pub subscribers: usize,
    /// Every topic with retained events or an exact subscriber, by name.
    pub topics: Vec<TopicStats>,
}

/// One topic in [`Stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicStats {
    /// The topic.
    pub topic: Topic,
    /// Subscribers an event for everyone on it would reach (wildcards included).
    pub subscribers: usize,
    /// Events retained.
    pub retained: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    published: AtomicU64,
    delivered: AtomicU64,
    resets: AtomicU64,
}

impl Counters {
    pub(crate) fn delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }
}
