//! [`Subscription`]: a `Stream` of [`Item`]s that reconnects by itself and
//! resumes after the last event seen.
//!
//! One connection at a time: open `GET /events`, feed the body to
//! [`herald_sse::Parser`], and when the body ends, breaks, goes silent past
//! the idle timeout or cannot be opened, wait (see [`Backoff`](crate::Backoff)) and open
//! again with `Last-Event-ID`. Only a refusal (a 4xx answer: a bad
//! selector, a missing or expired token, a limit) ends the stream, because
//! asking again would get the same answer.

use std::{
    collections::VecDeque,
    fmt,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream::BoxStream};
use herald_sse::Parser;

use crate::{Error, Item, client::Shared, item};

/// The stream of one subscription; from [`Client::subscribe`](crate::Client::subscribe).
///
/// Yields `Ok` items in stream order: [`Item::Connected`] each time a
/// connection opens, [`Item::Event`]s, [`Item::Reset`] when events were
/// lost, [`Item::Disconnected`] before each reconnect. An `Err` is final:
/// the server refused the subscription ([`Error::Refused`]) and the stream
/// ends after it. Dropping the subscription closes its connection.
#[must_use = "a subscription does nothing until polled"]
pub struct Subscription {
    /// The options, until the first poll starts the stream.
    options: Option<State>,
    stream: Option<BoxStream<'static, Result<Item, Error>>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("started", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(shared: Arc<Shared>, selectors: Vec<String>) -> Self {
        Subscription {
            options: Some(State {
                shared,
                selectors,
                user: None,
                last_id: None,
                parser: Parser::new(),
                pending: VecDeque::new(),
                body: None,
                hint: None,
                failures: 0,
                wait: None,
                done: false,
            }),
            stream: None,
        }
    }

    /// Resumes after event `id` (sent as `Last-Event-ID` on the first
    /// connection): the server replays what came after it, or starts with a
    /// [`Item::Reset`] when it no longer can. Has no effect once polled.
    pub fn with_last_event_id(mut self, id: impl Into<String>) -> Self {
        if let Some(state) = &mut self.options {
            state.last_id = Some(id.into()).filter(|id| !id.is_empty());
        }
        self
    }

    /// Subscribes as `user` (`?user=`), to receive events scoped to them.
    /// Auth mode `none` only; in jwt mode the token says who the user is,
    /// and the server refuses this. Has no effect once polled.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        if let Some(state) = &mut self.options {
            state.user = Some(user.into());
        }
        self
    }
}

impl Stream for Subscription {
    type Item = Result<Item, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let stream = this.stream.get_or_insert_with(|| {
            let state = this
                .options
                .take()
                .expect("options are kept until the first poll");
            futures_util::stream::unfold(state, |mut state| async move {
                let item = state.next().await?;
                Some((item, state))
            })
            .boxed()
        });
        stream.poll_next_unpin(cx)
    }
}

/// Everything one subscription keeps between connections.
struct State {
    shared: Arc<Shared>,
    selectors: Vec<String>,
    user: Option<String>,
    /// The id of the last event seen: what a reconnect sends back.
    last_id: Option<String>,
    parser: Parser,
    /// Items parsed but not yet yielded.
    pending: VecDeque<Item>,
    /// The body of the open connection.
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    /// The server's last `retry:` hint.
    hint: Option<Duration>,
    /// Failed attempts since the last connection that opened.
    failures: u32,
    /// The wait before the next attempt.
    wait: Option<Duration>,
    /// Refused: nothing more to yield.
    done: bool,
}

/// Why a connection could not be opened.
enum OpenError {
    /// For good: the server refused.
    Refused(Error),
    /// For now: try again later.
    Failed(String),
}

impl State {
    async fn next(&mut self) -> Option<Result<Item, Error>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            let Some(body) = &mut self.body else {
                if let Some(wait) = self.wait.take() {
                    tokio::time::sleep(wait).await;
                }
                match self.open().await {
                    Ok(body) => {
                        self.body = Some(body);
                        self.failures = 0;
                    }
                    Err(OpenError::Refused(err)) => {
                        self.done = true;
                        return Some(Err(err));
                    }
                    Err(OpenError::Failed(reason)) => self.reconnect(reason),
                }
                continue;
            };
            let chunk = match self.shared.idle_timeout {
                Some(idle) => tokio::time::timeout(idle, body.next()).await.ok(),
                None => Some(body.next().await),
            };
            match chunk {
                Some(Some(Ok(bytes))) => {
                    if let Err(err) = self.absorb(&bytes) {
                        self.reconnect(format!("bad event stream: {err}"));
                    }
                }
                Some(Some(Err(err))) => {
                    self.reconnect(format!("stream broke: {}", Chain(&err)));
                }
                Some(None) => self.reconnect("stream ended".to_owned()),
                None => self.reconnect(format!(
                    "stream silent for {:?}",
                    self.shared.idle_timeout.unwrap_or_default()
                )),
            }
        }
    }

    /// Opens `GET /events` and returns its body once the server answered 200.
    async fn open(&mut self) -> Result<BoxStream<'static, reqwest::Result<Bytes>>, OpenError> {
        let url = format!("{}/events", self.shared.base);
        let mut query: Vec<(&str, &str)> = self
            .selectors
            .iter()
            .map(|s| ("topic", s.as_str()))
            .collect();
        if let Some(user) = &self.user {
            query.push(("user", user));
        }
        let mut request = self
            .shared
            .authorize(self.shared.http.get(&url))
            .query(&query)
            .header("accept", "text/event-stream");
        if let Some(id) = &self.last_id {
            request = request.header("last-event-id", id);
        }
        // A server that takes the connection but never answers counts as
        // silent, as a stream would.
        let sent = match self.shared.idle_timeout {
            Some(idle) => tokio::time::timeout(idle, request.send())
                .await
                .map_err(|_| OpenError::Failed(format!("no answer within {idle:?}")))?,
            None => request.send().await,
        };
        let response =
            sent.map_err(|err| OpenError::Failed(Chain(&Error::sending(&url, err)).to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.bytes_stream().boxed());
        }
        let body = response.text().await.unwrap_or_default();
        let err = Error::refused(status.as_u16(), &body);
        if status.is_client_error() {
            Err(OpenError::Refused(err))
        } else {
            Err(OpenError::Failed(err.to_string()))
        }
    }

    /// Parses a piece of the body into pending items.
    fn absorb(&mut self, bytes: &[u8]) -> Result<(), herald_sse::Error> {
        for sse in self.parser.feed(bytes)? {
            match sse {
                herald_sse::Item::Retry(ms) => self.hint = Some(Duration::from_millis(ms)),
                herald_sse::Item::Comment(_) => {}
                herald_sse::Item::Event(event) => {
                    let Some(item) = item::from_sse(event) else {
                        continue;
                    };
                    if let Item::Event(event) = &item
                        && !event.id.is_empty()
                    {
                        self.last_id = Some(event.id.clone());
                    }
                    self.pending.push_back(item);
                }
            }
        }
        Ok(())
    }

    /// Drops the connection and schedules the next attempt.
    fn reconnect(&mut self, reason: String) {
        self.body = None;
        self.parser.finish();
        let wait = self.shared.backoff.delay(self.hint, self.failures);
        self.failures = self.failures.saturating_add(1);
        self.wait = Some(wait);
        self.pending.push_back(Item::Disconnected {
            reason,
            retry_in: wait,
        });
    }
}

/// An error with its sources, `a: b: c`, for the reason of a disconnect.
struct Chain<'a>(&'a dyn std::error::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}
