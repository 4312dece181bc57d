//! The ordered log behind a bus: the [`Log`] seam and the types it speaks.
//!
//! A log assigns ids, keeps bounded history, answers history reads, and streams every
//! appended event to the bus's dispatcher through its [`Tail`]. The in-memory log
//! ([`MemoryLog`]) is the embedded default; a shared log (a Redis Stream) lets several
//! nodes serve one ordered stream. Every implementation follows the read rule of
//! [`scan`] ([`Start`], [`Scan`]) and runs the conformance suite in `herald-testkit`.

pub mod memory;
pub mod scan;

use std::{fmt, sync::Arc};

use futures_util::stream::BoxStream;

use crate::{ConnectionId, Event, EventId, Selector, Topic, UserId, error::LogError, event::Draft};

pub use memory::{MemoryLog, Retention};
pub use scan::{SCAN_FACTOR, Scan, Start};

/// The ordered, bounded event log a [`Bus`](crate::Bus) publishes into.
///
/// Ids are `(epoch, offset)`: offsets grow by one per appended event across all topics,
/// and the epoch changes whenever the log's history is lost (a restart of an in-memory
/// log, a wiped shared log), so old ids can be recognised as foreign.
#[async_trait::async_trait]
pub trait Log: Send + Sync + fmt::Debug + 'static {
    /// Appends `drafts` as one contiguous run in the given order, all or nothing, and
    /// returns the stored events.
    ///
    /// # Errors
    ///
    /// [`LogError::Unavailable`] when the storage cannot be reached; then nothing was
    /// appended and nothing will be delivered. [`LogError::OutcomeUnknown`] when the
    /// append was sent but its fate could not be learnt in time; a shared log should fence
    /// its appends so that this stays the exception (a publisher told "unavailable" must
    /// never see the event delivered later).
    async fn append(&self, drafts: Vec<Draft>) -> Result<Vec<Arc<Event>>, LogError>;

    /// Reads retained events that `filter` admits, in log order, after `after` (from the
    /// oldest retained event when `None`), at most `limit` of them.
    ///
    /// An implementation may stop early to bound the work of one call; it then says
    /// [`Page::more`] and where it stopped in [`Page::next`].
    ///
    /// When events the filter may admit were lost after `after` (or `after` is not a
    /// position of this log, or is `None`), the page starts after the newest lost one, so
    /// that everything from there on is complete: a reader that reports the
    /// [`Page::gap`] as a reset never hides a second hole behind it.
    ///
    /// # Errors
    ///
    /// [`LogError::Unavailable`] when the storage cannot be reached.
    async fn read(
        &self,
        after: Option<EventId>,
        filter: &Filter,
        limit: usize,
    ) -> Result<Page, LogError>;

    /// Starts following the log: every event appended from now on, in log order.
    fn tail(&self) -> Tail;

    /// Per topic, how many events are retained, for statistics.
    async fn retained(&self) -> Result<Vec<(Topic, usize)>, LogError>;
}

/// What a subscriber may see: its selectors and its identity.
#[derive(Debug, Clone)]
pub struct Filter {
    selectors: Vec<Selector>,
    user: Option<UserId>,
    connection: ConnectionId,
}

impl Filter {
    /// A filter for `selectors`, seen by `connection` authenticated as `user`.
    pub fn new(selectors: Vec<Selector>, user: Option<UserId>, connection: ConnectionId) -> Self {
        Self {
            selectors,
            user,
            connection,
        }
    }

    /// The selectors.
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&UserId> {
        self.user.as_ref()
    }

    /// The connection.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }

    /// Whether any selector matches `topic`.
    pub fn matches(&self, topic: &Topic) -> bool {
        self.selectors.iter().any(|s| s.matches(topic))
    }

    /// Whether the subscriber may receive `event`: a selector matches its topic and the
    /// subscriber belongs to its audience.
    pub fn admits(&self, event: &Event) -> bool {
        event
            .audience()
            .includes(self.user.as_ref(), self.connection)
            && self.matches(event.topic())
    }
}

/// One answer of [`Log::read`].
#[derive(Debug, Clone)]
pub struct Page {
    /// Admitted events, in log order.
    pub events: Vec<Arc<Event>>,
    /// The position this read covered: every admitted event up to it is in `events`.
    /// Pass it as `after` to read on.
    pub next: EventId,
    /// Whether reading again from `next` may return more.
    pub more: bool,
    /// Set when events the filter may have admitted are missing after `after`; the page
    /// then starts after the newest missing one.
    pub gap: Option<Gap>,
}

/// Why a read could not continue exactly from the requested position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// Events after the position were dropped by retention.
    Expired,
    /// The position is not from this life of the log (another epoch, or beyond its head);
    /// the page starts from the oldest event after which nothing was lost.
    UnknownPosition,
}

/// One item of a [`Tail`].
#[derive(Debug, Clone)]
pub enum TailItem {
    /// The next appended event.
    Event(Arc<Event>),
    /// The tail skipped events (its reader fell behind, or the storage connection was
    /// lost): whoever relies on it must re-read the log.
    Lagged,
}

/// A follower of a [`Log`]: where it starts, and the stream of what is appended after.
pub struct Tail {
    /// The newest event appended before the tail started (offset 0 if none).
    pub start: EventId,
    /// Every event appended after `start`, in log order. Ends when the log closes.
    pub items: BoxStream<'static, TailItem>,
}

impl fmt::Debug for Tail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tail")
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}
