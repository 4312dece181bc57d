//! Calls to Redis, each bounded by the call timeout and counted for [`Stats`].

use std::{
    future::Future,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{
    AsyncConnectionConfig, RedisResult,
    aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
};

use crate::{Stats, error::Error};

/// The shared connection (a multiplexed [`ConnectionManager`], which reconnects after an
/// I/O error) and the counters of every call made on it.
#[derive(Debug)]
pub(crate) struct Redis {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// Replaced after a timeout: a connection whose peer vanished without closing it
    /// (a network partition) never reports an I/O error, so the manager would keep it.
    /// Held only to clone or swap the handle.
    manager: Mutex<ConnectionManager>,
    timeout: Duration,
    counters: Counters,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    micros: AtomicU64,
    pub(crate) tail_failures: AtomicU64,
    pub(crate) appends_recovered: AtomicU64,
    pub(crate) appends_fenced: AtomicU64,
    pub(crate) appends_unknown: AtomicU64,
}

impl Redis {
    /// Connects to `url`, giving up after `timeout`.
    pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(Error::Url)?;
        // One quick attempt per call: retries and their backoff belong to the caller,
        // which bounds every call by `timeout` itself (so the client's own response
        // timeout is off: ours reports `Error::Timeout`).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None)
            .set_number_of_retries(0);
        let op = "connect";
        let manager = tokio::time::timeout(
            timeout,
            ConnectionManager::new_with_config(client.clone(), config.clone()),
        )
        .await
        .map_err(|_| Error::Timeout { op, after: timeout })?
        .map_err(|source| Error::Redis { op, source })?;
        Ok(Self {
            client,
            config,
            manager: Mutex::new(manager),
            timeout,
            counters: Counters::default(),
        })
    }

    /// Runs `f` on the shared connection, within the call timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] past the timeout, [`Error::Redis`] when Redis or the
    /// connection fails.
    pub(crate) async fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, Error>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let connection = self.lock().clone();
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, f(connection)).await;
        self.counters.record(started.elapsed(), &result);
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(Error::Redis { op, source }),
            Err(_) => {
                self.renew();
                Err(Error::Timeout {
                    op,
                    after: self.timeout,
                })
            }
        }
    }

    /// A connection of its own, for a blocking command that would stall the shared one.
    /// Its replies may take `response_timeout`.
    pub(crate) async fn dedicated(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, Error> {
        let op = "connect";
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(response_timeout));
        tokio::time::timeout(
            self.timeout,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| Error::Timeout {
            op,
            after: self.timeout,
        })?
        .map_err(|source| Error::Redis { op, source })
    }

    /// The call timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    fn renew(&self) {
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(fresh) => *self.lock() = fresh,
            Err(error) => tracing::warn!(%error, "cannot replace the redis connection"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnectionManager> {
        self.manager
            .lock()
            .expect("no code panics while holding the connection lock")
    }
}

impl Counters {
    fn record<T, E>(
        &self,
        took: Duration,
        result: &Result<Result<T, E>, tokio::time::error::Elapsed>,
    ) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(micros, Ordering::Relaxed);
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.timeouts.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The call counters, with the tail's numbers left for the caller to fill in.
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            call_time: Duration::from_micros(self.micros.load(Ordering::Relaxed)),
            tail_lag: 0,
            tail_failures: self.tail_failures.load(Ordering::Relaxed),
            appends_recovered: self.appends_recovered.load(Ordering::Relaxed),
            appends_fenced: self.appends_fenced.load(Ordering::Relaxed),
            appends_unknown: self.appends_unknown.load(Ordering::Relaxed),
        }
    }
}
