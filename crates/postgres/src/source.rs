//! [`PgSource`]: a configured source, its builder, and the [`PgSourceHandle`] of a
//! running one; the reconnect loop shared by both modes.

mod conn;
mod notify;
mod outbox;
mod publish;

use std::{sync::Arc, time::Duration};

use herald_bus::Bus;
use tokio::{sync::watch, task::JoinHandle};
use tracing::Instrument;

use self::{conn::Conn, publish::Stop};
use crate::{
    Error, Ident, Mapping, Outbox, SourceMonitor, SourceStatus, error::chain, status::Stats,
};

/// How a source reads PostgreSQL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Mode {
    /// `LISTEN` on these channels; each notification is one change. Fast and simple,
    /// but what happens while Herald is disconnected is lost (subscribers get a
    /// `herald.reset` event), and a row over 8,000 bytes arrives as its key only.
    Notify {
        /// The channels, as given to the installed triggers.
        channels: Vec<Ident>,
    },
    /// Read an outbox table in commit order from a recorded position: nothing is lost
    /// across restarts, and rows may be large.
    Outbox(Outbox),
}

impl Mode {
    /// Notify mode on `channels`.
    pub fn notify(channels: impl IntoIterator<Item = Ident>) -> Self {
        Self::Notify {
            channels: channels.into_iter().collect(),
        }
    }

    /// Outbox mode on `outbox`.
    pub fn outbox(outbox: Outbox) -> Self {
        Self::Outbox(outbox)
    }

    fn as_str(&self) -> &'static str {
        match self {
            Self::Notify { .. } => "notify",
            Self::Outbox(_) => "outbox",
        }
    }
}

/// A configured PostgreSQL source: PostgreSQL changes in, [`Bus::publish`] out.
///
/// Build one with [`PgSource::builder`], then [`spawn`](PgSource::spawn) it as often as
/// needed (after a stop, say): each spawn runs one background task.
///
/// # Examples
///
/// ```no_run
/// use herald_bus::Bus;
/// use herald_postgres::{Ident, Mapping, Mode, PgSource};
///
/// # async fn example() -> Result<(), herald_postgres::Error> {
/// let bus = Bus::new();
/// let source = PgSource::builder("postgres://postgres@127.0.0.1:5432/app")
///     .name("orders")
///     .mode(Mode::notify([Ident::new("herald")?]))
///     .mapping(Mapping::new("db.{table}.{op}")?.with_event("{op}")?)
///     .build()?;
/// let handle = source.spawn(&bus);
/// assert_eq!(handle.status().name, "orders");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PgSource {
    config: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    name: String,
    pg: tokio_postgres::Config,
    mode: Mode,
    mapping: Mapping,
    min_backoff: Duration,
    max_backoff: Duration,
    health_interval: Duration,
}

impl PgSource {
    /// The default source name, which keys the recorded outbox position.
    pub const DEFAULT_NAME: &'static str = "herald";
    /// The default first reconnect delay (see [`PgSourceBuilder::backoff`]): 100 ms.
    pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(100);
    /// The default longest reconnect delay (see [`PgSourceBuilder::backoff`]): 5 s.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);
    /// The default check interval of an idle notify connection (see
    /// [`PgSourceBuilder::health_interval`]): 15 s.
    pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(15);

    /// A builder for a source connecting to `url`
    /// (`postgres://user:password@host:port/database`, or a key=value string).
    pub fn builder(url: impl Into<String>) -> PgSourceBuilder {
        PgSourceBuilder {
            url: url.into(),
            name: Self::DEFAULT_NAME.to_owned(),
            mode: None,
            mapping: None,
            min_backoff: Self::DEFAULT_MIN_BACKOFF,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            health_interval: Self::DEFAULT_HEALTH_INTERVAL,
        }
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Starts the source on the current Tokio runtime. It connects (and reconnects, with
    /// backoff) by itself; it stops when the returned handle is dropped or stopped.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn spawn(&self, bus: &Bus) -> PgSourceHandle {
        let config = &self.config;
        let stats = Arc::new(Stats::new(&config.name, config.mode.as_str()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let span =
            tracing::info_span!("pg_source", name = %config.name, mode = config.mode.as_str());
        let task = tokio::spawn(
            run(
                Arc::clone(config),
                publish::Ctx::new(bus.clone(), Arc::clone(&stats), config.max_backoff),
                Stop::new(stop_rx),
            )
            .instrument(span),
        );
        PgSourceHandle {
            monitor: SourceMonitor::new(stats),
            stop: stop_tx,
            task: Some(task),
        }
    }
}

/// Configures a [`PgSource`]; see [`PgSource::builder`].
#[derive(Debug)]
pub struct PgSourceBuilder {
    url: String,
    name: String,
    mode: Option<Mode>,
    mapping: Option<Mapping>,
    min_backoff: Duration,
    max_backoff: Duration,
    health_interval: Duration,
}

impl PgSourceBuilder {
    /// Names the source (default [`PgSource::DEFAULT_NAME`]): the key of its outbox
    /// position, its `application_name` (`herald:<name>`) and its log span. Two sources
    /// reading one outbox need different names.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the mode (required).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Sets how changes become events (required). Rows an application inserts into an
    /// outbox with a `topic` bypass it.
    pub fn mapping(mut self, mapping: Mapping) -> Self {
        self.mapping = Some(mapping);
        self
    }

    /// Sets the reconnect delays: the first retry waits `min`, each failure doubles the
    /// wait up to `max` (defaults [`PgSource::DEFAULT_MIN_BACKOFF`] and
    /// [`PgSource::DEFAULT_MAX_BACKOFF`], 100 ms and 5 s), plus up to 25 % jitter.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min.max(Duration::from_millis(1));
        self.max_backoff = max.max(self.min_backoff);
        self
    }

    /// Notify mode: how often an idle connection is checked with a query (default
    /// [`PgSource::DEFAULT_HEALTH_INTERVAL`], 15 s),
    /// so a silently dropped connection is noticed. Outbox mode polls instead.
    pub fn health_interval(mut self, every: Duration) -> Self {
        self.health_interval = every.max(Duration::from_millis(10));
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::Url`] for a URL that cannot be parsed; [`Error::Config`] without a mode or
    /// a mapping, with an empty name, or in notify mode without a channel.
    pub fn build(self) -> Result<PgSource, Error> {
        let mut pg: tokio_postgres::Config = self.url.parse().map_err(Error::Url)?;
        let mode = self
            .mode
            .ok_or_else(|| Error::Config("a mode is required".to_owned()))?;
        let mapping = self
            .mapping
            .ok_or_else(|| Error::Config("a mapping is required".to_owned()))?;
        if self.name.is_empty() {
            return Err(Error::Config("the name is empty".to_owned()));
        }
        if matches!(&mode, Mode::Notify { channels } if channels.is_empty()) {
            return Err(Error::Config(
                "notify mode needs at least one channel".to_owned(),
            ));
        }
        if pg.get_application_name().is_none() {
            pg.application_name(format!("herald:{}", self.name));
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(10));
        }
        Ok(PgSource {
            config: Arc::new(Config {
                name: self.name,
                pg,
                mode,
                mapping,
                min_backoff: self.min_backoff,
                max_backoff: self.max_backoff,
                health_interval: self.health_interval,
            }),
        })
    }

    /// [`build`](Self::build)s, then [`spawn`](PgSource::spawn)s.
    ///
    /// # Errors
    ///
    /// As [`PgSourceBuilder::build`].
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn spawn(self, bus: &Bus) -> Result<PgSourceHandle, Error> {
        Ok(self.build()?.spawn(bus))
    }
}

/// A running source. Dropping it stops the source at once; [`stop`](Self::stop) lets it
/// finish the batch in hand first.
#[derive(Debug)]
pub struct PgSourceHandle {
    monitor: SourceMonitor,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl PgSourceHandle {
    /// The source's state now. Cheap: for `/readyz` and metrics.
    pub fn status(&self) -> SourceStatus {
        self.monitor.status()
    }

    /// A cloneable view of the status that does not keep the source running.
    pub fn monitor(&self) -> SourceMonitor {
        self.monitor.clone()
    }

    /// Stops the source gracefully: a batch being published is published and its outbox
    /// position recorded, so a later start resumes without duplicates. Waits at most
    /// 5 s, then stops it at once.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for PgSourceHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// How a session ended.
enum End {
    /// The handle asked the source to stop.
    Stopped,
    /// The connection failed; the text says why.
    Lost(String),
}

enum Runner {
    Notify(notify::Listener),
    Outbox(outbox::Reader),
}

impl Runner {
    /// Prepares a new session: `LISTEN`, and in outbox mode the recorded position.
    async fn setup(&mut self, conn: &mut Conn, ctx: &publish::Ctx) -> Result<(), String> {
        match self {
            Self::Notify(listener) => listener.setup(conn).await,
            Self::Outbox(reader) => reader.setup(conn, ctx).await,
        }
    }

    /// What follows a reconnect: in notify mode, the reset notice.
    async fn reconnected(&mut self, ctx: &publish::Ctx) {
        if let Self::Notify(listener) = self {
            listener.announce_reset(ctx).await;
        }
    }

    async fn serve(&mut self, conn: &mut Conn, ctx: &publish::Ctx, stop: &mut Stop) -> End {
        match self {
            Self::Notify(listener) => listener.serve(conn, ctx, stop).await,
            Self::Outbox(reader) => reader.serve(conn, ctx, stop).await,
        }
    }
}

/// Connects, serves until the connection fails, waits, and again, until stopped.
async fn run(config: Arc<Config>, ctx: publish::Ctx, mut stop: Stop) {
    let mut runner = match &config.mode {
        Mode::Notify { channels } => Runner::Notify(notify::Listener::new(
            channels.clone(),
            config.mapping.clone(),
            config.health_interval,
        )),
        Mode::Outbox(outbox) => {
            Runner::Outbox(outbox::Reader::new(outbox.clone(), config.mapping.clone()))
        }
    };
    let mut delay = config.min_backoff;
    let mut connected_before = false;
    loop {
        let attempt = tokio::select! {
            biased;
            () = stop.wait() => return,
            attempt = async {
                let mut conn = Conn::open(&config.pg).await.map_err(|e| chain(&e))?;
                runner.setup(&mut conn, &ctx).await?;
                Ok::<_, String>(conn)
            } => attempt,
        };
        match attempt {
            Ok(mut conn) => {
                tracing::info!(reconnect = connected_before, "postgres source connected");
                delay = config.min_backoff;
                ctx.stats.set_connected(true);
                if connected_before {
                    ctx.stats.reconnected();
                    runner.reconnected(&ctx).await;
                }
                connected_before = true;
                let end = runner.serve(&mut conn, &ctx, &mut stop).await;
                ctx.stats.set_connected(false);
                match end {
                    End::Stopped => return,
                    End::Lost(error) => {
                        tracing::warn!(%error, "postgres source lost its connection");
                        ctx.stats.set_error(error);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?delay, "postgres source cannot connect");
                ctx.stats.set_error(error);
            }
        }
        if stop.sleep(publish::jitter(delay)).await {
            return;
        }
        delay = (delay * 2).min(config.max_backoff);
    }
}
