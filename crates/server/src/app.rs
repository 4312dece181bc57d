//! The server's shared state: the bus, the configuration, metrics, open connections,
//! and whether it is shutting down.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use herald_bus::Bus;
use herald_sse::{EventStream, StreamOptions};

use crate::{auth::Authenticator, config::Config, error::ApiError, metrics::Metrics};

/// A cheap handle to the server's state.
#[derive(Debug, Clone)]
pub(crate) struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bus: Bus,
    config: Config,
    auth: Authenticator,
    metrics: Metrics,
    stream_options: StreamOptions,
    connections: AtomicUsize,
    shutting_down: AtomicBool,
}

impl App {
    /// Builds the bus from `config`. Must run inside a Tokio runtime.
    pub(crate) fn new(config: Config) -> Self {
        let bus = Bus::builder()
            .retention(herald_bus::Retention {
                max_events: config.retention.max_events,
                max_age: Duration::from_secs(config.retention.max_age_secs),
            })
            .max_event_bytes(config.limits.max_event_bytes)
            .subscriber_buffer(config.sse.subscriber_buffer)
            .build();
        let stream_options = StreamOptions::default()
            .heartbeat(config.heartbeat())
            .retry(Duration::from_millis(config.sse.retry_ms));
        Self {
            inner: Arc::new(Inner {
                bus,
                auth: Authenticator::None,
                config,
                metrics: Metrics::new(),
                stream_options,
                connections: AtomicUsize::new(0),
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    pub(crate) fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn stream_options(&self) -> &StreamOptions {
        &self.inner.stream_options
    }

    /// Refuses new work and ends every stream; publishing answers 503 from now on.
    pub(crate) fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.inner.bus.close();
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Counts a new SSE connection, or refuses it over `limits.max_connections`.
    pub(crate) fn open_connection(&self) -> Result<Connection, ApiError> {
        let limit = self.inner.config.limits.max_connections;
        let previous = self.inner.connections.fetch_add(1, Ordering::SeqCst);
        let connection = Connection { app: self.clone() };
        if previous >= limit {
            drop(connection);
            return Err(ApiError::too_many(
                "too_many_connections",
                format!("the server holds its limit of {limit} connections"),
                Duration::from_secs(5),
            ));
        }
        self.inner.metrics.connections.inc();
        Ok(connection)
    }
}

/// One open SSE connection: counted while it lives.
#[derive(Debug)]
pub(crate) struct Connection {
    app: App,
}

impl Connection {
    /// The response body: `stream`, counting bytes sent, holding this connection open.
    pub(crate) fn stream(self, stream: EventStream) -> Metered {
        Metered {
            stream,
            connection: self,
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let previous = self.app.inner.connections.fetch_sub(1, Ordering::SeqCst);
        // A refused connection was counted but never added to the gauge.
        if previous <= self.app.inner.config.limits.max_connections {
            self.app.inner.metrics.connections.dec();
        }
    }
}

/// An SSE body that counts what it sends and releases its connection when dropped.
#[derive(Debug)]
pub(crate) struct Metered {
    stream: EventStream,
    connection: Connection,
}

impl Stream for Metered {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let item = self.stream.poll_next_unpin(cx);
        if let Poll::Ready(Some(bytes)) = &item {
            self.connection
                .app
                .inner
                .metrics
                .bytes_sent
                .inc_by(bytes.len() as u64);
        }
        item
    }
}
