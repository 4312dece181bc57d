//! The read rule every [`Log`](super::Log) follows, written once: where a read starts and
//! which [`Gap`] it reports ([`Start`]), and how far one read may scan before it stops
//! and says where ([`Scan`]).
//!
//! An implementation finds its own candidates (the in-memory log merges per-topic
//! histories, a shared log fetches a batch of entries) and hands each one to a [`Scan`];
//! the scan decides when the page is full and what the [`Page`] says.

use std::sync::Arc;

use super::{Gap, Page};
use crate::{Event, EventId};

/// A read scans at most this many entries per event it may return, so a subscriber whose
/// audience or selectors admit little of what is scanned cannot make one call walk the
/// whole history.
pub const SCAN_FACTOR: usize = 16;

/// Where a read starts in a log, and the gap it reports.
///
/// ```
/// use herald_bus::{EventId, Gap, log::Start};
///
/// // A log of epoch 7 whose newest offset is 10, having lost everything up to 4.
/// let start = |after| Start::new(after, 7, 10, 4);
/// let at = |s: Start| (s.after(), s.gap());
/// assert_eq!(at(start(Some(EventId::new(7, 6)))), (6, None));
/// assert_eq!(at(start(Some(EventId::new(7, 2)))), (4, Some(Gap::Expired)));
/// assert_eq!(at(start(Some(EventId::new(8, 6)))), (4, Some(Gap::UnknownPosition)));
/// assert_eq!(at(start(Some(EventId::new(7, 11)))), (4, Some(Gap::UnknownPosition)));
/// assert_eq!(at(start(None)), (4, None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    epoch: u64,
    head: u64,
    after: u64,
    gap: Option<Gap>,
}

impl Start {
    /// Where a read from `after` starts in a log of `epoch` whose newest offset is `head`,
    /// when `lost_upto` is the newest offset lost (dropped by retention) that the reader
    /// may have wanted, 0 if none.
    ///
    /// A position of another epoch or beyond the head is [`Gap::UnknownPosition`]; one
    /// before `lost_upto` is [`Gap::Expired`]. Either way, and when there is no position,
    /// the read starts after `lost_upto`, so what follows a reported gap has no other hole.
    pub fn new(after: Option<EventId>, epoch: u64, head: u64, lost_upto: u64) -> Self {
        let (after, gap) = match after {
            None => (lost_upto, None),
            Some(id) if id.epoch() != epoch || id.offset() > head => {
                (lost_upto, Some(Gap::UnknownPosition))
            }
            Some(id) if lost_upto > id.offset() => (lost_upto, Some(Gap::Expired)),
            Some(id) => (id.offset(), None),
        };
        Self {
            epoch,
            head,
            after,
            gap,
        }
    }

    /// The read returns events after this offset.
    pub fn after(&self) -> u64 {
        self.after
    }

    /// Set when events the reader may have wanted are missing after its position.
    pub fn gap(&self) -> Option<Gap> {
        self.gap
    }
}

/// One read in progress: the events it keeps, how many entries it scanned, and the
/// offset of the last one.
///
/// A read returns at most `limit` events and scans at most `limit` × [`SCAN_FACTOR`]
/// entries (or fewer, see [`Scan::cap`]), in log order. Before each entry, ask
/// [`Scan::is_full`]: when it is, the read stops there. [`Scan::page`] then says
/// [`Page::more`] and has the next read go on after the last entry scanned; when the
/// entries ran out, the page covers the log's head.
///
/// ```
/// use std::sync::Arc;
/// use herald_bus::{Draft, EventId, Topic, log::{Scan, Start}};
///
/// let start = Start::new(None, 1, 100, 0);
/// let mut scan = Scan::new(2);
/// let mut stopped = false;
/// for offset in start.after() + 1..=100 {
///     if scan.is_full() {
///         stopped = true;
///         break;
///     }
///     // Every third entry is one the reader may see.
///     let draft = Draft::new(Topic::new("t")?, "x");
///     let event = (offset % 3 == 0).then(|| Arc::new(draft.into_event(EventId::new(1, offset), 0)));
///     scan.push(offset, event);
/// }
/// let page = scan.page(&start, stopped);
/// assert_eq!(page.events.len(), 2);
/// assert_eq!((page.next, page.more), (EventId::new(1, 6), true));
/// # Ok::<(), herald_bus::NameError>(())
/// ```
#[derive(Debug)]
pub struct Scan {
    limit: usize,
    max_scan: usize,
    events: Vec<Arc<Event>>,
    scanned: usize,
    /// The offset of the last entry scanned.
    last: Option<u64>,
}

impl Scan {
    /// A read of at most `limit` events (at least 1).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            max_scan: limit.saturating_mul(SCAN_FACTOR),
            events: Vec::new(),
            scanned: 0,
            last: None,
        }
    }

    /// Scans at most `max_scan` entries (at least 1), for a log where each one costs more
    /// (a shared log sends every scanned entry over the network).
    pub fn cap(mut self, max_scan: usize) -> Self {
        self.max_scan = self.max_scan.min(max_scan.max(1));
        self
    }

    /// The most entries this read may scan: how many a log should fetch for it.
    pub fn budget(&self) -> usize {
        self.max_scan
    }

    /// Whether the read must stop before the next entry: it holds `limit` events, or it
    /// scanned its budget.
    pub fn is_full(&self) -> bool {
        self.events.len() == self.limit || self.scanned == self.max_scan
    }

    /// Counts the entry at `offset` as scanned, keeping `event` when the reader may see it.
    pub fn push(&mut self, offset: u64, event: Option<Arc<Event>>) {
        self.events.extend(event);
        self.scanned += 1;
        self.last = Some(offset);
    }

    /// The page of this read from `start`. `unfinished` says that entries may be left
    /// after the last one scanned: the read stopped because it [`is_full`](Scan::is_full),
    /// or its entries were one fetched batch of [`budget`](Scan::budget) entries. Then,
    /// unless the last one was the head, the page says [`Page::more`] and its
    /// [`Page::next`] is the last entry scanned; otherwise it covers the head.
    pub fn page(self, start: &Start, unfinished: bool) -> Page {
        let more = unfinished && self.last.is_some_and(|last| last < start.head);
        let next = match self.last {
            Some(last) if more => last,
            _ => start.head,
        };
        Page {
            events: self.events,
            next: EventId::new(start.epoch, next),
            more,
            gap: start.gap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Draft, Topic};

    fn event(offset: u64) -> Option<Arc<Event>> {
        let draft = Draft::new(Topic::new("t").unwrap(), "x");
        Some(Arc::new(draft.into_event(EventId::new(1, offset), 0)))
    }

    #[test]
    fn a_scan_stops_at_its_limit_or_its_budget() {
        let start = Start::new(None, 1, 50, 0);
        let mut scan = Scan::new(2);
        assert_eq!(scan.budget(), 2 * SCAN_FACTOR);
        scan.push(1, event(1));
        assert!(!scan.is_full());
        scan.push(2, event(2));
        assert!(scan.is_full(), "two events");

        let mut scan = Scan::new(2).cap(3);
        assert_eq!(scan.budget(), 3);
        for offset in 1..=3 {
            scan.push(offset, None);
        }
        assert!(scan.is_full(), "three entries scanned");
        let page = scan.page(&start, true);
        assert_eq!(
            (page.events.len(), page.next.offset(), page.more),
            (0, 3, true)
        );
    }

    #[test]
    fn a_page_covers_the_head_unless_entries_may_be_left() {
        let start = Start::new(Some(EventId::new(1, 10)), 1, 50, 0);
        let empty = Scan::new(5).page(&start, false);
        assert_eq!(
            (empty.next.offset(), empty.more, empty.gap),
            (50, false, None)
        );

        let mut scan = Scan::new(5);
        scan.push(11, None);
        let page = scan.page(&start, true);
        assert_eq!((page.next.offset(), page.more), (11, true));

        let mut scan = Scan::new(5);
        scan.push(11, event(11));
        let page = scan.page(&start, false);
        assert_eq!((page.next.offset(), page.more), (50, false), "ran out");

        let mut scan = Scan::new(5);
        scan.push(50, event(50));
        let page = scan.page(&start, true);
        assert_eq!(
            (page.events.len(), page.next.offset(), page.more),
            (1, 50, false),
            "the head was scanned"
        );
    }

    #[test]
    fn a_gap_comes_with_the_page() {
        let start = Start::new(Some(EventId::new(1, 2)), 1, 50, 9);
        assert_eq!((start.after(), start.gap()), (9, Some(Gap::Expired)));
        assert_eq!(Scan::new(1).page(&start, false).gap, Some(Gap::Expired));
    }
}
