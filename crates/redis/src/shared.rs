//! What every handle and background task of one log shares: the connection, the
//! scripts, and this node's view of the head.

use std::{
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use herald_bus::{EventId, TailItem};
use redis::Value;
use tokio::sync::broadcast;

use crate::{
    RedisOptions,
    client::Redis,
    error::Error,
    options::Keys,
    script::{self, ReadReply, Scripts},
};

/// Most entries one script call drops for retention beyond those its own append adds, so
/// a burst of expiry (after a quiet hour, or a lowered `max_len`) is spread over several
/// calls instead of blocking Redis in one.
pub(crate) const TRIM_BUDGET: usize = 4096;

/// How long an append's attempt key lives, at least: far longer than the append and its
/// settling take (four call timeouts; it is stretched for long timeouts), so that an
/// append request still on its way to Redis when its settling cancelled it finds the
/// cancellation there.
pub(crate) const ATTEMPT_TTL: Duration = Duration::from_secs(120);

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) redis: Redis,
    pub(crate) keys: Keys,
    pub(crate) options: RedisOptions,
    pub(crate) scripts: Scripts,
    /// One lock for the tail's sends and the positions below, so that a new tail's start
    /// and the first item it receives are adjacent. Never held across an `.await`.
    heads: Mutex<Heads>,
    pub(crate) tail: broadcast::Sender<TailItem>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    /// The newest event this node knows was appended (by its own appends, or seen by the
    /// tail): where a new tail starts.
    pub(crate) known: EventId,
    /// The last entry the tail task forwarded.
    pub(crate) tailed: EventId,
}

/// A random epoch for a new life of the log; never 0, so a hand-written `0-N` id is
/// always foreign. Every script call carries one, used only if the log has none.
fn fresh_epoch() -> String {
    uuid::Uuid::new_v4().as_u64_pair().0.max(1).to_string()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Shared {
    pub(crate) fn new(redis: Redis, options: RedisOptions, tail_capacity: usize) -> Self {
        let (tail, _) = broadcast::channel(tail_capacity);
        let zero = EventId::new(0, 0);
        Self {
            redis,
            keys: options.keys(),
            options,
            scripts: Scripts::new(),
            heads: Mutex::new(Heads {
                known: zero,
                tailed: zero,
            }),
            tail,
        }
    }

    pub(crate) fn heads(&self) -> MutexGuard<'_, Heads> {
        self.heads
            .lock()
            .expect("no code panics while holding the heads lock")
    }

    /// An invocation of `script` with the log's keys and a fresh epoch as `ARGV[1]`.
    pub(crate) fn invocation<'a>(&self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for key in self.keys.all() {
            invocation.key(key);
        }
        invocation.arg(fresh_epoch());
        invocation
    }

    /// Adds the retention arguments (`ARGV[2..4]`) the append and trim scripts take.
    pub(crate) fn retention_args(&self, invocation: &mut redis::ScriptInvocation<'_>) {
        invocation
            .arg(self.options.max_len.max(1))
            .arg(millis(self.options.max_age))
            .arg(TRIM_BUDGET);
    }

    /// The time to live of an attempt key, in ms: [`ATTEMPT_TTL`], or ten call timeouts
    /// when that is longer.
    pub(crate) fn attempt_ttl_ms(&self) -> u64 {
        millis(ATTEMPT_TTL.max(self.redis.timeout().saturating_mul(10)))
    }

    /// Runs the read script: the epoch and head, and up to `count` entries after `after`
    /// (see `lua/read.lua`).
    pub(crate) async fn read_script(
        &self,
        op: &'static str,
        after: Option<EventId>,
        count: usize,
    ) -> Result<ReadReply, Error> {
        let mut invocation = self.invocation(&self.scripts.read);
        match after {
            Some(id) => invocation.arg(id.epoch().to_string()).arg(id.offset()),
            None => invocation.arg("").arg(0),
        };
        invocation.arg(count);
        let value: Value = self
            .redis
            .call(
                op,
                |mut c| async move { invocation.invoke_async(&mut c).await },
            )
            .await?;
        let reply = script::read_reply(value)?;
        self.observe(EventId::new(reply.epoch, reply.head));
        Ok(reply)
    }

    /// Applies retention; returns how many entries were dropped.
    pub(crate) async fn trim(&self) -> Result<u64, Error> {
        let mut invocation = self.invocation(&self.scripts.trim);
        self.retention_args(&mut invocation);
        self.redis
            .call("trim", |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await
    }

    /// Notes that the log's head is at least `head` (ignored in another epoch: only the
    /// tail moves this node to a new life, with a `Lagged`).
    pub(crate) fn observe(&self, head: EventId) {
        let mut heads = self.heads();
        if head.epoch() == heads.known.epoch() && head.offset() > heads.known.offset() {
            heads.known = head;
        }
    }
}

/// Applies age retention every second (or every `max_age`, if shorter), so history
/// expires on a quiet log too, until the task is aborted.
pub(crate) async fn sweep(shared: std::sync::Arc<Shared>) {
    let period = shared
        .options
        .max_age
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match shared.trim().await {
            Ok(0) => {}
            Ok(dropped) => tracing::debug!(dropped, "redis log retention"),
            Err(error) => tracing::debug!(%error, "redis log retention sweep failed"),
        }
    }
}
