//! The in-memory log: per-topic bounded history in one process, the embedded default.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque},
    sync::{Arc, Mutex, Weak},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt;
use tokio::{sync::broadcast, time::Instant};

use super::{Filter, Log, Page, Scan, Start, Tail, TailItem};
use crate::{Event, EventId, Topic, error::LogError, event::Draft};

/// How much history each topic keeps.
///
/// ```
/// use std::time::Duration;
/// use herald_bus::Retention;
///
/// let r = Retention::default();
/// assert_eq!((r.max_events, r.max_age), (1000, Duration::from_secs(3600)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events kept per topic; older ones are dropped first.
    pub max_events: usize,
    /// Events older than this are dropped.
    pub max_age: Duration,
}

impl Retention {
    /// Default [`Retention::max_events`]: 1,000 events per topic.
    pub const DEFAULT_MAX_EVENTS: usize = 1000;
    /// Default [`Retention::max_age`]: one hour.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_events: Self::DEFAULT_MAX_EVENTS,
            max_age: Self::DEFAULT_MAX_AGE,
        }
    }
}

/// How many events the tail buffers for a slow dispatcher before it reports
/// [`TailItem::Lagged`]; a pointer each, so about 128 KiB.
const TAIL_CAPACITY: usize = 16 * 1024;

/// How many freed topics are remembered by name (with their last offset) so that a resume
/// across them is answered with a precise reset. Past this, the oldest are folded into one
/// conservative floor. About 100 bytes each.
const TOMBSTONES: usize = 10_000;

/// The in-memory [`Log`]: every topic keeps its newest events, bounded by a
/// [`Retention`], in one process.
///
/// Its epoch is drawn at random when it is created, so ids from before a restart are
/// answered with [`Gap::UnknownPosition`](super::Gap::UnknownPosition). Topics whose history has expired are freed by a
/// background sweep (when created inside a Tokio runtime) and on access. Cloning gives
/// another handle to the same log.
///
/// ```
/// use herald_bus::{Draft, Filter, Log, MemoryLog, Retention, Selector, Topic, ConnectionId};
///
/// # tokio_test_block(async {
/// let log = MemoryLog::new(Retention::default());
/// let events = log.append(vec![Draft::new(Topic::new("a.b")?, "hi")]).await?;
/// assert_eq!(events[0].id().offset(), 1);
///
/// let filter = Filter::new(vec![Selector::new("a.>")?], None, ConnectionId::random());
/// let page = log.read(None, &filter, 10).await?;
/// assert_eq!(page.events.len(), 1);
/// assert!(!page.more && page.gap.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryLog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    epoch: u64,
    retention: Retention,
    /// One lock for ids, history and the tail send, so the tail carries events in id
    /// order. Held only for in-memory work, never across an `.await`.
    state: Mutex<State>,
    tail: broadcast::Sender<Arc<Event>>,
}

#[derive(Debug, Default)]
struct State {
    head: u64,
    topics: HashMap<Topic, TopicLog>,
    tombstones: Tombstones,
}

#[derive(Debug, Default)]
struct TopicLog {
    events: VecDeque<(Instant, Arc<Event>)>,
    /// Highest offset dropped from this topic by retention (0 if none).
    dropped_upto: u64,
}

/// Freed topics and the last offset each had, so a resume from before it knows it missed
/// something.
#[derive(Debug, Default)]
struct Tombstones {
    last: HashMap<Topic, u64>,
    order: VecDeque<Topic>,
    /// Highest last offset of any tombstone forgotten for room: a resume from before it
    /// may have missed something on any topic.
    floor: u64,
}

impl MemoryLog {
    /// An empty log with a new random epoch.
    ///
    /// When called inside a Tokio runtime, it also starts a sweep that frees expired
    /// history; the sweep stops when the last handle is dropped.
    pub fn new(retention: Retention) -> Self {
        let (tail, _) = broadcast::channel(TAIL_CAPACITY);
        let shared = Arc::new(Shared {
            // Never 0, so a hand-written "0-N" id is always foreign.
            epoch: uuid::Uuid::new_v4().as_u64_pair().0.max(1),
            retention,
            state: Mutex::new(State::default()),
            tail,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep(Arc::downgrade(&shared)));
        }
        Self { shared }
    }

    /// This log's epoch.
    pub fn epoch(&self) -> u64 {
        self.shared.epoch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .expect("no code panics while holding the log lock")
    }
}

/// Frees expired history every second (or every `max_age`, if shorter) until the log is
/// dropped.
async fn sweep(shared: Weak<Shared>) {
    let period = match shared.upgrade() {
        Some(s) => s
            .retention
            .max_age
            .clamp(Duration::from_millis(10), Duration::from_secs(1)),
        None => return,
    };
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut state = shared
            .state
            .lock()
            .expect("no code panics while holding the log lock");
        let State {
            topics, tombstones, ..
        } = &mut *state;
        topics.retain(|topic, log| {
            log.expire(now, shared.retention.max_age);
            if log.events.is_empty() {
                tombstones.bury(topic.clone(), log.dropped_upto);
                false
            } else {
                true
            }
        });
    }
}

impl TopicLog {
    fn expire(&mut self, now: Instant, max_age: Duration) {
        while let Some((at, event)) = self.events.front() {
            if now.saturating_duration_since(*at) <= max_age {
                break;
            }
            self.dropped_upto = event.id().offset();
            self.events.pop_front();
        }
    }

    fn trim(&mut self, max_events: usize) {
        while self.events.len() > max_events {
            let (_, event) = self
                .events
                .pop_front()
                .expect("longer than max_events >= 0");
            self.dropped_upto = event.id().offset();
        }
    }
}

impl Tombstones {
    fn bury(&mut self, topic: Topic, last: u64) {
        if last == 0 {
            return;
        }
        if self.last.insert(topic.clone(), last).is_none() {
            self.order.push_back(topic);
        }
        while self.order.len() > TOMBSTONES {
            let oldest = self.order.pop_front().expect("longer than TOMBSTONES");
            if let Some(l) = self.last.remove(&oldest) {
                self.floor = self.floor.max(l);
            }
        }
    }

    /// Takes back the record of a topic that is used again. Its name stays in `order`
    /// until it comes up for eviction, where a missing entry is skipped.
    fn revive(&mut self, topic: &Topic) -> u64 {
        self.last.remove(topic).unwrap_or(0)
    }

    /// Newest offset lost on a freed topic `filter` matches (or forgotten, on any topic).
    fn lost_upto(&self, filter: &Filter) -> u64 {
        self.last
            .iter()
            .filter(|(t, _)| filter.matches(t))
            .map(|(_, &last)| last)
            .fold(self.floor, u64::max)
    }
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait::async_trait]
impl Log for MemoryLog {
    async fn append(&self, drafts: Vec<Draft>) -> Result<Vec<Arc<Event>>, LogError> {
        let (time_ms, now) = (now_ms(), Instant::now());
        let Retention {
            max_events,
            max_age,
        } = self.shared.retention;
        let mut out = Vec::with_capacity(drafts.len());
        let mut state = self.lock();
        let State {
            head,
            topics,
            tombstones,
        } = &mut *state;
        for draft in drafts {
            *head += 1;
            let event = Arc::new(draft.into_event(EventId::new(self.shared.epoch, *head), time_ms));
            let topic = event.topic();
            let log = match topics.get_mut(topic) {
                Some(log) => log,
                None => topics.entry(topic.clone()).or_insert_with(|| TopicLog {
                    events: VecDeque::new(),
                    dropped_upto: tombstones.revive(topic),
                }),
            };
            log.events.push_back((now, Arc::clone(&event)));
            log.trim(max_events);
            log.expire(now, max_age);
            // No receiver is fine: the bus has not started dispatching yet.
            let _ = self.shared.tail.send(Arc::clone(&event));
            out.push(event);
        }
        Ok(out)
    }

    async fn read(
        &self,
        after: Option<EventId>,
        filter: &Filter,
        limit: usize,
    ) -> Result<Page, LogError> {
        let epoch = self.shared.epoch;
        let now = Instant::now();
        let mut state = self.lock();
        let State {
            head,
            topics,
            tombstones,
        } = &mut *state;
        let head = *head;
        let max_age = self.shared.retention.max_age;
        let mut lists = Vec::new();
        // Newest offset lost by retention on a matching topic: a page that must report a
        // gap starts after it, so what follows a reset has no hole.
        let mut lost_upto = tombstones.lost_upto(filter);
        for (topic, log) in topics.iter_mut() {
            if filter.matches(topic) {
                log.expire(now, max_age);
                lost_upto = lost_upto.max(log.dropped_upto);
                lists.push(&log.events);
            }
        }
        let start = Start::new(after, epoch, head, lost_upto);

        // Merge the matching topics' histories by offset.
        let mut positions: Vec<usize> = lists
            .iter()
            .map(|l| l.partition_point(|(_, e)| e.id().offset() <= start.after()))
            .collect();
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = positions
            .iter()
            .enumerate()
            .filter_map(|(i, &p)| lists[i].get(p).map(|(_, e)| Reverse((e.id().offset(), i))))
            .collect();
        let mut scan = Scan::new(limit);
        while let Some(Reverse((offset, i))) = heap.pop() {
            if scan.is_full() {
                return Ok(scan.page(&start, true));
            }
            let event = &lists[i][positions[i]].1;
            let admitted = event
                .audience()
                .includes(filter.user(), filter.connection());
            scan.push(offset, admitted.then(|| Arc::clone(event)));
            positions[i] += 1;
            if let Some((_, e)) = lists[i].get(positions[i]) {
                heap.push(Reverse((e.id().offset(), i)));
            }
        }
        Ok(scan.page(&start, false))
    }

    fn tail(&self) -> Tail {
        // Subscribe under the lock so `start` and the first tailed event are adjacent.
        let state = self.lock();
        let receiver = self.shared.tail.subscribe();
        let start = EventId::new(self.shared.epoch, state.head);
        drop(state);
        let items = futures_util::stream::unfold(receiver, |mut receiver| async move {
            match receiver.recv().await {
                Ok(event) => Some((TailItem::Event(event), receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((TailItem::Lagged, receiver)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Tail {
            start,
            items: items.boxed(),
        }
    }

    async fn retained(&self) -> Result<Vec<(Topic, usize)>, LogError> {
        let now = Instant::now();
        let mut state = self.lock();
        Ok(state
            .topics
            .iter_mut()
            .filter_map(|(topic, log)| {
                log.expire(now, self.shared.retention.max_age);
                (!log.events.is_empty()).then(|| (topic.clone(), log.events.len()))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Audience, ConnectionId, Gap, Selector, UserId};

    fn draft(topic: &str, data: &str) -> Draft {
        Draft::new(Topic::new(topic).unwrap(), data)
    }

    fn filter(selectors: &[&str]) -> Filter {
        let selectors = selectors
            .iter()
            .map(|s| Selector::new(s).unwrap())
            .collect();
        Filter::new(selectors, None, ConnectionId::random())
    }

    fn offsets(page: &Page) -> Vec<u64> {
        page.events.iter().map(|e| e.id().offset()).collect()
    }

    #[tokio::test]
    async fn reads_merge_topics_in_offset_order() {
        let log = MemoryLog::new(Retention::default());
        for i in 0..6 {
            log.append(vec![draft(if i % 2 == 0 { "a.x" } else { "a.y" }, "d")])
                .await
                .unwrap();
        }
        log.append(vec![draft("b", "d")]).await.unwrap();
        let page = log.read(None, &filter(&["a.*"]), 100).await.unwrap();
        assert_eq!(offsets(&page), [1, 2, 3, 4, 5, 6]);
        assert_eq!((page.next.offset(), page.more), (7, false));

        let after = EventId::new(log.epoch(), 3);
        let page = log.read(Some(after), &filter(&["a.*"]), 2).await.unwrap();
        assert_eq!(
            (offsets(&page), page.next.offset(), page.more),
            (vec![4, 5], 5, true)
        );
    }

    #[tokio::test]
    async fn count_retention_reports_a_gap() {
        let log = MemoryLog::new(Retention {
            max_events: 2,
            ..Retention::default()
        });
        for _ in 0..5 {
            log.append(vec![draft("t", "d")]).await.unwrap();
        }
        let from = |offset| Some(EventId::new(log.epoch(), offset));
        let page = log.read(from(1), &filter(&["t"]), 10).await.unwrap();
        assert_eq!((offsets(&page), page.gap), (vec![4, 5], Some(Gap::Expired)));
        let page = log.read(from(3), &filter(&["t"]), 10).await.unwrap();
        assert_eq!((offsets(&page), page.gap), (vec![4, 5], None));
    }

    #[tokio::test]
    async fn foreign_or_future_positions_are_unknown() {
        let log = MemoryLog::new(Retention::default());
        log.append(vec![draft("t", "d")]).await.unwrap();
        for after in [
            EventId::new(log.epoch() ^ 1, 1),
            EventId::new(log.epoch(), 2),
        ] {
            let page = log.read(Some(after), &filter(&["t"]), 10).await.unwrap();
            assert_eq!(
                (offsets(&page), page.gap),
                (vec![1], Some(Gap::UnknownPosition))
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn age_retention_frees_topics_and_remembers_them() {
        let retention = Retention {
            max_age: Duration::from_secs(10),
            ..Retention::default()
        };
        let log = MemoryLog::new(retention);
        log.append(vec![draft("old", "d"), draft("other", "d")])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert!(log.retained().await.unwrap().is_empty());
        assert!(
            log.lock().topics.is_empty(),
            "the sweep frees expired topics"
        );

        let from_start = Some(EventId::new(log.epoch(), 0));
        let page = log.read(from_start, &filter(&["old"]), 10).await.unwrap();
        assert_eq!((page.events.len(), page.gap), (0, Some(Gap::Expired)));
        let from_one = Some(EventId::new(log.epoch(), 1));
        let page = log.read(from_one, &filter(&["old"]), 10).await.unwrap();
        assert_eq!(page.gap, None, "nothing on `old` after offset 1");
        let page = log.read(from_one, &filter(&["nothing"]), 10).await.unwrap();
        assert_eq!(page.gap, None);
    }

    #[tokio::test]
    async fn reads_respect_audiences() {
        let log = MemoryLog::new(Retention::default());
        let alice = UserId::new("alice").unwrap();
        let conn = ConnectionId::random();
        log.append(vec![
            draft("t", "all"),
            draft("t", "alice").with_audience(Audience::User(alice.clone())),
            draft("t", "bob").with_audience(Audience::User(UserId::new("bob").unwrap())),
            draft("t", "conn").with_audience(Audience::Connection(conn)),
        ])
        .await
        .unwrap();
        let sel = vec![Selector::new("t").unwrap()];
        let data = |page: Page| {
            page.events
                .iter()
                .map(|e| e.data().as_str().to_owned())
                .collect::<Vec<_>>()
        };
        let as_alice = Filter::new(sel.clone(), Some(alice), ConnectionId::random());
        assert_eq!(
            data(log.read(None, &as_alice, 10).await.unwrap()),
            ["all", "alice"]
        );
        let as_conn = Filter::new(sel, None, conn);
        assert_eq!(
            data(log.read(None, &as_conn, 10).await.unwrap()),
            ["all", "conn"]
        );
    }

    #[tokio::test]
    async fn a_read_scans_a_bounded_number_of_events() {
        let log = MemoryLog::new(Retention::default());
        let bob = Audience::User(UserId::new("bob").unwrap());
        let drafts = (0..100)
            .map(|_| draft("t", "x").with_audience(bob.clone()))
            .collect();
        log.append(drafts).await.unwrap();
        let page = log.read(None, &filter(&["t"]), 2).await.unwrap();
        assert_eq!(
            (page.events.len(), page.next.offset(), page.more),
            (0, 32, true)
        );
    }
}
