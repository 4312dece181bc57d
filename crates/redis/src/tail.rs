//! Following the stream: one task per log reads new entries with `XREAD BLOCK` on a
//! connection of its own and broadcasts them, so [`Log::tail`](herald_bus::Log::tail)
//! can be called any number of times, synchronously.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use herald_bus::{EventId, Tail, TailItem};
use redis::{Value, aio::MultiplexedConnection};
use tokio::sync::broadcast;

use crate::{
    error::Error,
    script::{self, Entry},
    shared::Shared,
};

/// How long one `XREAD` waits for new entries: short enough that a change of epoch is
/// noticed within about a second even when nothing is appended.
const BLOCK: Duration = Duration::from_secs(1);
/// Most entries one `XREAD` returns.
const BATCH: usize = 512;
/// Reconnection backoff: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// A new follower: it starts at the newest event this node knows of and skips what the
/// task forwards up to there.
pub(crate) fn subscribe(shared: &Shared) -> Tail {
    // Subscribe under the lock the task sends under, so `start` and the first item
    // received are adjacent.
    let heads = shared.heads();
    let receiver = shared.tail.subscribe();
    let start = heads.known;
    drop(heads);
    let items = futures_util::stream::unfold(receiver, move |mut receiver| async move {
        loop {
            let item = match receiver.recv().await {
                // Appended by this node, or seen by a read, before the tail started.
                Ok(TailItem::Event(e))
                    if e.id().epoch() == start.epoch() && e.id().offset() <= start.offset() =>
                {
                    continue;
                }
                Ok(item) => item,
                Err(broadcast::error::RecvError::Lagged(_)) => TailItem::Lagged,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((item, receiver));
        }
    });
    Tail {
        start,
        items: items.boxed(),
    }
}

/// Follows the stream after `start` until aborted.
///
/// On any failure it reconnects with backoff and goes on from the last entry it
/// forwarded: if the log still has the same epoch and nothing in between was trimmed,
/// nothing was missed and nobody needs to re-read. Otherwise, whenever entries are not
/// contiguous (trimmed before the tail read them) or the epoch changed (Redis lost the
/// log), it sends [`TailItem::Lagged`] so subscribers re-read the log.
pub(crate) async fn follow(shared: Arc<Shared>, start: EventId) {
    let mut at = start;
    let mut connection: Option<MultiplexedConnection> = None;
    let mut synced = true;
    let mut backoff = BACKOFF.0;
    loop {
        let step = async {
            let conn = match &mut connection {
                Some(conn) => conn,
                None => connection.insert(
                    shared
                        .redis
                        .dedicated(BLOCK + shared.redis.timeout())
                        .await?,
                ),
            };
            if !synced {
                resync(&shared, &mut at).await?;
                synced = true;
            }
            follow_once(&shared, conn, &mut at, &mut synced).await
        };
        match step.await {
            Ok(()) => backoff = BACKOFF.0,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "redis log tail failed; reconnecting");
                shared
                    .redis
                    .counters()
                    .tail_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                connection = None;
                synced = false;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        }
    }
}

/// Reads the log's epoch and head again (starting a new life if Redis lost it); when the
/// epoch changed, moves to the new head and tells followers they lagged.
async fn resync(shared: &Shared, at: &mut EventId) -> Result<(), Error> {
    let reply = shared.read_script("tail", None, 0).await?;
    if reply.epoch != at.epoch() {
        tracing::warn!(
            old = at.epoch(),
            new = reply.epoch,
            "redis log has a new epoch"
        );
        *at = EventId::new(reply.epoch, reply.head);
        let mut heads = shared.heads();
        let _ = shared.tail.send(TailItem::Lagged);
        heads.known = *at;
        heads.tailed = *at;
    }
    Ok(())
}

/// One blocking read, then the epoch and the head, pipelined: Redis answers the `GET`s
/// only after the `XREAD`, so an unchanged epoch proves the entries are of this life.
async fn follow_once(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    at: &mut EventId,
    synced: &mut bool,
) -> Result<(), Error> {
    let after = if at.offset() == 0 {
        "0-0".to_owned()
    } else {
        script::stream_id(at.offset())
    };
    let mut pipe = redis::pipe();
    pipe.cmd("XREAD")
        .arg("BLOCK")
        .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(1000))
        .arg("COUNT")
        .arg(BATCH)
        .arg("STREAMS")
        .arg(&shared.keys.log)
        .arg(after)
        .cmd("GET")
        .arg(&shared.keys.epoch)
        .cmd("GET")
        .arg(&shared.keys.seq);
    let wait = BLOCK + shared.redis.timeout();
    let (entries, epoch, head): (Value, Value, Option<u64>) =
        tokio::time::timeout(wait, pipe.query_async(conn))
            .await
            .map_err(|_| Error::Timeout {
                op: "tail",
                after: wait,
            })?
            .map_err(|source| Error::Redis { op: "tail", source })?;
    if script::epoch_of("tail", epoch)? != Some(at.epoch()) {
        *synced = false;
        return Ok(());
    }
    let entries = script::xread_reply(entries)?;
    forward(shared, at, entries);
    if let Some(head) = head {
        shared.observe(EventId::new(at.epoch(), head));
    }
    Ok(())
}

/// Broadcasts `entries` in order (see [`items`]) and moves `at` past them.
fn forward(shared: &Shared, at: &mut EventId, entries: Vec<Entry>) {
    let (items, last) = items(*at, entries);
    *at = last;
    let mut heads = shared.heads();
    for item in items {
        // No receiver is fine: nobody follows the log yet.
        let _ = shared.tail.send(item);
    }
    if heads.known.epoch() != last.epoch() || heads.known.offset() < last.offset() {
        heads.known = last;
    }
    heads.tailed = last;
}

/// Decodes the entries after `at` into tail items, with a `Lagged` before any entry that
/// does not directly follow the one before (entries were trimmed unread). Returns them
/// and the position of the last entry.
fn items(at: EventId, entries: Vec<Entry>) -> (Vec<TailItem>, EventId) {
    let epoch = at.epoch();
    let mut items = Vec::with_capacity(entries.len() + 1);
    let mut last = at.offset();
    for entry in entries {
        let offset = entry.offset;
        if offset <= last {
            continue;
        }
        if offset != last + 1 {
            tracing::warn!(
                after = last,
                next = offset,
                "redis log tail skipped trimmed entries"
            );
            items.push(TailItem::Lagged);
        }
        match entry.into_event(epoch) {
            Ok(event) => items.push(TailItem::Event(event)),
            Err(error) => tracing::warn!(offset, %error, "skipping an undecodable stream entry"),
        }
        last = offset;
    }
    (items, EventId::new(epoch, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64) -> Entry {
        Entry::new(offset, 0, "t", br#"{"topic":"t","data":1}"#.to_vec())
    }

    fn kinds(items: &[TailItem]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                TailItem::Event(e) => e.id().to_string(),
                TailItem::Lagged => "lagged".to_owned(),
            })
            .collect()
    }

    #[test]
    fn holes_are_reported_as_lag() {
        let at = EventId::new(7, 3);
        let (got, last) = items(at, vec![entry(4), entry(5)]);
        assert_eq!(
            (kinds(&got), last),
            (vec!["7-4".into(), "7-5".into()], EventId::new(7, 5))
        );
        let (got, last) = items(at, vec![entry(3), entry(6), entry(7), entry(9)]);
        assert_eq!(
            kinds(&got),
            ["lagged", "7-6", "7-7", "lagged", "7-9"],
            "entries already seen are skipped, each hole is reported"
        );
        assert_eq!(last, EventId::new(7, 9));
    }

    #[test]
    fn undecodable_entries_are_skipped_but_passed() {
        let bad = Entry::new(4, 0, "t", b"not json".to_vec());
        let (got, last) = items(EventId::new(1, 3), vec![bad, entry(5)]);
        assert_eq!(
            (kinds(&got), last),
            (vec!["1-5".into()], EventId::new(1, 5))
        );
    }
}
