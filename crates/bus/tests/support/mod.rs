//! Helpers for the bus's integration tests.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a part of this module"
)]

use std::time::Duration;

use futures_util::StreamExt;
use herald_bus::{Bus, Delivery, Draft, EventId, Reset, Selector, Subscriber, Subscription, Topic};

pub fn topic(name: &str) -> Topic {
    Topic::new(name).expect("test topic is valid")
}

pub fn selectors(patterns: &[&str]) -> Vec<Selector> {
    patterns
        .iter()
        .map(|p| Selector::new(p).expect("test selector is valid"))
        .collect()
}

pub fn subscription(patterns: &[&str]) -> Subscription {
    Subscription::new(selectors(patterns))
}

pub async fn publish(bus: &Bus, topic_name: &str, data: &str) -> EventId {
    bus.publish(Draft::new(topic(topic_name), data))
        .await
        .expect("publish")
}

/// The next delivery, failing the test after 5 s.
pub async fn next(sub: &mut Subscriber) -> Delivery {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a delivery within 5 s")
        .expect("the stream is open")
}

/// The next delivery, which must be an event: returns (id, data).
pub async fn next_event(sub: &mut Subscriber) -> (EventId, String) {
    match next(sub).await {
        Delivery::Event(e) => (e.id(), e.data().as_str().to_owned()),
        Delivery::Reset(r) => panic!("expected an event, got {r:?}"),
    }
}

/// The next delivery, which must be a reset.
pub async fn next_reset(sub: &mut Subscriber) -> Reset {
    match next(sub).await {
        Delivery::Reset(r) => r,
        Delivery::Event(e) => panic!("expected a reset, got event {e:?}"),
    }
}

/// Asserts nothing arrives within 100 ms.
pub async fn assert_quiet(sub: &mut Subscriber) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
        panic!("expected nothing, got {item:?}");
    }
}

/// Data of the next `n` events.
pub async fn take_data(sub: &mut Subscriber, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_event(sub).await.1);
    }
    out
}

/// Waits until `cond` holds, polling every 10 ms, failing after 5 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}
