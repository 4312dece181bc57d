//! Subscribing: what a subscriber asks for ([`Subscription`]), what it receives
//! ([`Delivery`]), and the [`Subscriber`] stream that joins history and live events.
//!
//! A subscriber is registered for live events *before* it reads any history, holds the
//! live events in its mailbox while it replays, and then hands them out skipping what
//! replay already covered. Because offsets order every event, "already covered" is one
//! comparison, whatever the number of topics: no gap and no duplicate at the seam.

use std::{
    collections::VecDeque,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::{Stream, future::BoxFuture, ready};

use crate::{
    ConnectionId, Event, EventId, Selector, UserId,
    bus::Counters,
    error::LogError,
    log::{Gap, Log, Page},
    mailbox::Take,
    registry::Registration,
};

/// What to subscribe to, as whom, and from where.
///
/// ```
/// use herald_bus::{Resume, Selector, Subscription, UserId};
///
/// let sub = Subscription::new([Selector::new("orders.>")?])
///     .with_user(UserId::new("42")?)
///     .with_resume(Resume::from_last_event_id("not-an-id"));
/// assert!(matches!(sub.resume(), Resume::Unknown(_)));
/// # Ok::<(), herald_bus::NameError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Subscription {
    selectors: Vec<Selector>,
    user: Option<UserId>,
    connection: Option<ConnectionId>,
    resume: Resume,
}

impl Subscription {
    /// A live subscription to `selectors`, anonymous, on a new connection.
    pub fn new(selectors: impl IntoIterator<Item = Selector>) -> Self {
        Self {
            selectors: selectors.into_iter().collect(),
            user: None,
            connection: None,
            resume: Resume::Live,
        }
    }

    /// Subscribes as `user`: user-scoped events for this user are delivered too.
    pub fn with_user(mut self, user: UserId) -> Self {
        self.user = Some(user);
        self
    }

    /// Uses `connection` as the connection id instead of a random one.
    pub fn with_connection(mut self, connection: ConnectionId) -> Self {
        self.connection = Some(connection);
        self
    }

    /// Where to start: live, or after an event id the client already has.
    pub fn with_resume(mut self, resume: Resume) -> Self {
        self.resume = resume;
        self
    }

    /// The selectors.
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// Where the subscription starts.
    pub fn resume(&self) -> &Resume {
        &self.resume
    }

    /// Takes it apart, drawing a connection id if none was given.
    pub(crate) fn into_parts(self) -> (Vec<Selector>, Option<UserId>, ConnectionId, Resume) {
        let connection = self.connection.unwrap_or_else(ConnectionId::random);
        (self.selectors, self.user, connection, self.resume)
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// With the next event published.
    Live,
    /// With the first retained event after this id (a client's `Last-Event-ID`).
    After(EventId),
    /// The client sent an id this bus cannot read: it gets a reset, then every retained
    /// event. Holds the id as sent, cut to 64 characters.
    Unknown(String),
}

impl Resume {
    /// Reads a client's `Last-Event-ID`; an empty one means live, as for a fresh
    /// `EventSource`.
    ///
    /// ```
    /// use herald_bus::{EventId, Resume};
    ///
    /// assert_eq!(Resume::from_last_event_id(""), Resume::Live);
    /// assert_eq!(Resume::from_last_event_id("a-7"), Resume::After(EventId::new(10, 7)));
    /// assert_eq!(Resume::from_last_event_id("7"), Resume::Unknown("7".into()));
    /// ```
    pub fn from_last_event_id(text: &str) -> Self {
        if text.is_empty() {
            return Self::Live;
        }
        match text.parse() {
            Ok(id) => Self::After(id),
            Err(_) => Self::Unknown(text.chars().take(64).collect()),
        }
    }
}

/// One thing a subscriber receives.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// An event, in bus order.
    Event(Arc<Event>),
    /// Events may be missing before the next one: refetch state.
    Reset(Reset),
}

/// A notice that events were missed, sent before any newer event (SSE
/// `event: herald.reset`, whose data [`control::reset_data`](crate::control::reset_data)
/// writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    /// Why.
    pub reason: ResetReason,
    /// The position after which events may be missing, as the client knows it.
    pub missed_since: String,
}

/// Why a [`Reset`] was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetReason {
    /// Events after the position passed retention before they could be delivered.
    Retention,
    /// The position is not one of this bus's (from before a restart, or malformed).
    UnknownId,
    /// An ingress lost its source of changes for a while (a PostgreSQL source
    /// reconnected): changes made meanwhile never became events.
    SourceReconnected,
}

impl ResetReason {
    /// The reason as it goes on the wire: `retention`, `unknown_id` or
    /// `source_reconnected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retention => "retention",
            Self::UnknownId => "unknown_id",
            Self::SourceReconnected => "source_reconnected",
        }
    }
}

/// A live subscription: a [`Stream`] of [`Delivery`] in bus order.
///
/// Dropping it unsubscribes at once. The stream ends when the bus is closed or dropped.
pub struct Subscriber {
    registration: Registration,
    log: Arc<dyn Log>,
    counters: Arc<Counters>,
    /// Every event up to here was delivered or is not for this subscriber.
    cursor: EventId,
    mode: Mode,
    /// Deliveries ready to hand out, in order.
    pending: VecDeque<Delivery>,
    /// Scratch space the mailbox swaps its queue into.
    batch: VecDeque<Arc<Event>>,
    page_size: usize,
    /// A history read in flight.
    read: Option<BoxFuture<'static, Result<Page, LogError>>>,
    /// Waiting before retrying a failed history read.
    backoff: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

enum Mode {
    /// Reading history after `from` (from the oldest retained when `None`).
    Replay { from: Option<EventId> },
    /// Handing out live events from the mailbox.
    Live,
}

/// Wait before reading history again after the log failed.
const RETRY_READ: Duration = Duration::from_millis(500);

impl Subscriber {
    /// The connection id it was registered with.
    pub fn connection(&self) -> ConnectionId {
        self.registration.member.filter.connection()
    }

    pub(crate) fn start(
        registration: Registration,
        log: Arc<dyn Log>,
        counters: Arc<Counters>,
        live_from: EventId,
        resume: Resume,
        page_size: usize,
    ) -> Self {
        let (cursor, mode, pending) = match resume {
            Resume::Live => (live_from, Mode::Live, VecDeque::new()),
            Resume::After(id) => (id, Mode::Replay { from: Some(id) }, VecDeque::new()),
            Resume::Unknown(text) => {
                let reset = Reset {
                    reason: ResetReason::UnknownId,
                    missed_since: text,
                };
                counters.reset();
                (
                    live_from,
                    Mode::Replay { from: None },
                    VecDeque::from([Delivery::Reset(reset)]),
                )
            }
        };
        Self {
            registration,
            log,
            counters,
            cursor,
            mode,
            pending,
            batch: VecDeque::new(),
            page_size,
            read: None,
            backoff: None,
            done: false,
        }
    }

    /// Polls one step of history reading: `Ready` once a page was applied (or a failed
    /// read was waited out), `Pending` while the read is in flight.
    fn poll_replay(&mut self, cx: &mut Context<'_>, from: Option<EventId>) -> Poll<()> {
        if let Some(backoff) = &mut self.backoff {
            ready!(backoff.as_mut().poll(cx));
            self.backoff = None;
        }
        let read = self.read.get_or_insert_with(|| {
            let (log, filter, limit) = (
                Arc::clone(&self.log),
                Arc::clone(&self.registration.member.filter),
                self.page_size,
            );
            Box::pin(async move { log.read(from, &filter, limit).await })
        });
        let result = ready!(read.as_mut().poll(cx));
        self.read = None;
        match result {
            Ok(page) => self.apply(from, page),
            Err(error) => {
                tracing::warn!(%error, "history read failed; retrying");
                self.backoff = Some(Box::pin(tokio::time::sleep(RETRY_READ)));
            }
        }
        Poll::Ready(())
    }

    fn apply(&mut self, from: Option<EventId>, page: Page) {
        if let (Some(gap), Some(from)) = (page.gap, from) {
            let reason = match gap {
                Gap::UnknownPosition => ResetReason::UnknownId,
                _ => ResetReason::Retention,
            };
            self.counters.reset();
            self.pending.push_back(Delivery::Reset(Reset {
                reason,
                missed_since: from.to_string(),
            }));
        }
        self.counters.delivered(page.events.len() as u64);
        self.pending
            .extend(page.events.into_iter().map(Delivery::Event));
        self.cursor = page.next;
        self.mode = if page.more {
            Mode::Replay {
                from: Some(page.next),
            }
        } else {
            Mode::Live
        };
    }

    /// Takes the mailbox's events after the cursor; a lag, or an event from another
    /// log life, sends the subscriber back to reading history.
    fn absorb(&mut self, lagged: bool) {
        let (mut foreign, before) = (false, self.pending.len());
        for event in self.batch.drain(..) {
            let id = event.id();
            if id.epoch() != self.cursor.epoch() {
                // The log's history was lost and restarted: let a read sort it out.
                foreign = true;
                break;
            }
            if id.offset() > self.cursor.offset() {
                self.cursor = id;
                self.pending.push_back(Delivery::Event(event));
            }
        }
        self.batch.clear();
        self.counters
            .delivered((self.pending.len() - before) as u64);
        if lagged || foreign {
            self.mode = Mode::Replay {
                from: Some(self.cursor),
            };
        }
    }
}

impl Stream for Subscriber {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let this = &mut *self;
        loop {
            if let Some(delivery) = this.pending.pop_front() {
                return Poll::Ready(Some(delivery));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.mode {
                Mode::Replay { from } => {
                    if this.registration.member.mailbox.is_closed() {
                        this.done = true;
                        continue;
                    }
                    ready!(this.poll_replay(cx, from));
                }
                Mode::Live => match ready!(
                    this.registration
                        .member
                        .mailbox
                        .poll_take(cx, &mut this.batch)
                ) {
                    Take::Closed => this.done = true,
                    Take::Batch { lagged } => this.absorb(lagged),
                },
            }
        }
    }
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("connection", &self.connection())
            .field("cursor", &self.cursor)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}
