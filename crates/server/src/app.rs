//! The server's shared state: the bus, the configuration, metrics, the PostgreSQL
//! sources, open connections, and whether it is shutting down.

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
use dashmap::DashMap;
use futures_util::{Stream, StreamExt};
use herald_bus::{Bus, UserId};
use herald_redis::{RedisLog, RedisOptions};
use herald_sse::{EventStream, StreamOptions};

use crate::{
    auth::{Authenticator, JwtAuth},
    config::{AuthMode, Config, LogKind},
    error::ApiError,
    metrics::Metrics,
    rate::RateLimiter,
    sources::Sources,
};

/// A cheap handle to the server's state.
#[derive(Debug, Clone)]
pub(crate) struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bus: Bus,
    /// The shared log, when the bus runs on Redis: for its metrics.
    redis: Option<RedisLog>,
    config: Config,
    auth: Authenticator,
    metrics: Metrics,
    /// Ingresses publishing into `bus` by themselves.
    sources: Sources,
    stream_options: StreamOptions,
    publish_rate: RateLimiter,
    connections: AtomicUsize,
    per_user: DashMap<UserId, usize>,
    shutting_down: AtomicBool,
}

impl App {
    /// Builds the bus (connecting to Redis for `log.kind = "redis"`) and the
    /// authenticator from `config`, and starts the PostgreSQL sources on the bus (they
    /// connect in the background). Must run inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// When the jwt settings are unusable (missing or unreadable keys, unknown
    /// algorithms), a source's settings are invalid, or Redis cannot be reached.
    pub(crate) async fn start(config: Config) -> anyhow::Result<Self> {
        let auth = match config.auth.mode {
            AuthMode::None => Authenticator::None,
            AuthMode::Jwt => Authenticator::Jwt {
                verifier: Box::new(JwtAuth::from_config(&config.auth)?),
                cookie: config.auth.cookie.clone(),
            },
        };
        let max_age = Duration::from_secs(config.retention.max_age_secs);
        let mut builder = Bus::builder()
            .retention(herald_bus::Retention {
                max_events: config.retention.max_events,
                max_age,
            })
            .max_event_bytes(config.limits.max_event_bytes)
            .subscriber_buffer(config.sse.subscriber_buffer);
        let redis = match config.log.kind {
            LogKind::Memory => None,
            LogKind::Redis => {
                let options = RedisOptions {
                    url: config.log.url.clone(),
                    key_prefix: config.log.key_prefix.clone(),
                    max_len: config.log.max_len,
                    max_age,
                    call_timeout: Duration::from_millis(config.log.call_timeout_ms),
                };
                let log = RedisLog::connect(options).await.map_err(|e| {
                    anyhow::anyhow!("cannot use the Redis log at {}: {e}", config.log.url)
                })?;
                builder = builder.log(log.clone());
                Some(log)
            }
        };
        let bus = builder.build();
        let sources = Sources::start(config.sources.built().to_vec(), &bus);
        let metrics = Metrics::new();
        metrics.register_sources(sources.monitors());
        let stream_options = StreamOptions::default()
            .heartbeat(config.heartbeat())
            .retry(Duration::from_millis(config.sse.retry_ms));
        let publish_rate = RateLimiter::new(
            config.limits.publish_rate_per_sec,
            config.limits.publish_burst,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                bus,
                redis,
                auth,
                config,
                metrics,
                sources,
                stream_options,
                publish_rate,
                connections: AtomicUsize::new(0),
                per_user: DashMap::new(),
                shutting_down: AtomicBool::new(false),
            }),
        })
    }

    pub(crate) fn publish_rate(&self) -> &RateLimiter {
        &self.inner.publish_rate
    }

    pub(crate) fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    /// The shared log's numbers, when the bus runs on Redis.
    pub(crate) fn redis_stats(&self) -> Option<herald_redis::Stats> {
        self.inner.redis.as_ref().map(RedisLog::stats)
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

    pub(crate) fn sources(&self) -> &Sources {
        &self.inner.sources
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

    /// Counts a new SSE connection of `user`, or refuses it over
    /// `limits.max_connections` or `limits.max_connections_per_user`.
    pub(crate) fn open_connection(&self, user: Option<&UserId>) -> Result<Connection, ApiError> {
        let limits = &self.inner.config.limits;
        let total = &self.inner.connections;
        total
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limits.max_connections).then_some(n + 1)
            })
            .map_err(|_| {
                ApiError::too_many(
                    "too_many_connections",
                    format!(
                        "the server holds its limit of {} connections",
                        limits.max_connections
                    ),
                    Duration::from_secs(5),
                )
            })?;
        if let Some(user) = user {
            let mut count = self.inner.per_user.entry(user.clone()).or_insert(0);
            if *count >= limits.max_connections_per_user {
                drop(count);
                // A limit of 0 refuses a user it has just put in the map: take them out.
                self.inner.per_user.remove_if(user, |_, n| *n == 0);
                total.fetch_sub(1, Ordering::SeqCst);
                return Err(ApiError::too_many(
                    "too_many_user_connections",
                    format!(
                        "user {user} already holds {} connections",
                        limits.max_connections_per_user
                    ),
                    Duration::from_secs(5),
                ));
            }
            *count += 1;
        }
        self.inner.metrics.connections.inc();
        Ok(Connection {
            app: self.clone(),
            user: user.cloned(),
        })
    }
}

/// One open SSE connection: counted while it lives.
#[derive(Debug)]
pub(crate) struct Connection {
    app: App,
    user: Option<UserId>,
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
        let inner = &self.app.inner;
        inner.connections.fetch_sub(1, Ordering::SeqCst);
        inner.metrics.connections.dec();
        if let Some(user) = &self.user {
            inner.per_user.remove_if_mut(user, |_, count| {
                *count -= 1;
                *count == 0
            });
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
