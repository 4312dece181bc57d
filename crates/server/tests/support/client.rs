//! Helpers for the tests of `herald-client` against the real binary.

use std::time::Duration;

use futures_util::StreamExt;
use herald_client::{Backoff, Client, Error, Event, Item, Subscription};

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// A client of `base` that reconnects quickly.
pub fn quick_client(base: &str) -> Client {
    Client::builder(base)
        .backoff(Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(500),
        ))
        .build()
        .expect("a valid base url")
}

/// The next item within [`WAIT`].
///
/// # Panics
///
/// On timeout, an error, or the end of the stream.
pub async fn next(sub: &mut Subscription) -> Item {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(item))) => item,
        Ok(Some(Err(err))) => panic!("subscription failed: {err}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no item within {WAIT:?}"),
    }
}

/// The next final error within [`WAIT`], skipping items.
pub async fn next_error(sub: &mut Subscription) -> Error {
    loop {
        match tokio::time::timeout(WAIT, sub.next()).await {
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(err))) => return err,
            Ok(None) => panic!("subscription ended without an error"),
            Err(_) => panic!("no error within {WAIT:?}"),
        }
    }
}

/// Waits for [`Item::Connected`], skipping nothing else; returns the connection id.
pub async fn connected(sub: &mut Subscription) -> String {
    match next(sub).await {
        Item::Connected { connection } => connection,
        other => panic!("expected connected, got {other:?}"),
    }
}

/// The next `n` events, skipping connect and disconnect notices; panics on a reset.
pub async fn events(sub: &mut Subscription, n: usize) -> Vec<Event> {
    let mut out = Vec::new();
    while out.len() < n {
        match next(sub).await {
            Item::Event(event) => out.push(event),
            Item::Connected { .. } | Item::Disconnected { .. } => {}
            other => panic!("expected an event, got {other:?} after {out:?}"),
        }
    }
    out
}

/// The data of each event.
pub fn data(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}
