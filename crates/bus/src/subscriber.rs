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
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::{Stream, StreamExt, stream::BoxStream};

use crate::{
    ConnectionId, Event, EventId, Selector, UserId,
    bus::Counters,
    log::{Gap, Log},
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
/// `event: herald.reset`).
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
}

impl ResetReason {
    /// The reason as it goes on the wire: `retention` or `unknown_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retention => "retention",
            Self::UnknownId => "unknown_id",
        }
    }
}

/// A live subscription: a [`Stream`] of [`Delivery`] in bus order.
///
/// Dropping it unsubscribes at once. The stream ends when the bus is closed or dropped.
pub struct Subscriber {
    connection: ConnectionId,
    deliveries: BoxStream<'static, Delivery>,
}

impl Subscriber {
    /// The connection id it was registered with.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }

    pub(crate) fn start(
        registration: Registration,
        log: Arc<dyn Log>,
        counters: Arc<Counters>,
        live_from: EventId,
        resume: Resume,
        page_size: usize,
    ) -> Self {
        let connection = registration.member.filter.connection();
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
        let state = State {
            registration,
            log,
            counters,
            cursor,
            mode,
            pending,
            batch: VecDeque::new(),
            page_size,
        };
        let deliveries = futures_util::stream::unfold(state, |mut state| async move {
            let delivery = state.next().await?;
            Some((delivery, state))
        });
        Self {
            connection,
            deliveries: deliveries.boxed(),
        }
    }
}

impl Stream for Subscriber {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.deliveries.poll_next_unpin(cx)
    }
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

enum Mode {
    /// Reading history after `from` (from the oldest retained when `None`).
    Replay { from: Option<EventId> },
    /// Handing out live events from the mailbox.
    Live,
}

struct State {
    registration: Registration,
    log: Arc<dyn Log>,
    counters: Arc<Counters>,
    /// Every event up to here was delivered or is not for this subscriber.
    cursor: EventId,
    mode: Mode,
    pending: VecDeque<Delivery>,
    batch: VecDeque<Arc<Event>>,
    page_size: usize,
}

/// Wait before reading history again after the log failed.
const RETRY_READ: Duration = Duration::from_millis(500);

impl State {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            if let Some(delivery) = self.pending.pop_front() {
                return Some(delivery);
            }
            match self.mode {
                Mode::Replay { from } => self.replay(from).await?,
                Mode::Live => self.live().await?,
            }
        }
    }

    /// Reads one page of history; `None` when the bus closed.
    async fn replay(&mut self, from: Option<EventId>) -> Option<()> {
        let member = &self.registration.member;
        if member.mailbox.is_closed() {
            return None;
        }
        let page = match self.log.read(from, &member.filter, self.page_size).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "history read failed; retrying");
                tokio::time::sleep(RETRY_READ).await;
                return Some(());
            }
        };
        if page.gap.is_some() && from.is_some() {
            let reason = match page.gap {
                Some(Gap::UnknownPosition) => ResetReason::UnknownId,
                _ => ResetReason::Retention,
            };
            let missed_since = from.map_or_else(String::new, |id| id.to_string());
            self.counters.reset();
            self.pending.push_back(Delivery::Reset(Reset {
                reason,
                missed_since,
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
        Some(())
    }

    /// Waits for live events; `None` when the bus closed.
    async fn live(&mut self) -> Option<()> {
        let lagged = match self.registration.member.mailbox.take(&mut self.batch).await {
            Take::Closed => return None,
            Take::Batch { lagged } => lagged,
        };
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
        Some(())
    }
}
