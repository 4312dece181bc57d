//! The subscribers of a run: one small task per connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use herald_bus::{Bus, Delivery, Selector, Subscription, UserId};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::receiver::histogram;
use crate::template::Template;
use crate::{Error, Plan, Receiver, Recorder, SourceIps, SseConn, Target};

/// How subscribers reach an HTTP server.
#[derive(Debug)]
pub(crate) struct HttpSetup {
    /// The server.
    pub target: Target,
    /// Subscription path template.
    pub subscribe: Template,
    /// Local source addresses, round robin by connection number.
    pub sources: Option<SourceIps>,
    /// Connections opened at once.
    pub concurrency: usize,
    /// Give up on one connection after this long.
    pub timeout: Duration,
}

/// One subscriber to start.
#[derive(Debug, Clone, Default)]
pub(crate) struct Member {
    /// Its number over the whole run (decides topic, user, source address).
    pub connection: usize,
    /// The first sequence number it expects.
    pub start_seq: u64,
    /// Resume after this id (`Last-Event-ID`).
    pub last_event_id: Option<String>,
    /// Note the time when this many sequence numbers are in (`next >= finish_at`).
    pub finish_at: Option<u64>,
}

/// How a subscriber ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// Stopped by the run.
    Stopped,
    /// The server ended the stream.
    Closed,
    /// Reading failed.
    Failed(String),
    /// It never connected.
    NotConnected,
}

/// What one subscriber saw.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Its checker and tally.
    pub receiver: Receiver,
    /// How it ended.
    pub end: End,
    /// The last event id of its stream.
    pub last_event_id: String,
    /// Time from connecting to reaching `finish_at` (it keeps reading after).
    pub completed_after: Option<Duration>,
}

/// How opening the connections went.
#[derive(Debug)]
pub(crate) struct Opened {
    /// Connections open.
    pub opened: usize,
    /// Failures by cause.
    pub failures: BTreeMap<String, u64>,
    /// Connect times, microseconds.
    pub connect: Histogram<u64>,
    /// Wall time until the last one was open or had failed.
    pub elapsed: Duration,
}

/// The running subscribers.
#[derive(Debug)]
pub(crate) struct Fleet {
    handles: Vec<JoinHandle<Outcome>>,
    streams: Vec<usize>,
    progress: Arc<[AtomicU64]>,
    stop: watch::Sender<bool>,
    connected: mpsc::UnboundedReceiver<Result<Duration, String>>,
    started: Instant,
}

impl Fleet {
    /// Starts one SSE connection per member.
    pub(crate) fn http(
        setup: Arc<HttpSetup>,
        plan: &Arc<Plan>,
        members: Vec<Member>,
        recorder: &Arc<Recorder>,
    ) -> Self {
        let gate = Arc::new(Semaphore::new(setup.concurrency.max(1)));
        Self::start(
            plan,
            members,
            |ctx| {
                let (setup, gate) = (Arc::clone(&setup), Arc::clone(&gate));
                tokio::spawn(http_task(ctx, setup, gate))
            },
            recorder,
        )
    }

    /// Starts one bus subscriber per member (`--in-process`).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when a topic or user is not valid for the bus.
    pub(crate) fn bus(
        bus: &Bus,
        plan: &Arc<Plan>,
        members: Vec<Member>,
        recorder: &Arc<Recorder>,
    ) -> Result<Self, Error> {
        let invalid = |e: &dyn std::fmt::Display| Error::Invalid {
            what: "topic or user",
            reason: e.to_string(),
        };
        let mut subs = Vec::with_capacity(members.len());
        for member in &members {
            let stream = plan.stream_of(member.connection);
            let selector = Selector::new(plan.topic(stream)).map_err(|e| invalid(&e))?;
            let mut subscription = Subscription::new([selector]);
            if !plan.user(stream).is_empty() {
                subscription = subscription
                    .with_user(UserId::new(plan.user(stream)).map_err(|e| invalid(&e))?);
            }
            subs.push(bus.subscribe(subscription).map_err(|e| invalid(&e))?);
        }
        let mut subs = subs.into_iter();
        Ok(Self::start(
            plan,
            members,
            |ctx| {
                tokio::spawn(bus_task(
                    ctx,
                    subs.next().expect("one subscriber per member"),
                ))
            },
            recorder,
        ))
    }

    fn start(
        plan: &Arc<Plan>,
        members: Vec<Member>,
        mut spawn: impl FnMut(Ctx) -> JoinHandle<Outcome>,
        recorder: &Arc<Recorder>,
    ) -> Self {
        let progress: Arc<[AtomicU64]> = members
            .iter()
            .map(|m| AtomicU64::new(m.start_seq))
            .collect();
        let (stop, stop_rx) = watch::channel(false);
        let (connected_tx, connected) = mpsc::unbounded_channel();
        let streams = members
            .iter()
            .map(|m| plan.stream_of(m.connection))
            .collect();
        let handles = members
            .into_iter()
            .enumerate()
            .map(|(index, member)| {
                spawn(Ctx {
                    index,
                    member,
                    plan: Arc::clone(plan),
                    recorder: Arc::clone(recorder),
                    progress: Arc::clone(&progress),
                    connected: connected_tx.clone(),
                    stop: stop_rx.clone(),
                })
            })
            .collect();
        Self {
            handles,
            streams,
            progress,
            stop,
            connected,
            started: Instant::now(),
        }
    }

    /// Waits until every subscriber has connected or failed to.
    pub(crate) async fn wait_connected(&mut self) -> Opened {
        let mut opened = Opened {
            opened: 0,
            failures: BTreeMap::new(),
            connect: histogram(),
            elapsed: Duration::ZERO,
        };
        for _ in 0..self.handles.len() {
            match self.connected.recv().await {
                Some(Ok(took)) => {
                    opened.opened += 1;
                    opened.connect.saturating_record(
                        u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1),
                    );
                }
                Some(Err(kind)) => *opened.failures.entry(kind).or_default() += 1,
                None => break,
            }
        }
        opened.elapsed = self.started.elapsed();
        opened
    }

    /// Whether every subscriber has every event `published` says its stream got.
    pub(crate) fn is_drained(&self, published: &[u64]) -> bool {
        self.streams
            .iter()
            .zip(self.progress.iter())
            .all(|(&s, next)| {
                next.load(Ordering::Relaxed) >= published.get(s).copied().unwrap_or(0)
            })
    }

    /// Waits until [`is_drained`](Self::is_drained) or `timeout`; returns whether drained.
    pub(crate) async fn drain(&self, published: &[u64], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_drained(published) {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stops every subscriber (closing its connection) and collects what they saw.
    pub(crate) async fn stop(self) -> Vec<Outcome> {
        let _ = self.stop.send(true);
        let mut outcomes = Vec::with_capacity(self.handles.len());
        for handle in self.handles {
            outcomes.push(handle.await.expect("subscriber task panicked"));
        }
        outcomes
    }
}

/// What each subscriber task gets.
struct Ctx {
    index: usize,
    member: Member,
    plan: Arc<Plan>,
    recorder: Arc<Recorder>,
    progress: Arc<[AtomicU64]>,
    connected: mpsc::UnboundedSender<Result<Duration, String>>,
    stop: watch::Receiver<bool>,
}

impl Ctx {
    fn receiver(&self) -> Receiver {
        let stream = self.plan.stream_of(self.member.connection);
        Receiver::new(self.index, stream, self.member.start_seq)
    }

    /// Notes when `finish_at` was first reached.
    fn check_complete(&self, rx: &Receiver, started: Instant, completed: &mut Option<Duration>) {
        if completed.is_none() && self.member.finish_at.is_some_and(|at| rx.next() >= at) {
            *completed = Some(started.elapsed());
        }
    }
}

async fn http_task(mut ctx: Ctx, setup: Arc<HttpSetup>, gate: Arc<Semaphore>) -> Outcome {
    let mut rx = ctx.receiver();
    let path = setup.subscribe.expand(&ctx.plan.vars(rx.stream(), ""));
    let source = setup.sources.as_ref().map(|s| s.nth(ctx.member.connection));
    let permit = gate.acquire().await.expect("gate never closes");
    let started = Instant::now();
    let opened = tokio::time::timeout(
        setup.timeout,
        SseConn::open(
            &setup.target,
            source,
            &path,
            ctx.member.last_event_id.as_deref(),
        ),
    )
    .await
    .unwrap_or_else(|_| Err(Error::Timeout("connecting".into())));
    drop(permit);
    let mut conn = match opened {
        Ok(conn) => {
            let _ = ctx.connected.send(Ok(started.elapsed()));
            conn
        }
        Err(e) => {
            let _ = ctx.connected.send(Err(e.kind()));
            let end = End::NotConnected;
            return Outcome {
                receiver: rx,
                end,
                last_event_id: String::new(),
                completed_after: None,
            };
        }
    };
    let mut items = Vec::new();
    let mut completed_after = None;
    let end = loop {
        tokio::select! {
            biased;
            _ = ctx.stop.changed() => break End::Stopped,
            read = conn.read(&mut items) => match read {
                Ok(true) => {
                    for item in items.drain(..) {
                        rx.on_item(&item, &ctx.recorder);
                    }
                    ctx.progress[ctx.index].store(rx.next(), Ordering::Relaxed);
                    ctx.check_complete(&rx, started, &mut completed_after);
                }
                Ok(false) => break End::Closed,
                Err(e) => break End::Failed(e.to_string()),
            },
        }
    };
    Outcome {
        receiver: rx,
        end,
        last_event_id: conn.last_event_id().to_owned(),
        completed_after,
    }
}

async fn bus_task(mut ctx: Ctx, mut sub: herald_bus::Subscriber) -> Outcome {
    let mut rx = ctx.receiver();
    let started = Instant::now();
    let _ = ctx.connected.send(Ok(Duration::ZERO));
    let mut last_event_id = String::new();
    let mut completed_after = None;
    let end = loop {
        tokio::select! {
            biased;
            _ = ctx.stop.changed() => break End::Stopped,
            delivery = sub.next() => match delivery {
                Some(Delivery::Event(event)) => {
                    rx.on_event("", event.data().as_str(), &ctx.recorder);
                    last_event_id = event.id().to_string();
                    ctx.progress[ctx.index].store(rx.next(), Ordering::Relaxed);
                    ctx.check_complete(&rx, started, &mut completed_after);
                }
                Some(Delivery::Reset(_)) => rx.on_event(herald_bus::control::RESET, "", &ctx.recorder),
                None => break End::Closed,
            },
        }
    };
    Outcome {
        receiver: rx,
        end,
        last_event_id,
        completed_after,
    }
}
