//! Helpers for the integration tests: a private schema per test (dropped afterwards),
//! unique channel and source names, event assertions.

#![allow(dead_code, unreachable_pub)] // each test binary uses a part of this module

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use herald_bus::{Bus, Delivery, Event, Selector, Subscriber, Subscription, UserId};
use herald_postgres::{Ident, PgSourceHandle, TableName, tokio_postgres::Client};
use herald_testkit::services::{service_url, skip_or_fail};
use serde_json::Value;

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The test database: `HERALD_PG_URL`, default the local one.
pub fn pg_url() -> String {
    service_url("HERALD_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
}

/// A schema of the test's own, dropped (with everything in it) when this is dropped.
pub struct Db {
    pub url: String,
    pub client: Client,
    pub suffix: String,
    pub schema: String,
}

impl Db {
    /// Connects and creates the schema; `None` (after a loud skip) without PostgreSQL.
    #[track_caller]
    pub fn start() -> impl Future<Output = Option<Db>> {
        let caller = std::panic::Location::caller();
        async move {
            let url = pg_url();
            let client = match herald_postgres::connect(&url).await {
                Ok(client) => client,
                Err(err) => {
                    let mut reason = format!("{url}: {err}");
                    let mut source = std::error::Error::source(&err);
                    while let Some(cause) = source {
                        reason.push_str(&format!(": {cause}"));
                        source = cause.source();
                    }
                    skip_or_fail("postgres", format!("{reason} (at {caller})"));
                    return None;
                }
            };
            let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
            let schema = format!("herald_t_{suffix}");
            client
                .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
                .await
                .expect("create the test schema");
            Some(Db {
                url,
                client,
                suffix,
                schema,
            })
        }
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

    /// Runs SQL on the test's connection.
    pub async fn exec(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// One integer from a query.
    pub async fn count(&self, sql: &str) -> i64 {
        self.client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }

    /// Another connection, for concurrent writers.
    pub async fn connect(&self) -> Client {
        herald_postgres::connect(&self.url)
            .await
            .expect("another connection")
    }

    /// Kills the backends of source `name` (by its `application_name`); returns how many.
    pub async fn terminate(&self, name: &str) -> i64 {
        let row = self
            .client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&format!("herald:{name}")],
            )
            .await
            .expect("terminate");
        row.get(0)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Drop cannot await: clean up from a thread with a runtime of its own.
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                let client = herald_postgres::connect(&url)
                    .await
                    .expect("cleanup connection");
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .await
                    .expect("drop the test schema");
            });
        });
        let _ = cleanup.join();
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
