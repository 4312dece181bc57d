//! The waiting and asserting half of [`SseClient`]: events, comments,
//! quiet periods and the end of the stream, each within a timeout.

use std::time::Duration;

use herald_bus::control::CONNECTED;
use herald_sse::{Event, Item};
use tokio::time::Instant;

use super::{Next, SseClient};

impl SseClient {
    /// The next event within `timeout`, skipping comments and retry hints.
    ///
    /// # Panics
    ///
    /// On timeout or at the end of the stream.
    #[track_caller]
    pub fn next_event(&mut self, timeout: Duration) -> impl Future<Output = Event> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.next_item_or_end(left).await {
                    Next::Item(Item::Event(event)) => return event,
                    Next::Item(_) => {}
                    Next::Timeout => {
                        panic!(
                            "{caller}: no SSE event within {timeout:?}; {}",
                            self.context()
                        )
                    }
                    Next::End => panic!("{caller}: SSE stream ended; {}", self.context()),
                }
            }
        }
    }

    /// The next `n` events, all within `timeout`.
    ///
    /// # Panics
    ///
    /// When fewer than `n` arrive in time; the message says how many did.
    pub async fn collect_events(&mut self, n: usize, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_item_or_end(left).await {
                Next::Item(Item::Event(event)) => events.push(event),
                Next::Item(_) => {}
                next => panic!(
                    "wanted {n} SSE events within {timeout:?}, got {} then {next:?}: {events:#?}; {}",
                    events.len(),
                    self.context()
                ),
            }
        }
        events
    }

    /// Takes the opening frame: skips retry hints and comments, requires a
    /// `herald.connected` event, and returns its `connection` id.
    ///
    /// # Panics
    ///
    /// When the first event is anything else or does not come in time.
    pub async fn expect_connected(&mut self, timeout: Duration) -> String {
        let event = self.next_event(timeout).await;
        assert_eq!(
            event.event_type, CONNECTED,
            "first event is not {CONNECTED}: {event:?}"
        );
        let data: serde_json::Value = serde_json::from_str(&event.data)
            .unwrap_or_else(|err| panic!("{CONNECTED} data is not JSON ({err}): {event:?}"));
        data["connection"]
            .as_str()
            .unwrap_or_else(|| panic!("{CONNECTED} data has no connection id: {event:?}"))
            .to_owned()
    }

    /// The next comment (e.g. a heartbeat) within `timeout`, skipping retry
    /// hints.
    ///
    /// # Panics
    ///
    /// On timeout, at the end, or when an event comes first.
    pub async fn next_comment(&mut self, timeout: Duration) -> String {
        match self.next_item_or_end(timeout).await {
            Next::Item(Item::Comment(text)) => text,
            Next::Item(Item::Retry(_)) => Box::pin(self.next_comment(timeout)).await,
            next => panic!("wanted an SSE comment, got {next:?}; {}", self.context()),
        }
    }

    /// Asserts that no event arrives for `quiet` (comments and retry hints
    /// may). The stream ending also fails: a closed stream is trivially
    /// quiet and would hide the bug.
    ///
    /// # Panics
    ///
    /// When an event arrives or the stream ends.
    pub async fn assert_quiet(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_item_or_end(left).await {
                Next::Timeout => return,
                Next::Item(Item::Event(event)) => {
                    panic!("expected no SSE event for {quiet:?}, got {event:?}")
                }
                Next::Item(_) => {}
                Next::End => panic!("SSE stream ended while expected quiet; {}", self.context()),
            }
        }
    }

    /// Reads until the stream ends within `timeout`; returns the items seen
    /// on the way.
    ///
    /// # Panics
    ///
    /// When the stream is still open after `timeout`.
    pub async fn expect_end(&mut self, timeout: Duration) -> Vec<Item> {
        let deadline = Instant::now() + timeout;
        let mut items = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_item_or_end(left).await {
                Next::Item(item) => items.push(item),
                Next::End => return items,
                Next::Timeout => panic!(
                    "SSE stream still open after {timeout:?}; items seen: {items:?}; {}",
                    self.context()
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::tests::serve;

    #[tokio::test]
    async fn reads_a_chunked_stream_item_by_item() {
        let addr = serve(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
              41\r\nretry: 2100\n\nevent: herald.connected\ndata: {\"connection\": \"c1\"}\n\n\r\n\
              B\r\n: heartbeat\r\n\
              C\r\n\nid: 7\ndata:\r\n4\r\n x\n\n\r\n0\r\n\r\n",
            false,
        )
        .await;
        let secs = Duration::from_secs;
        let mut client = SseClient::connect(addr, "/events?topic=a", &[])
            .await
            .unwrap();
        assert_eq!(client.status(), 200);
        assert_eq!(client.expect_connected(secs(5)).await, "c1");
        assert_eq!(client.retry_hint(), Some(2100));
        assert_eq!(client.next_comment(secs(5)).await, "heartbeat");
        let events = client.collect_events(1, secs(5)).await;
        assert_eq!(events[0].data, "x");
        assert_eq!(client.last_event_id(), "7");
        assert!(client.expect_end(secs(5)).await.is_empty());
        assert!(client.ended_cleanly());
        assert!(
            client
                .raw_bytes_seen()
                .starts_with(b"retry: 2100\n\nevent: herald.connected\n")
        );
    }

    #[tokio::test]
    async fn quiet_allows_comments() {
        let addr = serve(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n:hb\n\r\n",
            false,
        )
        .await;
        let mut client = SseClient::connect(addr, "/events", &[]).await.unwrap();
        client.assert_quiet(Duration::from_millis(100)).await;
        assert_eq!(client.body_text(), ":hb\n");
    }
}
