//! What both modes share: the context a session runs in, the stop signal, and publishing
//! a batch of drafts with retries.

use std::{
    future::Future,
    hash::{BuildHasher, RandomState},
    sync::{Arc, Mutex},
    time::Duration,
};

use herald_bus::{Bus, Draft, EventId, LogError, PublishError};
use tokio::sync::watch;

use crate::{MapError, error::chain, status::Stats};

/// The longest a single query may take before the connection is presumed dead.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a session needs besides its connection.
pub(super) struct Ctx {
    pub(super) bus: Bus,
    pub(super) stats: Arc<Stats>,
    max_backoff: Duration,
    /// The id of the newest event this source published. A std mutex: set and read in
    /// passing, never held across an await.
    last_published: Mutex<Option<EventId>>,
}

impl Ctx {
    pub(super) fn new(bus: Bus, stats: Arc<Stats>, max_backoff: Duration) -> Self {
        Self {
            bus,
            stats,
            max_backoff,
            last_published: Mutex::new(None),
        }
    }

    /// The id of the newest event this source published, if any.
    pub(super) fn last_published(&self) -> Option<EventId> {
        *self
            .last_published
            .lock()
            .expect("no code panics while holding it")
    }

    /// Counts and logs a change that could not become an event. The payload is logged at
    /// debug level only: rows may hold personal data.
    pub(super) fn bad_payload(&self, origin: &str, payload: Option<&str>, error: &MapError) {
        self.stats.bad_payload();
        tracing::warn!(origin, error = %chain(error), "bad payload skipped");
        if let Some(payload) = payload {
            tracing::debug!(origin, payload = %excerpt(payload), "the bad payload");
        }
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(500).collect()
}

/// The stop signal from the handle.
pub(super) struct Stop {
    rx: watch::Receiver<bool>,
}

impl Stop {
    pub(super) fn new(rx: watch::Receiver<bool>) -> Self {
        Self { rx }
    }

    /// Whether a stop was asked for.
    pub(super) fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once a stop is asked for. A handle that is dropped instead aborts the
    /// task, so a closed channel simply never resolves.
    pub(super) async fn wait(&mut self) {
        loop {
            if *self.rx.borrow_and_update() {
                return;
            }
            if self.rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Sleeps for `delay`; returns whether a stop came first.
    pub(super) async fn sleep(&mut self, delay: Duration) -> bool {
        tokio::select! {
            biased;
            () = self.wait() => true,
            () = tokio::time::sleep(delay) => false,
        }
    }
}

/// Whether a batch was published, or the source was asked to stop while it waited for
/// the bus to come back.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Published {
    Done,
    Stopped,
}

/// Publishes `drafts` in one atomic batch, in order.
///
/// Drafts over the bus's size limit are bad payloads, left out. When the bus's log fails
/// (a shared log's server down), waits and retries with backoff, without giving up:
/// dropping them would lose events an outbox promises to keep. A closed bus drops the
/// batch.
pub(super) async fn publish(ctx: &Ctx, mut drafts: Vec<Draft>, stop: &mut Stop) -> Published {
    let limit = ctx.bus.max_event_bytes();
    drafts.retain(|draft| {
        let fits = draft.size() <= limit;
        if !fits {
            ctx.stats.bad_payload();
            tracing::warn!(
                topic = %draft.topic(),
                size = draft.size(),
                limit,
                "change over the bus's event size limit skipped"
            );
        }
        fits
    });
    if drafts.is_empty() {
        return Published::Done;
    }
    let count = drafts.len() as u64;
    let mut delay = Duration::from_millis(50);
    loop {
        match ctx.bus.publish_batch(drafts.clone()).await {
            Ok(ids) => {
                ctx.stats.published(count);
                if let Some(&last) = ids.last() {
                    *ctx.last_published
                        .lock()
                        .expect("no code panics while holding it") = Some(last);
                }
                return Published::Done;
            }
            // Any failure of the log but a closed one is retried, also one whose outcome
            // is unknown (a shared log timed out): the events may then be published
            // twice, which at-least-once allows, where giving up could lose them.
            Err(err @ PublishError::Log(_))
                if !matches!(err, PublishError::Log(LogError::Closed)) =>
            {
                tracing::warn!(error = %chain(&err), retry_in = ?delay, "bus log unavailable, retrying");
                if stop.sleep(delay).await {
                    return Published::Stopped;
                }
                delay = (delay * 2).min(ctx.max_backoff);
            }
            Err(err) => {
                tracing::error!(error = %chain(&err), events = count, "bus refused the events");
                return Published::Done;
            }
        }
    }
}

/// Runs a query with [`QUERY_TIMEOUT`], turning any failure into its message.
pub(super) async fn within<T>(
    query: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(chain(&err)),
        Err(_) => Err(format!(
            "query took over {} s, connection presumed dead",
            QUERY_TIMEOUT.as_secs()
        )),
    }
}

/// `delay` plus up to 25 %, so sources restarted together do not retry in step.
pub(super) fn jitter(delay: Duration) -> Duration {
    let random = RandomState::new().hash_one(0u8);
    delay + delay.mul_f64((random % 1000) as f64 / 4000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        let base = Duration::from_millis(400);
        for _ in 0..100 {
            let d = jitter(base);
            assert!(d >= base && d <= base + base / 4, "{d:?}");
        }
    }

    #[tokio::test]
    async fn oversized_drafts_are_bad_payloads() {
        let bus = Bus::builder().max_event_bytes(16).build();
        let stats = Arc::new(Stats::new("t", "notify"));
        let ctx = Ctx::new(bus, Arc::clone(&stats), Duration::from_secs(1));
        let (_tx, rx) = watch::channel(false);
        let topic = herald_bus::Topic::new("t").unwrap();
        let drafts = vec![
            Draft::new(topic.clone(), "small"),
            Draft::new(topic, "x".repeat(100)),
        ];
        assert_eq!(
            publish(&ctx, drafts, &mut Stop::new(rx)).await,
            Published::Done
        );
        let status = crate::SourceMonitor::new(stats).status();
        assert_eq!((status.published, status.bad_payloads), (1, 1));
    }
}
