//! [`Client`] and its [`ClientBuilder`]: the server's address, the token, the
//! timeouts, and the two publish calls.

use std::{sync::Arc, time::Duration};

use serde::Deserialize;

use crate::{Backoff, Draft, Error, Subscription};

/// A handle on one Herald server: publishes and opens subscriptions.
///
/// Cheap to clone; clones share one connection pool.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), herald_client::Error> {
/// use herald_client::{Client, Draft};
///
/// let client = Client::builder("http://127.0.0.1:8080").token("eyJ…").build()?;
/// let id = client.publish(&Draft::new("orders.created", serde_json::json!({"id": 7}))).await?;
/// println!("published {id}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) http: reqwest::Client,
    /// The base URL without a trailing `/`.
    pub(crate) base: String,
    pub(crate) token: Option<String>,
    pub(crate) backoff: Backoff,
    pub(crate) idle_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
}

/// Options for a [`Client`]; from [`Client::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build`"]
pub struct ClientBuilder {
    base: String,
    token: Option<String>,
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    backoff: Backoff,
}

impl ClientBuilder {
    /// Sends `token` as `Authorization: Bearer` on every request (auth mode
    /// `jwt`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How long to wait for a TCP connection before the server counts as
    /// unreachable. Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a publish may take in all. Default 30 s; `None` waits forever.
    /// Subscriptions are not bounded by it.
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long a subscription's stream may stay silent before it is taken
    /// for dead and reopened. Herald sends a heartbeat every 15 s by default
    /// and is never silent for two periods. Default 45 s; `None` never.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The bounds of the reconnect backoff (see [`Backoff`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when the base URL is not an `http://` URL.
    /// (`https://` needs TLS, which this build does not include yet.)
    pub fn build(self) -> Result<Client, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: self.base.clone(),
            reason: reason.to_owned(),
        };
        let url = reqwest::Url::parse(&self.base).map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(invalid("only http:// is supported"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a base url has no query or fragment"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(Client {
            shared: Arc::new(Shared {
                http,
                base: url.as_str().trim_end_matches('/').to_owned(),
                token: self.token,
                backoff: self.backoff,
                idle_timeout: self.idle_timeout,
                request_timeout: self.request_timeout,
            }),
        })
    }
}

#[derive(Deserialize)]
struct Published {
    id: String,
}

#[derive(Deserialize)]
struct PublishedBatch {
    ids: Vec<String>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`,
    /// or with a path prefix behind a proxy), with the default options.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_client::Client;
    ///
    /// let client = Client::new("http://127.0.0.1:8080/")?;
    /// assert_eq!(client.base_url(), "http://127.0.0.1:8080");
    /// assert!(Client::new("ftp://example.com").is_err());
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::build`].
    pub fn new(base_url: &str) -> Result<Self, Error> {
        Client::builder(base_url).build()
    }

    /// A builder for a client of the server at `base_url`.
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            token: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(45)),
            backoff: Backoff::default(),
        }
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.shared.base
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.shared.base)
    }

    /// Publishes one event; returns the id the bus assigned.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`] when no server answers, [`Error::Refused`] with
    /// the server's error code (`invalid_event`, `forbidden_topic`,
    /// `rate_limited`, …), [`Error::Transport`] when the exchange breaks,
    /// [`Error::UnexpectedAnswer`] for a success without an id.
    pub async fn publish(&self, draft: &Draft) -> Result<String, Error> {
        let body = serde_json::to_vec(draft).expect("a draft serializes");
        let text = self.post_publish(body).await?;
        serde_json::from_str::<Published>(&text)
            .map(|p| p.id)
            .map_err(|_| Error::UnexpectedAnswer(text))
    }

    /// Publishes `drafts` atomically and in order (all or none); returns
    /// their ids, in the same order.
    ///
    /// # Errors
    ///
    /// As [`publish`](Client::publish); an empty batch is refused by the
    /// server (`empty_batch`).
    pub async fn publish_batch(&self, drafts: &[Draft]) -> Result<Vec<String>, Error> {
        let body = serde_json::to_vec(drafts).expect("drafts serialize");
        let text = self.post_publish(body).await?;
        serde_json::from_str::<PublishedBatch>(&text)
            .map(|p| p.ids)
            .map_err(|_| Error::UnexpectedAnswer(text))
    }

    /// Subscribes to `selectors` (`orders.*`, `users.42.>`) on one
    /// connection. The [`Subscription`] connects when first polled.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: herald_client::Client) {
    /// use futures_util::StreamExt;
    /// use herald_client::Item;
    ///
    /// let mut events = client.subscribe(["orders.*"]);
    /// while let Some(item) = events.next().await {
    ///     match item {
    ///         Ok(Item::Event(event)) => println!("{} {}", event.id, event.data),
    ///         Ok(Item::Reset { .. }) => println!("missed some events: refetch"),
    ///         Ok(_) => {}
    ///         Err(err) => return eprintln!("refused: {err}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn subscribe<I, S>(&self, selectors: I) -> Subscription
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Subscription::new(
            Arc::clone(&self.shared),
            selectors.into_iter().map(Into::into).collect(),
        )
    }

    /// `POST /publish` with a JSON `body`; the body of a success.
    async fn post_publish(&self, body: Vec<u8>) -> Result<String, Error> {
        let url = self.url("/publish");
        let mut request = self
            .shared
            .authorize(self.shared.http.post(&url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(timeout) = self.shared.request_timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(|e| Error::sending(&url, e))?;
        let status = response.status();
        let text = response.text().await.map_err(Error::Transport)?;
        if !status.is_success() {
            return Err(Error::refused(status.as_u16(), &text));
        }
        Ok(text)
    }
}

impl Shared {
    /// Adds the bearer token, if any.
    pub(crate) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}
