//! [`RedisLog`]: the [`Log`] on a Redis Stream.

use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use herald_bus::{
    Draft, Event, EventId, Filter, Log, LogError, Page, Tail, Topic,
    log::{Scan, Start},
};
use redis::Value;
use tokio::{task::AbortHandle, time::Instant};

use crate::{
    RedisOptions, Stats,
    client::Redis,
    error::Error,
    script::{self, Attempt, Stored},
    shared::{self, Shared},
    tail,
};

/// A read scans at most as many entries as the read rule of every log allows
/// ([`Scan`]), and never more than this many, since every scanned entry crosses the
/// network (events may be up to 64 KiB): topics are filtered here, not in Redis.
const MAX_SCAN: usize = 1024;
/// Events the tail buffers for a slow dispatcher before it reports
/// [`TailItem::Lagged`](herald_bus::TailItem::Lagged): a pointer each.
const TAIL_CAPACITY: usize = 16 * 1024;
/// An append whose reply was lost is settled for up to this many call timeouts...
const SETTLE_TIMEOUTS: u32 = 3;
/// ...pausing between tries that failed (doubling from the first to the last).
const SETTLE_PAUSE: (Duration, Duration) = (Duration::from_millis(20), Duration::from_millis(500));

/// A [`Log`] kept in a Redis Stream, shared by every node that uses the same key prefix.
///
/// Offsets come from one counter in Redis, so they are global: an id published on one
/// node is a position on every node, and `Last-Event-ID` resume works anywhere. The
/// epoch lives in Redis too; when Redis loses the log (restarted without persistence,
/// flushed), the next call starts a new life with a new epoch, and ids from before are
/// answered with [`Gap::UnknownPosition`](herald_bus::Gap::UnknownPosition).
///
/// Cloning gives another handle to the same log. Each log runs two tasks, the tail
/// follower (on a connection of its own) and a retention sweep; they stop when the last
/// handle is dropped.
///
/// # Retention
///
/// Retention applies to the whole stream, not per topic: `max_len` entries across all
/// topics and `max_age`. A read whose position is older than the oldest retained entry
/// reports [`Gap::Expired`](herald_bus::Gap::Expired) whatever the topics of the trimmed entries, so a subscriber
/// may get a reset for events it would not have received (never the other way round).
///
/// # Tail
///
/// [`Log::tail`] is fed by one task per log that reads the stream with `XREAD BLOCK` on
/// a connection of its own, so every node sees every append, in offset order. When that
/// connection fails the task reconnects (backoff 100 ms doubling to 5 s) and goes on from
/// the last entry it read; it sends [`TailItem::Lagged`](herald_bus::TailItem::Lagged)
/// only when something may have been missed: entries trimmed before it read them, or a
/// new epoch. A blip that lost nothing costs the subscribers nothing.
///
/// Event times ([`Event::time_ms`]) are Redis's clock, the same for every node.
///
/// # Failures
///
/// Every Redis call is bounded by [`RedisOptions::call_timeout`]; a read that fails
/// returns [`LogError::Unavailable`], whose source is an [`Error`](crate::Error).
///
/// An append is one Lua script, so it is stored whole or not at all; but when its reply is
/// lost (the call timed out, or the connection broke after the script was sent) the script
/// may still run, later. So appends are fenced: each carries a random attempt id, and the
/// script appends only if the key `{prefix}:attempt:<id>` does not exist yet, leaving its
/// outcome there (ids and time). After a lost reply the node settles the append with
/// another script that reads the key, or, when there is none, sets it to `cancelled`, so
/// that the append script, should it arrive after all, stores nothing. Then the append
/// returns:
///
/// - the events, as if the reply had come (the same ids and time), when it was stored;
/// - [`LogError::Unavailable`] with [`Error::Fenced`](crate::Error::Fenced) as its
///   source when it was cancelled: nothing was stored and nothing ever will be, so
///   publishing again is safe;
/// - [`LogError::OutcomeUnknown`] when the settling got no answer either within three
///   more call timeouts (Redis frozen or unreachable all along): the events may be stored
///   already, or be stored and delivered when Redis gets to the script.
///
/// [`Stats`] counts each of the three (`appends_recovered`, `appends_fenced`,
/// `appends_unknown`). An append answers within about four call timeouts.
///
/// The fence lasts as long as the attempt key, two minutes (or ten call timeouts, if
/// longer): only an append request held up between the node and Redis for longer than
/// that, after its settling got through, could still be stored unannounced. It also needs
/// the keys not to be evicted (see the crate docs), and it is as durable as Redis's
/// writes: a failover that loses the last writes loses attempt keys with them.
///
/// # Examples
///
/// ```no_run
/// use herald_bus::{Bus, Draft, Topic};
/// use herald_redis::{RedisLog, RedisOptions};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let log = RedisLog::connect(RedisOptions::new("redis://127.0.0.1:6379")).await?;
/// let bus = Bus::builder().log(log.clone()).build();
/// let id = bus.publish(Draft::new(Topic::new("orders.created")?, "order 7")).await?;
/// assert_eq!(id.epoch(), log.epoch());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisLog {
    shared: Arc<Shared>,
    _tasks: Arc<Tasks>,
}

/// Aborts the log's background tasks when the last handle is dropped.
#[derive(Debug)]
struct Tasks(Vec<AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.iter().for_each(AbortHandle::abort);
    }
}

const _: () = {
    const fn assert_log<T: Log + Send + Sync>() {}
    assert_log::<RedisLog>();
};

impl RedisLog {
    /// Connects to the log described by `options`, creating it if Redis has none, and
    /// starts following it.
    ///
    /// # Errors
    ///
    /// [`LogError::Unavailable`] when the URL is not usable or Redis cannot be reached
    /// within the call timeout.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub async fn connect(options: RedisOptions) -> Result<Self, LogError> {
        let redis = Redis::connect(&options.url, options.call_timeout).await?;
        let shared = Arc::new(Shared::new(redis, options, TAIL_CAPACITY));
        let hello = shared.read_script("connect", None, 0).await?;
        let start = EventId::new(hello.epoch, hello.head);
        {
            let mut heads = shared.heads();
            heads.known = start;
            heads.tailed = start;
        }
        let follower = tokio::spawn(tail::follow(Arc::clone(&shared), start));
        let sweep = tokio::spawn(shared::sweep(Arc::clone(&shared)));
        Ok(Self {
            shared,
            _tasks: Arc::new(Tasks(vec![follower.abort_handle(), sweep.abort_handle()])),
        })
    }

    /// The epoch of the log's life as this node last saw it.
    pub fn epoch(&self) -> u64 {
        self.shared.heads().known.epoch()
    }

    /// Counters for metrics: calls, failures, latency and how far the tail is behind.
    pub fn stats(&self) -> Stats {
        let heads = *self.shared.heads();
        let mut stats = self.shared.redis.counters().snapshot();
        if heads.known.epoch() == heads.tailed.epoch() {
            stats.tail_lag = heads.known.offset().saturating_sub(heads.tailed.offset());
        }
        stats
    }

    /// The options it was connected with.
    pub fn options(&self) -> &RedisOptions {
        &self.shared.options
    }

    /// Appends `drafts` under the attempt key `attempt` (see `lua/append.lua`); when the
    /// reply is lost, settles the attempt.
    async fn append_as(
        &self,
        attempt: &str,
        drafts: Vec<Draft>,
    ) -> Result<Vec<Arc<Event>>, LogError> {
        let shared = &self.shared;
        let ttl = shared.attempt_ttl_ms();
        let mut invocation = shared.invocation(&shared.scripts.append);
        invocation.key(attempt);
        shared.retention_args(&mut invocation);
        invocation.arg(ttl);
        for draft in &drafts {
            let json = serde_json::to_vec(draft).expect("a draft always serialises to JSON");
            invocation.arg(json).arg(draft.topic().as_str());
        }
        let reply: Result<Value, Error> = shared
            .redis
            .call("append", |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await;
        let counters = shared.redis.counters();
        let outcome = match reply {
            // The script ran: its answer is what the attempt key holds.
            Ok(value) => script::attempt("append", value)
                .map_err(|error| LogError::OutcomeUnknown(error.into()))?,
            Err(error) if error.is_outcome_unknown() => match self.settle(attempt, ttl).await {
                Some(Attempt::Cancelled) => {
                    counters.appends_fenced.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, "redis append fenced off after its reply was lost");
                    return Err(LogError::unavailable(Error::Fenced {
                        op: "append",
                        source: Box::new(error),
                    }));
                }
                Some(Attempt::Appended(stored)) => {
                    counters.appends_recovered.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, "redis append found stored after its reply was lost");
                    Attempt::Appended(stored)
                }
                Some(Attempt::Pending) => Attempt::Pending,
                None => {
                    counters.appends_unknown.fetch_add(1, Ordering::Relaxed);
                    return Err(LogError::OutcomeUnknown(error.into()));
                }
            },
            Err(error) => return Err(error.into()),
        };
        match outcome {
            Attempt::Appended(stored) => self.stored(drafts, stored),
            // Seen only when the key existed before this append was sent.
            Attempt::Cancelled => Err(LogError::unavailable(Error::reply(
                "append",
                "the append was cancelled before it ran",
            ))),
            // The script failed half-way through, leaving whatever it wrote.
            Attempt::Pending => {
                counters.appends_unknown.fetch_add(1, Ordering::Relaxed);
                Err(LogError::OutcomeUnknown(
                    Error::reply("append", "the append script stopped before it finished").into(),
                ))
            }
        }
    }

    /// Learns the fate of an append whose reply was lost, fencing it off if it has not run
    /// (see `lua/settle.lua`). Tries for up to [`SETTLE_TIMEOUTS`] call timeouts; `None`
    /// when it could not.
    async fn settle(&self, attempt: &str, ttl: u64) -> Option<Attempt> {
        let shared = &self.shared;
        let deadline = Instant::now() + shared.redis.timeout().saturating_mul(SETTLE_TIMEOUTS);
        let mut pause = SETTLE_PAUSE.0;
        loop {
            let mut invocation = shared.scripts.settle.prepare_invoke();
            invocation.key(attempt).arg(ttl);
            let reply = shared
                .redis
                .call("settle", |mut c| async move {
                    invocation.invoke_async(&mut c).await
                })
                .await
                .and_then(|value| script::attempt("settle", value));
            let error = match reply {
                Ok(attempt) => return Some(attempt),
                Err(error) => error,
            };
            if matches!(error, Error::Reply { .. }) || Instant::now() + pause >= deadline {
                tracing::warn!(%error, "cannot learn whether a redis append was stored");
                return None;
            }
            tracing::debug!(%error, retry_in = ?pause, "settling a redis append failed");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(SETTLE_PAUSE.1);
        }
    }

    /// The events `drafts` became, stored as `stored` says.
    fn stored(&self, drafts: Vec<Draft>, stored: Stored) -> Result<Vec<Arc<Event>>, LogError> {
        if usize::try_from(stored.count).ok() != Some(drafts.len()) {
            return Err(LogError::OutcomeUnknown(
                Error::reply(
                    "append",
                    format!(
                        "{} events were stored for {} drafts",
                        stored.count,
                        drafts.len()
                    ),
                )
                .into(),
            ));
        }
        let events: Vec<Arc<Event>> = drafts
            .into_iter()
            .zip(stored.first..)
            .map(|(draft, offset)| {
                Arc::new(draft.into_event(EventId::new(stored.epoch, offset), stored.time_ms))
            })
            .collect();
        if let Some(last) = events.last() {
            self.shared.observe(last.id());
        }
        Ok(events)
    }
}

#[async_trait::async_trait]
impl Log for RedisLog {
    async fn append(&self, drafts: Vec<Draft>) -> Result<Vec<Arc<Event>>, LogError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let attempt = self.shared.keys.new_attempt();
        self.append_as(&attempt, drafts).await
    }

    async fn read(
        &self,
        after: Option<EventId>,
        filter: &Filter,
        limit: usize,
    ) -> Result<Page, LogError> {
        let mut scan = Scan::new(limit).cap(MAX_SCAN);
        let reply = self
            .shared
            .read_script("read", after, scan.budget())
            .await?;
        // Everything before the oldest retained entry was trimmed, whatever its topic.
        let lost_upto = reply.oldest.saturating_sub(1);
        let start = Start::new(after, reply.epoch, reply.head, lost_upto);
        let fetched_whole = reply.entries.len() == scan.budget();
        let mut stopped = false;
        for entry in reply.entries {
            if scan.is_full() {
                stopped = true;
                break;
            }
            let offset = entry.offset;
            // The topic is stored apart, so entries of other topics are never parsed.
            let event = if entry.topic().is_some_and(|t| filter.matches(&t)) {
                match entry.into_event(reply.epoch) {
                    Ok(event) => Some(event).filter(|event| filter.admits(event)),
                    Err(error) => {
                        tracing::warn!(offset, %error, "skipping an undecodable stream entry");
                        None
                    }
                }
            } else {
                None
            };
            scan.push(offset, event);
        }
        Ok(scan.page(&start, stopped || fetched_whole))
    }

    fn tail(&self) -> Tail {
        tail::subscribe(&self.shared)
    }

    /// Per topic, how many entries the stream holds; exact, kept by the scripts as they
    /// append and trim (one `HGETALL`).
    async fn retained(&self) -> Result<Vec<(Topic, usize)>, LogError> {
        let key = self.shared.keys.topics.clone();
        let counts: HashMap<String, i64> = self
            .shared
            .redis
            .call("retained", |mut c| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut c).await
            })
            .await?;
        Ok(counts
            .into_iter()
            .filter_map(|(topic, n)| {
                let n = usize::try_from(n).ok().filter(|&n| n > 0)?;
                Some((Topic::new(&topic).ok()?, n))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use herald_bus::{ConnectionId, Selector};
    use herald_testkit::services::{service_url, skip_or_fail};

    use super::*;

    fn draft(data: &str) -> Draft {
        Draft::new(Topic::new("t").unwrap(), data)
    }

    /// A log of its own on the shared Redis, or `None` (a reported skip).
    async fn log() -> Option<RedisLog> {
        let url = service_url("HERALD_REDIS_URL", "redis://127.0.0.1:6379");
        let options = RedisOptions {
            key_prefix: format!("herald-test:{}", uuid::Uuid::new_v4()),
            call_timeout: Duration::from_secs(2),
            ..RedisOptions::new(&url)
        };
        match RedisLog::connect(options).await {
            Ok(log) => Some(log),
            Err(error) => {
                skip_or_fail("redis", format!("{url}: {error}"));
                None
            }
        }
    }

    async fn command<T: redis::FromRedisValue>(log: &RedisLog, cmd: redis::Cmd) -> T {
        log.shared
            .redis
            .call("test", |mut c| async move { cmd.query_async(&mut c).await })
            .await
            .unwrap()
    }

    async fn stored(log: &RedisLog) -> Vec<(EventId, String)> {
        let filter = Filter::new(
            vec![Selector::new("t").unwrap()],
            None,
            ConnectionId::random(),
        );
        let page = log.read(None, &filter, 100).await.unwrap();
        page.events
            .iter()
            .map(|e| (e.id(), e.data().as_str().to_owned()))
            .collect()
    }

    async fn cleanup(log: &RedisLog, attempts: &[&str]) {
        let mut del = redis::cmd("DEL");
        del.arg(&log.shared.keys.all()[..]).arg(attempts);
        let _: i64 = command(log, del).await;
    }

    #[tokio::test]
    async fn an_append_runs_once_per_attempt_and_records_its_outcome() {
        let Some(log) = log().await else { return };
        let attempt = log.shared.keys.new_attempt();
        let first = log
            .append_as(&attempt, vec![draft("a"), draft("b")])
            .await
            .unwrap();
        let ids: Vec<EventId> = first.iter().map(|e| e.id()).collect();

        // The key holds the outcome, and lives a while.
        let value: String = command(&log, redis::cmd("GET").arg(&attempt).clone()).await;
        assert_eq!(
            value,
            format!(
                "appended:{}:{}:2:{}",
                ids[0].epoch(),
                ids[0].offset(),
                first[0].time_ms()
            )
        );
        let ttl: i64 = command(&log, redis::cmd("PTTL").arg(&attempt).clone()).await;
        assert!((100_000..=120_000).contains(&ttl), "{ttl}");

        // The same attempt again (a request that somehow ran twice) appends nothing and
        // answers the first outcome.
        let again = log
            .append_as(&attempt, vec![draft("a"), draft("b")])
            .await
            .unwrap();
        assert_eq!(again.iter().map(|e| e.id()).collect::<Vec<_>>(), ids);
        assert_eq!(
            stored(&log).await,
            [(ids[0], "a".to_owned()), (ids[1], "b".to_owned())]
        );

        // Settling a stored append finds it.
        let Some(Attempt::Appended(settled)) = log.settle(&attempt, 1000).await else {
            panic!("the append was stored");
        };
        assert_eq!((settled.first, settled.count), (ids[0].offset(), 2));
        cleanup(&log, &[&attempt]).await;
    }

    #[tokio::test]
    async fn a_settled_append_that_had_not_run_never_runs() {
        let Some(log) = log().await else { return };
        let before = log.append(vec![draft("before")]).await.unwrap()[0].id();

        // The reply of an append with this attempt was lost, and the settling got to
        // Redis before the append did: it cancels it.
        let attempt = log.shared.keys.new_attempt();
        let ttl = log.shared.attempt_ttl_ms();
        assert_eq!(log.settle(&attempt, ttl).await, Some(Attempt::Cancelled));
        assert_eq!(
            log.settle(&attempt, ttl).await,
            Some(Attempt::Cancelled),
            "settling again (an earlier try's reply was lost) finds it cancelled"
        );
        let value: String = command(&log, redis::cmd("GET").arg(&attempt).clone()).await;
        assert_eq!(value, "cancelled");

        // The append arrives late: the fence stops it.
        let error = log
            .append_as(&attempt, vec![draft("late")])
            .await
            .unwrap_err();
        assert!(matches!(error, LogError::Unavailable(_)), "{error:?}");
        assert_eq!(stored(&log).await, [(before, "before".to_owned())]);
        let next = log.append(vec![draft("next")]).await.unwrap()[0].id();
        assert_eq!(
            next.offset(),
            before.offset() + 1,
            "the fenced append took no offset"
        );
        cleanup(&log, &[&attempt]).await;
    }

    #[tokio::test]
    async fn an_append_whose_script_broke_off_is_unknown() {
        let Some(log) = log().await else { return };
        let attempt = log.shared.keys.new_attempt();
        let mut set = redis::cmd("SET");
        set.arg(&attempt).arg("pending").arg("PX").arg(60_000);
        let () = command(&log, set).await;
        let error = log.append_as(&attempt, vec![draft("x")]).await.unwrap_err();
        assert!(matches!(error, LogError::OutcomeUnknown(_)), "{error:?}");
        assert!(stored(&log).await.is_empty());
        assert_eq!(log.stats().appends_unknown, 1);
        cleanup(&log, &[&attempt]).await;
    }
}
