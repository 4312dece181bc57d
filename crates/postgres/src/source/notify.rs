//! Notify mode: `LISTEN`, turn each notification into an event, and after a reconnect
//! tell subscribers that what happened meanwhile is gone.

use std::{collections::BTreeSet, time::Duration};

use herald_bus::{Draft, Reset, ResetReason, Topic, control};
use tokio::time::MissedTickBehavior;

use super::{
    End,
    conn::Conn,
    publish::{Ctx, Published, Stop, publish, within},
};
use crate::{Ident, MapError, Mapping, error::chain};

/// Most notifications turned into one published batch.
const BATCH: usize = 256;
/// Most topics remembered for reconnect notices, beyond the mapping's known ones.
const MAX_SEEN: usize = 10_000;

/// The notify-mode state kept across reconnects.
pub(super) struct Listener {
    channels: Vec<Ident>,
    mapping: Mapping,
    health_interval: Duration,
    /// Topics published to so far: they get a reset notice after a reconnect.
    seen: BTreeSet<Topic>,
}

impl Listener {
    pub(super) fn new(channels: Vec<Ident>, mapping: Mapping, health_interval: Duration) -> Self {
        Self {
            channels,
            mapping,
            health_interval,
            seen: BTreeSet::new(),
        }
    }

    /// `LISTEN`s. After a reconnect the caller then sends the reset notice: listening
    /// comes first, so every change after the notice is delivered and a client that
    /// refetches when it sees the notice misses nothing.
    pub(super) async fn setup(&mut self, conn: &mut Conn) -> Result<(), String> {
        within(conn.listen(&self.channels)).await
    }

    /// Publishes `herald.reset` with `{"reason":"source_reconnected","missed_since":"<id>"}`
    /// on every topic this source produces: the mapping's known topics and those it has
    /// published to. `missed_since` is the id of the newest event the source published
    /// before the outage (empty when it had published none): changes after it may be lost.
    pub(super) async fn announce_reset(&self, ctx: &Ctx) {
        let mut topics = self.mapping.known_topics();
        let seen: Vec<Topic> = self
            .seen
            .iter()
            .filter(|t| !topics.contains(t))
            .cloned()
            .collect();
        topics.extend(seen);
        if topics.is_empty() {
            tracing::warn!(
                "reconnected, but no topic is known yet to send herald.reset to; \
                 name the tables in the mapping so subscribers learn of the outage"
            );
            return;
        }
        let reset = Reset {
            reason: ResetReason::SourceReconnected,
            missed_since: ctx
                .last_published()
                .map(|id| id.to_string())
                .unwrap_or_default(),
        };
        let drafts = topics
            .into_iter()
            .map(|topic| control::reset_draft(topic, &reset))
            .collect();
        // One quick batch: a stop asked for meanwhile is seen right after it.
        let (_never, rx) = tokio::sync::watch::channel(false);
        publish(ctx, drafts, &mut Stop::new(rx)).await;
    }

    /// Receives notifications until the connection fails or a stop is asked for.
    pub(super) async fn serve(&mut self, conn: &mut Conn, ctx: &Ctx, stop: &mut Stop) -> End {
        let mut health = tokio::time::interval(self.health_interval);
        health.set_missed_tick_behavior(MissedTickBehavior::Delay);
        health.tick().await;
        loop {
            let first = tokio::select! {
                biased;
                () = stop.wait() => return End::Stopped,
                message = conn.recv() => message,
                _ = health.tick() => {
                    if let Err(error) = within(conn.client.batch_execute("SELECT 1")).await {
                        return End::Lost(error);
                    }
                    continue;
                }
            };
            let mut batch = Vec::new();
            let mut failure = None;
            match first {
                Some(Ok(n)) => batch.push(n),
                Some(Err(err)) => return End::Lost(chain(&err)),
                None => return End::Lost("connection closed".to_owned()),
            }
            // Whatever else already arrived goes in the same batch, in order.
            while batch.len() < BATCH {
                match conn.try_recv() {
                    Some(Ok(n)) => batch.push(n),
                    Some(Err(err)) => {
                        failure = Some(chain(&err));
                        break;
                    }
                    None => break,
                }
            }
            ctx.stats.notifications(batch.len() as u64);
            let drafts = batch
                .iter()
                .filter_map(|n| self.map(ctx, n.channel(), n.payload()))
                .collect();
            if publish(ctx, drafts, stop).await == Published::Stopped {
                return End::Stopped;
            }
            if let Some(error) = failure {
                return End::Lost(error);
            }
        }
    }

    fn map(&mut self, ctx: &Ctx, channel: &str, payload: &str) -> Option<Draft> {
        let result = serde_json::from_str(payload)
            .map_err(|_| MapError::NotJson)
            .and_then(|value| self.mapping.to_draft(value));
        match result {
            Ok(draft) => {
                if self.seen.len() < MAX_SEEN && !self.seen.contains(draft.topic()) {
                    self.seen.insert(draft.topic().clone());
                }
                Some(draft)
            }
            Err(error) => {
                ctx.bad_payload(&format!("channel {channel}"), Some(payload), &error);
                None
            }
        }
    }
}
