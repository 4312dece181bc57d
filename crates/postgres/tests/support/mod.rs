//! Helpers for the integration tests: a private schema per test (dropped afterwards),
//! unique channel and source names, event assertions.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a part of this module"
)]

use std::{
    ops::Deref,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use herald_bus::{Bus, Delivery, Event, Selector, Subscriber, Subscription, UserId};
use herald_postgres::{Ident, PgSourceHandle, TableName};
use herald_testkit::postgres::PgSchema;
use serde_json::Value;

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The test's schema ([`PgSchema`]), with the names these tests use.
pub struct Db(PgSchema);

impl Deref for Db {
    type Target = PgSchema;

    fn deref(&self) -> &PgSchema {
        &self.0
    }
}

impl Db {
    /// Connects and creates the schema; `None` (after a loud skip) without PostgreSQL.
    #[track_caller]
    pub fn start() -> impl Future<Output = Option<Db>> {
        let schema = PgSchema::start("herald_t");
        async move { schema.await.map(Db) }
    }

    /// `name` in the test's schema.
    pub fn table(&self, name: &str) -> TableName {
        TableName::parse(&format!("{}.{name}", self.schema)).expect("valid test table")
    }

    /// A channel (database-wide) unique to this test.
    pub fn channel(&self, name: &str) -> Ident {
        Ident::new(&format!("{name}_{}", self.suffix)).expect("valid channel")
    }

    /// A source name unique to this test (and its `application_name`).
    pub fn source_name(&self, name: &str) -> String {
        format!("{name}-{}", self.suffix)
    }
}

/// A subscriber to `db.>`, anonymous or as `user`.
pub fn subscribe(bus: &Bus, user: Option<&str>) -> Subscriber {
    let mut subscription = Subscription::new([Selector::new("db.>").expect("valid selector")]);
    if let Some(user) = user {
        subscription = subscription.with_user(UserId::new(user).expect("valid user"));
    }
    bus.subscribe(subscription).expect("subscribe")
}

/// The next event, within [`PATIENCE`].
pub async fn next_event(subscriber: &mut Subscriber) -> Arc<Event> {
    match tokio::time::timeout(PATIENCE, subscriber.next()).await {
        Ok(Some(Delivery::Event(event))) => event,
        Ok(other) => panic!("expected an event, got {other:?}"),
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

/// The next `n` events. Checks that the bus hands them out in id order, so a duplicate
/// the source published shows as a wrong key, not as an out-of-order id.
pub async fn next_events(subscriber: &mut Subscriber, n: usize) -> Vec<Arc<Event>> {
    let mut events: Vec<Arc<Event>> = Vec::with_capacity(n);
    for _ in 0..n {
        let event = next_event(subscriber).await;
        if let Some(last) = events.last() {
            assert!(
                event.id().offset() > last.id().offset(),
                "bus handed out {} after {}",
                event.id(),
                last.id()
            );
        }
        events.push(event);
    }
    events
}

/// Asserts that nothing arrives for `window`.
pub async fn assert_quiet(subscriber: &mut Subscriber, window: Duration) {
    if let Ok(delivery) = tokio::time::timeout(window, subscriber.next()).await {
        panic!("expected nothing, got {delivery:?}");
    }
}

/// An event's data as JSON.
pub fn data(event: &Arc<Event>) -> Value {
    event.data().to_json()
}

/// Waits until `check` holds, within [`PATIENCE`].
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the source is connected.
pub async fn connected(handle: &PgSourceHandle) {
    wait_until("the source to connect", || handle.status().connected).await;
}
