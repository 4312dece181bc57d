//! [`App`]: the parts of a running server, built once from the configuration. Each API
//! route takes the parts it needs and nothing else (see `api`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use herald_bus::Bus;
use herald_redis::{RedisLog, RedisOptions};
use herald_sse::StreamOptions;

use crate::{
    auth::{Authenticator, JwtAuth},
    config::{AuthMode, Config, LogKind},
    limits::{ConnectionLimits, RateLimiter},
    metrics::Metrics,
    sources::Sources,
};

/// The parts of a running server; a clone is a handful of reference-count increments.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) config: Arc<Config>,
    pub(crate) bus: Bus,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) metrics: Metrics,
    /// Ingresses publishing into `bus` by themselves.
    pub(crate) sources: Arc<Sources>,
    pub(crate) stream_options: StreamOptions,
    pub(crate) connections: ConnectionLimits,
    pub(crate) publish_rate: Arc<RateLimiter>,
    pub(crate) stopping: Stopping,
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
        let metrics = Metrics::new(&bus, redis.as_ref());
        metrics.register_sources(sources.monitors());
        let stream_options = StreamOptions::default()
            .heartbeat(config.heartbeat())
            .retry(Duration::from_millis(config.sse.retry_ms));
        let limits = &config.limits;
        let connections = ConnectionLimits::new(
            limits.max_connections,
            limits.max_connections_per_user,
            metrics.connections.clone(),
        );
        let publish_rate = RateLimiter::new(limits.publish_rate_per_sec, limits.publish_burst);
        Ok(Self {
            bus,
            auth: Arc::new(auth),
            metrics,
            sources: Arc::new(sources),
            stream_options,
            connections,
            publish_rate: Arc::new(publish_rate),
            stopping: Stopping::default(),
            config: Arc::new(config),
        })
    }

    /// Refuses new work and ends every stream; requests answer 503 from now on.
    pub(crate) fn begin_shutdown(&self) {
        self.stopping.0.store(true, Ordering::SeqCst);
        self.bus.close();
    }
}

/// Whether the server is shutting down: set once, never cleared.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stopping(Arc<AtomicBool>);

impl Stopping {
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
