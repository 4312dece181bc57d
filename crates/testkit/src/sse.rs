//! An SSE client for tests: reqwest reads the response, [`herald_sse::Parser`]
//! parses the body, and every body byte the server sent is kept, so tests
//! can check the exact `text/event-stream` bytes.
//!
//! ```no_run
//! # async fn example(addr: std::net::SocketAddr) {
//! use std::time::Duration;
//! use herald_testkit::sse::{SseClient, events_path};
//!
//! let secs = Duration::from_secs;
//! let mut client = SseClient::connect(addr, &events_path(&["orders.*"]), &[]).await.unwrap();
//! assert_eq!(client.header("content-type"), Some("text/event-stream"));
//! client.expect_connected(secs(5)).await;
//! // ... publish something ...
//! let event = client.next_event(secs(5)).await;
//! client.assert_quiet(Duration::from_millis(200)).await;
//! # }
//! ```

use std::{collections::VecDeque, io, net::SocketAddr, time::Duration};

use futures_util::{StreamExt as _, stream::BoxStream};
use herald_sse::{Item, Parser};
use hyper::body::Bytes;
use tokio::time::Instant;

mod expect;

use crate::http::{self, Head};

/// How long [`SseClient::connect`] waits for the response head (and, for a
/// non-200 reply, its body).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`SseClient::next_item_or_end`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The next parsed item.
    Item(Item),
    /// Nothing within the timeout; the stream is still open.
    Timeout,
    /// The stream ended (see [`SseClient::ended_cleanly`]).
    End,
}

/// `/events?topic=SEL&topic=SEL…` with each selector percent-encoded.
pub fn events_path(selectors: &[&str]) -> String {
    let query: Vec<String> = selectors
        .iter()
        .map(|sel| format!("topic={}", percent_encode(sel)))
        .collect();
    format!("/events?{}", query.join("&"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One SSE connection, read item by item.
pub struct SseClient {
    /// The body of a 200 reply, until it ends.
    stream: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    head: Head,
    parser: Parser,
    pending: VecDeque<Item>,
    body: Vec<u8>,
    retry: Option<u64>,
    end: Option<bool>,
}

impl std::fmt::Debug for SseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseClient")
            .field("head", &self.head)
            .field("body_len", &self.body.len())
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl SseClient {
    /// Sends `GET path_and_query` on a fresh connection with
    /// `Accept: text/event-stream` (unless `headers` sets it) and `headers`,
    /// then reads the response head. For a non-200 reply it also reads the
    /// whole body (see [`body_text`](Self::body_text)).
    ///
    /// # Errors
    ///
    /// Connection or I/O failures, a malformed head, or `TimedOut` after
    /// `CONNECT_TIMEOUT`.
    pub async fn connect(
        addr: SocketAddr,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Self> {
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            Self::connect_now(addr, path_and_query, headers),
        )
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no response head for GET {path_and_query} within {CONNECT_TIMEOUT:?}"),
            ))
        })
    }

    async fn connect_now(
        addr: SocketAddr,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Self> {
        let mut request = http::client().get(format!("http://{addr}{path_and_query}"));
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("accept"))
        {
            request = request.header("accept", "text/event-stream");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.map_err(http::io_error)?;
        let head = Head::new(response.status(), response.headers());
        let mut client = Self {
            stream: None,
            head,
            parser: Parser::new(),
            pending: VecDeque::new(),
            body: Vec::new(),
            retry: None,
            end: None,
        };
        if client.head.status == 200 {
            client.stream = Some(response.bytes_stream().boxed());
        } else {
            client.body = response.bytes().await.map_err(http::io_error)?.to_vec();
            client.end = Some(true);
        }
        Ok(client)
    }

    /// The response status.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The first value of response header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The whole response head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The body bytes seen so far, de-chunked: the exact `text/event-stream`
    /// bytes for a 200, the whole error body otherwise.
    pub fn raw_bytes_seen(&self) -> &[u8] {
        &self.body
    }

    /// [`raw_bytes_seen`](Self::raw_bytes_seen) as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (for a non-200 reply).
    ///
    /// # Panics
    ///
    /// When the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        http::parse_json(self.status(), &self.body)
    }

    /// Asserts a Herald JSON error reply with this `status` and `code`,
    /// as [`Response::assert_error`](crate::http::Response::assert_error).
    ///
    /// # Panics
    ///
    /// When the reply differs.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        let content_type = self.header("content-type");
        http::assert_error_reply(self.status(), content_type, &self.body, status, code);
    }

    /// The last event id the stream set (what a browser would send back as
    /// `Last-Event-ID`); empty if none.
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The last `retry:` hint parsed, if any.
    pub fn retry_hint(&self) -> Option<u64> {
        self.retry
    }

    /// Whether the stream has ended as its framing says (the terminating
    /// chunk, or the full `Content-Length`), rather than by the connection
    /// dropping or breaking. False while the stream is open.
    pub fn ended_cleanly(&self) -> bool {
        self.end == Some(true)
    }

    /// The next item within `timeout`, or [`Next::Timeout`], or
    /// [`Next::End`] once the stream is over and every item was taken.
    ///
    /// # Panics
    ///
    /// When the parser refuses the stream.
    pub async fn next_item_or_end(&mut self, timeout: Duration) -> Next {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Next::Item(item);
            }
            let Some(stream) = self.stream.as_mut().filter(|_| self.end.is_none()) else {
                return Next::End;
            };
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Next::Timeout,
                Ok(Some(Ok(bytes))) => self.absorb(&bytes),
                Ok(end) => {
                    // hyper reports a body cut short (a dropped connection,
                    // bad chunking) as an error, a complete one as its end.
                    self.end = Some(end.is_none());
                    self.stream = None;
                }
            }
        }
    }

    fn absorb(&mut self, bytes: &[u8]) {
        let start = self.body.len();
        self.body.extend_from_slice(bytes);
        let mut items = Vec::new();
        if let Err(err) = self.parser.feed_into(&self.body[start..], &mut items) {
            panic!("SSE parser refused the stream: {err}; {}", self.context());
        }
        for item in &items {
            if let Item::Retry(ms) = item {
                self.retry = Some(*ms);
            }
        }
        self.pending.extend(items);
    }

    /// Text for panic messages: the tail of the body seen so far.
    fn context(&self) -> String {
        let tail = &self.body[self.body.len().saturating_sub(600)..];
        format!(
            "stream so far ends with {:?}",
            String::from_utf8_lossy(tail)
        )
    }

    /// The next item within `timeout`; `None` on timeout or at the end.
    pub async fn next_item(&mut self, timeout: Duration) -> Option<Item> {
        match self.next_item_or_end(timeout).await {
            Next::Item(item) => Some(item),
            Next::Timeout | Next::End => None,
        }
    }

    /// Closes the connection (the server should drop the subscriber).
    pub fn close(self) {
        drop(self);
    }
}
#[cfg(test)]
mod tests {
    use tokio::{io::AsyncWriteExt, net::TcpListener};

    use super::*;

    #[test]
    fn events_path_encodes_selectors() {
        assert_eq!(
            events_path(&["orders.*", "users.42.>", "a:b_c-d"]),
            "/events?topic=orders.%2A&topic=users.42.%3E&topic=a%3Ab_c-d"
        );
    }

    pub(super) async fn serve(reply: &'static [u8], close: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (seen, mut socket) = crate::canned::accept(&listener).await;
            let seen = seen.to_ascii_lowercase();
            assert!(seen.contains("accept: text/event-stream\r\n"), "{seen}");
            for piece in reply.chunks(7) {
                socket.write_all(piece).await.unwrap();
            }
            if !close {
                std::future::pending::<()>().await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_dropped_connection_is_an_unclean_end() {
        let addr = serve(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\ndata: a\n",
            true,
        )
        .await;
        let mut client = SseClient::connect(addr, "/events", &[]).await.unwrap();
        assert_eq!(
            client.next_item_or_end(Duration::from_secs(5)).await,
            Next::End
        );
        assert!(!client.ended_cleanly());
    }

    #[tokio::test]
    async fn keeps_an_error_reply() {
        let addr = serve(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n\
              {\"error\":{\"code\":\"bad_selector\",\"message\":\"a.>b\"}}",
            false,
        )
        .await;
        let mut client = SseClient::connect(addr, "/events?topic=a.%3Eb", &[])
            .await
            .unwrap();
        client.assert_error(400, "bad_selector");
        assert_eq!(
            client.next_item_or_end(Duration::from_secs(1)).await,
            Next::End
        );
    }
}
