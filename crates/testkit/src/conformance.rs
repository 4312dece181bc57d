//! The log conformance suite: behaviour every [`Log`] implementation must share, one
//! public function per rule.
//!
//! A log's test crate runs it with [`conformance_tests!`](crate::conformance_tests), which
//! expands to one `#[tokio::test]` per rule, named after the rule, so a failure names the
//! rule it broke. It takes a [`Factory`]: an expression that makes fresh, empty logs with
//! a given retention (the in-memory log keeps it per topic; a shared log may apply it to
//! the whole stream, so these checks only rely on what both mean for one busy topic). A
//! closure `|retention| async move { … }` is a factory.
//!
//! ```no_run
//! // tests/memory_log.rs
//! use herald_bus::{MemoryLog, Retention};
//!
//! herald_testkit::conformance_tests!(|retention: Retention| async move { MemoryLog::new(retention) });
//! # fn main() {}
//! ```
//!
//! The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) among its
//! dev-dependencies.

use std::{future::Future, sync::Arc, time::Duration};

use futures_util::StreamExt;
use herald_bus::{
    Audience, ConnectionId, Draft, Event, EventId, Filter, Gap, Log, Retention, Selector, TailItem,
    Topic, UserId,
};

/// Makes the fresh, empty logs the rules run on.
///
/// A closure `Fn(Retention) -> impl Future<Output = impl Log>` is one. Implement it on a
/// type of your own for a log whose storage may be missing (return `None` after
/// reporting the skip with [`skip_or_fail`](crate::services::skip_or_fail)) or leaves
/// something to delete ([`Factory::cleanup`]).
pub trait Factory {
    /// The log it makes.
    type Log: Log;

    /// A fresh, empty log keeping `retention`; `None` when its storage cannot be
    /// reached and the skip was reported, which ends the rule's test.
    fn log(&self, retention: Retention) -> impl Future<Output = Option<Self::Log>>;

    /// Runs once after a rule passed: deletes what its logs left behind. Does nothing by
    /// default.
    fn cleanup(self) -> impl Future<Output = ()>
    where
        Self: Sized,
    {
        async {}
    }
}

impl<F, Fut, L> Factory for F
where
    F: Fn(Retention) -> Fut,
    Fut: Future<Output = L>,
    L: Log,
{
    type Log = L;

    async fn log(&self, retention: Retention) -> Option<L> {
        Some(self(retention).await)
    }
}

/// One `#[tokio::test]` per rule of the suite, each named after its rule and run on logs
/// from the [`Factory`] `$factory` (an expression, evaluated once per test).
///
/// ```no_run
/// herald_testkit::conformance_tests!(|retention: herald_bus::Retention| async move {
///     herald_bus::MemoryLog::new(retention)
/// });
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!(@rules $factory;
            appends_get_consecutive_ids,
            reads_return_admitted_events_in_order,
            reads_page_without_gaps_or_duplicates,
            reads_filter_by_audience,
            foreign_positions_are_reported,
            retention_drops_old_events_and_reports_a_gap,
            tail_follows_appends_in_order,
            concurrent_appends_are_totally_ordered,
            retained_counts_topics,
        );
    };
    (@rules $factory:expr; $($rule:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let factory = $factory;
                $crate::conformance::$rule(&factory).await;
                $crate::conformance::Factory::cleanup(factory).await;
            }
        )+
    };
}

fn draft(topic: &str, data: &str) -> Draft {
    Draft::new(Topic::new(topic).expect("test topics are valid"), data)
}

fn anyone(selectors: &[&str]) -> Filter {
    let selectors = selectors
        .iter()
        .map(|s| Selector::new(s).expect("test selectors are valid"))
        .collect();
    Filter::new(selectors, None, ConnectionId::random())
}

fn ids(events: &[Arc<Event>]) -> Vec<EventId> {
    events.iter().map(|e| e.id()).collect()
}

fn data(events: &[Arc<Event>]) -> Vec<&str> {
    events.iter().map(|e| e.data().as_str()).collect()
}

/// Ids of one append are consecutive, in draft order, after every earlier id.
pub async fn appends_get_consecutive_ids(factory: &impl Factory) {
    let Some(log) = factory.log(Retention::default()).await else {
        return;
    };
    let first = log.append(vec![draft("a", "1")]).await.expect("append");
    let batch = log
        .append(vec![draft("a", "2"), draft("b", "3"), draft("a", "4")])
        .await
        .expect("append");
    assert_eq!(data(&batch), ["2", "3", "4"], "a batch keeps its order");
    let epoch = first[0].id().epoch();
    let start = first[0].id().offset();
    let expected: Vec<EventId> = (1..=3).map(|i| EventId::new(epoch, start + i)).collect();
    assert_eq!(
        ids(&batch),
        expected,
        "a batch gets consecutive ids after the last append"
    );
}

/// A read returns exactly the events its selectors match, in log order, after the
/// position given.
pub async fn reads_return_admitted_events_in_order(factory: &impl Factory) {
    let Some(log) = factory.log(Retention::default()).await else {
        return;
    };
    let mut appended = Vec::new();
    for (i, topic) in [
        "orders.created",
        "orders.eu.created",
        "users.1",
        "orders.paid",
    ]
    .iter()
    .cycle()
    .take(12)
    .enumerate()
    {
        appended.extend(
            log.append(vec![draft(topic, &i.to_string())])
                .await
                .expect("append"),
        );
    }
    let page = log
        .read(None, &anyone(&["orders.*"]), 100)
        .await
        .expect("read");
    let want: Vec<EventId> = appended
        .iter()
        .filter(|e| matches!(e.topic().as_str(), "orders.created" | "orders.paid"))
        .map(|e| e.id())
        .collect();
    assert_eq!(
        ids(&page.events),
        want,
        "`orders.*` matches one segment, in log order"
    );
    assert!(!page.more && page.gap.is_none());
    assert_eq!(
        page.next,
        appended.last().expect("appended").id(),
        "a complete read covers the head"
    );

    let after = appended[5].id();
    let page = log
        .read(Some(after), &anyone(&[">"]), 100)
        .await
        .expect("read");
    assert_eq!(
        ids(&page.events),
        ids(&appended[6..]),
        "reads start strictly after the position"
    );
    let page = log
        .read(Some(appended[11].id()), &anyone(&[">"]), 100)
        .await
        .expect("read");
    assert!(
        page.events.is_empty() && !page.more && page.gap.is_none(),
        "nothing after the head"
    );
}

/// Reading page by page yields the same events as one big read.
pub async fn reads_page_without_gaps_or_duplicates(factory: &impl Factory) {
    let Some(log) = factory.log(Retention::default()).await else {
        return;
    };
    let topics = ["a.1", "a.2", "b", "a.3"];
    let mut drafts = Vec::new();
    for i in 0..200 {
        drafts.push(draft(topics[i % topics.len()], &i.to_string()));
    }
    log.append(drafts).await.expect("append");
    let filter = anyone(&["a.>"]);
    let whole = log.read(None, &filter, 1000).await.expect("read");
    let mut paged = Vec::new();
    let mut from = None;
    for _ in 0..1000 {
        let page = log.read(from, &filter, 7).await.expect("read");
        assert!(
            page.events.len() <= 7,
            "a page holds at most `limit` events"
        );
        paged.extend(page.events);
        from = Some(page.next);
        if !page.more {
            break;
        }
    }
    assert_eq!(
        ids(&paged),
        ids(&whole.events),
        "pages join without gap or duplicate"
    );
    assert_eq!(paged.len(), 150);
}

/// User- and connection-scoped events are read only by their audience.
pub async fn reads_filter_by_audience(factory: &impl Factory) {
    let Some(log) = factory.log(Retention::default()).await else {
        return;
    };
    let alice = UserId::new("alice").expect("valid");
    let conn = ConnectionId::random();
    log.append(vec![
        draft("t", "everyone"),
        draft("t", "alice").with_audience(Audience::User(alice.clone())),
        draft("t", "bob").with_audience(Audience::User(UserId::new("bob").expect("valid"))),
        draft("t", "conn").with_audience(Audience::Connection(conn)),
    ])
    .await
    .expect("append");
    let t = vec![Selector::new("t").expect("valid")];
    let read = |filter: Filter| {
        let log = &log;
        async move { log.read(None, &filter, 10).await.expect("read").events }
    };
    let as_alice = read(Filter::new(t.clone(), Some(alice), ConnectionId::random())).await;
    assert_eq!(data(&as_alice), ["everyone", "alice"]);
    let as_conn = read(Filter::new(t.clone(), None, conn)).await;
    assert_eq!(data(&as_conn), ["everyone", "conn"]);
    let as_nobody = read(Filter::new(t, None, ConnectionId::random())).await;
    assert_eq!(data(&as_nobody), ["everyone"]);
}

/// A position from another epoch, or beyond the head, is unknown: reported, and the read
/// starts from the oldest retained event.
pub async fn foreign_positions_are_reported(factory: &impl Factory) {
    let Some(log) = factory.log(Retention::default()).await else {
        return;
    };
    let events = log
        .append(vec![draft("t", "1"), draft("t", "2")])
        .await
        .expect("append");
    let head = events[1].id();
    let foreign = EventId::new(head.epoch().wrapping_add(1), head.offset());
    let future = EventId::new(head.epoch(), head.offset() + 10);
    for position in [foreign, future] {
        let page = log
            .read(Some(position), &anyone(&["t"]), 10)
            .await
            .expect("read");
        assert_eq!(
            page.gap,
            Some(Gap::UnknownPosition),
            "{position} is not a position of this log"
        );
        assert_eq!(
            ids(&page.events),
            ids(&events),
            "an unknown position reads from the oldest"
        );
    }
}

/// Count retention drops the oldest events of a busy topic; a read from before them
/// reports the gap, a read from after does not.
pub async fn retention_drops_old_events_and_reports_a_gap(factory: &impl Factory) {
    let retention = Retention {
        max_events: 5,
        max_age: Duration::from_secs(3600),
    };
    let Some(log) = factory.log(retention).await else {
        return;
    };
    let mut events = Vec::new();
    for i in 0..20 {
        events.extend(
            log.append(vec![draft("busy", &i.to_string())])
                .await
                .expect("append"),
        );
    }
    let page = log
        .read(Some(events[0].id()), &anyone(&["busy"]), 100)
        .await
        .expect("read");
    assert_eq!(
        page.gap,
        Some(Gap::Expired),
        "events after the position were dropped"
    );
    assert!(
        page.events.len() <= 5,
        "retention bounds history (kept {})",
        page.events.len()
    );
    assert_eq!(
        page.events.last().map(|e| e.id()),
        Some(events[19].id()),
        "the newest is kept"
    );
    let recent = log
        .read(Some(events[17].id()), &anyone(&["busy"]), 100)
        .await
        .expect("read");
    assert_eq!(
        (recent.gap, ids(&recent.events)),
        (None, ids(&events[18..]))
    );
}

/// A tail starts at the head and then yields every appended event in order.
pub async fn tail_follows_appends_in_order(factory: &impl Factory) {
    let Some(log) = factory.log(Retention::default()).await else {
        return;
    };
    let before = log
        .append(vec![draft("t", "before")])
        .await
        .expect("append");
    let tail = log.tail();
    assert_eq!(
        tail.start,
        before[0].id(),
        "a tail starts after the newest event"
    );
    let mut items = tail.items;
    let appended = log
        .append((0..50).map(|i| draft("t", &i.to_string())).collect())
        .await
        .expect("append");
    for want in &appended {
        let item = tokio::time::timeout(Duration::from_secs(5), items.next()).await;
        match item {
            Ok(Some(TailItem::Event(got))) => assert_eq!(got.id(), want.id(), "tail order"),
            other => panic!("expected event {}, got {other:?}", want.id()),
        }
    }
}

/// Appends racing from many tasks get unique, gapless ids; the tail carries them all in
/// id order.
pub async fn concurrent_appends_are_totally_ordered(factory: &impl Factory) {
    let Some(log) = factory.log(Retention::default()).await else {
        return;
    };
    let log = Arc::new(log);
    let mut items = log.tail().items;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..50 {
                    let batch = vec![
                        draft("c", &format!("{t}.{i}")),
                        draft("d", &format!("{t}.{i}")),
                    ];
                    let events = log.append(batch).await.expect("append");
                    assert_eq!(
                        events[1].id().offset(),
                        events[0].id().offset() + 1,
                        "a batch is contiguous"
                    );
                    mine.extend(events.iter().map(|e| e.id()));
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("append task"));
    }
    all.sort_by_key(|id| id.offset());
    let first = all[0].offset();
    for (i, id) in all.iter().enumerate() {
        assert_eq!(id.offset(), first + i as u64, "ids are unique and gapless");
    }
    for want in &all {
        match tokio::time::timeout(Duration::from_secs(5), items.next()).await {
            Ok(Some(TailItem::Event(got))) => assert_eq!(got.id(), *want, "tail order"),
            other => panic!("expected event {want}, got {other:?}"),
        }
    }
}

/// Retained counts name each topic with history.
pub async fn retained_counts_topics(factory: &impl Factory) {
    let Some(log) = factory.log(Retention::default()).await else {
        return;
    };
    log.append(vec![draft("x", "1"), draft("x", "2"), draft("y", "3")])
        .await
        .expect("append");
    let mut retained = log.retained().await.expect("retained");
    retained.sort();
    let names: Vec<(&str, usize)> = retained.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    assert_eq!(names, [("x", 2), ("y", 1)]);
}
