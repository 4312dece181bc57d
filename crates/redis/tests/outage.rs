//! Redis going away: calls fail fast instead of hanging, an append whose reply was lost
//! is settled (found stored, or reported unknown, never "unavailable" and stored), and a
//! Redis that comes back empty is a new life of the log (new epoch, tail lagged, old ids
//! unknown).
//!
//! These tests run a `redis-server` of their own; they never touch the shared one.

mod support;

use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream::BoxStream};
use herald_bus::{
    ConnectionId, Draft, EventId, Filter, Gap, Log, LogError, Selector, TailItem, Topic,
};
use herald_redis::{RedisLog, RedisOptions};
use support::{HoldingProxy, PrivateRedis};

const CALL_TIMEOUT: Duration = Duration::from_millis(300);
/// Slack for scheduling on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(700);
/// The longest an append takes when its reply is lost: its call, then up to three more
/// call timeouts settling it.
const SETTLED: Duration = Duration::from_millis(4 * 300);

fn draft(data: &str) -> Draft {
    Draft::new(Topic::new("t").unwrap(), data)
}

fn options(url: &str) -> RedisOptions {
    RedisOptions {
        call_timeout: CALL_TIMEOUT,
        ..support::options(url)
    }
}

fn source(error: &LogError) -> &herald_redis::Error {
    match error {
        LogError::Unavailable(source) | LogError::OutcomeUnknown(source) => {
            source.downcast_ref().expect("a herald_redis::Error")
        }
        other => panic!("expected Unavailable or OutcomeUnknown, got {other:?}"),
    }
}

fn anyone() -> Filter {
    Filter::new(
        vec![Selector::new("t").unwrap()],
        None,
        ConnectionId::random(),
    )
}

/// Every event in the log: id and data.
async fn history(log: &RedisLog) -> Vec<(EventId, String)> {
    let page = log.read(None, &anyone(), 100).await.unwrap();
    assert!(!page.more);
    page.events
        .iter()
        .map(|e| (e.id(), e.data().as_str().to_owned()))
        .collect()
}

/// What the tail delivers up to and including the event `last`.
async fn tailed_until(
    tail: &mut BoxStream<'static, TailItem>,
    last: EventId,
) -> Vec<(EventId, String)> {
    let mut got = Vec::new();
    while got.last().is_none_or(|(id, _)| *id != last) {
        match tokio::time::timeout(Duration::from_secs(10), tail.next()).await {
            Ok(Some(TailItem::Event(e))) => got.push((e.id(), e.data().as_str().to_owned())),
            // A tail that reconnected after the freeze says so only if it may have
            // missed something; nothing was trimmed here.
            other => panic!("expected an event, got {other:?} after {got:?}"),
        }
    }
    got
}

/// Appends until it works again (the connection comes back on its own), for a while.
async fn append_eventually(log: &RedisLog, data: &str) -> herald_bus::EventId {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match log.append(vec![draft(data)]).await {
            Ok(events) => return events[0].id(),
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("append never recovered: {error}"),
        }
    }
}

#[tokio::test]
async fn connect_fails_fast_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let error = RedisLog::connect(options(&format!("redis://127.0.0.1:{port}")))
        .await
        .unwrap_err();
    assert!(matches!(error, LogError::Unavailable(_)), "{error:?}");
    assert!(
        started.elapsed() < CALL_TIMEOUT + SLACK,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_restarted_empty_redis_is_a_new_life_of_the_log() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let log = RedisLog::connect(options(&redis.url())).await.unwrap();
    let mut tail = log.tail().items;
    let before = log.append(vec![draft("before")]).await.unwrap()[0].id();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(5), tail.next()).await,
        Ok(Some(TailItem::Event(e))) if e.id() == before
    ));

    redis.stop();
    // The first append may have been written to the dying connection: it cannot know
    // whether Redis ran it, and there is no Redis to settle it with, so after trying for
    // three call timeouts it says "unknown" (or "unavailable", if the client already knew
    // the connection was gone). The next ones are refused outright.
    let started = Instant::now();
    let error = log.append(vec![draft("lost")]).await.unwrap_err();
    assert!(
        started.elapsed() < SETTLED + SLACK,
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            error,
            LogError::OutcomeUnknown(_) | LogError::Unavailable(_)
        ),
        "{error:?}"
    );
    for _ in 0..2 {
        let started = Instant::now();
        let error = log.append(vec![draft("lost")]).await.unwrap_err();
        assert!(
            started.elapsed() < CALL_TIMEOUT + SLACK,
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(error, LogError::Unavailable(_)), "{error:?}");
        assert!(!source(&error).is_outcome_unknown(), "{error:?}");
    }

    redis.restart();
    let after = append_eventually(&log, "after").await;
    assert_ne!(
        after.epoch(),
        before.epoch(),
        "an empty Redis is a new life"
    );
    assert_eq!(after.offset(), 1);

    let lagged = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(item) = tail.next().await {
            if matches!(item, TailItem::Lagged) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(lagged, Ok(true), "the tail tells its followers to re-read");
    assert_eq!(log.epoch(), after.epoch());

    let page = log.read(Some(before), &anyone(), 10).await.unwrap();
    assert_eq!(page.gap, Some(Gap::UnknownPosition));
    let data: Vec<&str> = page.events.iter().map(|e| e.data().as_str()).collect();
    assert_eq!(data, ["after"], "the failed appends were not stored");
    assert!(log.stats().tail_failures >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_that_timed_out_is_found_stored_once_redis_answers() {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let log = RedisLog::connect(options(&redis.url())).await.unwrap();
    let mut tail = log.tail().items;
    let first = log.append(vec![draft("1")]).await.unwrap()[0].id();

    redis.freeze();
    let started = Instant::now();
    let append = tokio::spawn({
        let log = log.clone();
        async move { log.append(vec![draft("2a"), draft("2b")]).await }
    });
    // The append times out, and its settling waits for an answer...
    tokio::time::sleep(CALL_TIMEOUT + Duration::from_millis(200)).await;
    assert!(!append.is_finished());
    // ...which comes once Redis wakes up. It runs the append first: the script was in its
    // socket before the freeze, while the settling is on a new connection that has not
    // even been set up.
    redis.thaw();
    let events = append.await.unwrap().expect("the append was found stored");
    let took = started.elapsed();
    assert!(took > CALL_TIMEOUT && took < SETTLED + SLACK, "{took:?}");
    let second: Vec<EventId> = events.iter().map(|e| e.id()).collect();
    assert_eq!(
        second,
        [
            EventId::new(first.epoch(), first.offset() + 1),
            EventId::new(first.epoch(), first.offset() + 2)
        ]
    );
    assert_eq!(events[1].data().as_str(), "2b");
    let stats = log.stats();
    assert!(stats.timeouts >= 1, "{stats:?}");
    assert_eq!(
        (
            stats.appends_recovered,
            stats.appends_fenced,
            stats.appends_unknown
        ),
        (1, 0, 0),
        "{stats:?}"
    );

    let third = log.append(vec![draft("3")]).await.unwrap()[0].id();
    let want = vec![
        (first, "1".to_owned()),
        (second[0], "2a".to_owned()),
        (second[1], "2b".to_owned()),
        (third, "3".to_owned()),
    ];
    assert_eq!(
        tailed_until(&mut tail, third).await,
        want,
        "delivered once, under the ids the append returned"
    );
    assert_eq!(history(&log).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_held_up_on_the_way_is_cancelled_and_never_stored() {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let proxy = HoldingProxy::start(redis.addr()).await;
    let log = RedisLog::connect(options(&proxy.url())).await.unwrap();
    let first = log.append(vec![draft("1")]).await.unwrap()[0].id();

    // The append's request is held up on the way: it times out, and its settling, on a
    // new connection, gets to Redis first and cancels it.
    proxy.hold();
    let started = Instant::now();
    let error = log.append(vec![draft("2")]).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        took > CALL_TIMEOUT && took < CALL_TIMEOUT + SLACK,
        "{took:?}"
    );
    assert!(matches!(error, LogError::Unavailable(_)), "{error:?}");
    let source = source(&error);
    assert!(
        matches!(source, herald_redis::Error::Fenced { .. }),
        "{source:?}"
    );
    assert!(source.is_timeout() && !source.is_outcome_unknown());
    assert_eq!(log.stats().appends_fenced, 1);

    // The request reaches Redis after all: the script runs, finds the fence, and stores
    // nothing.
    proxy.release();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy.replied("appended:") && !proxy.replied("cancelled") {
        assert!(Instant::now() < deadline, "the held append never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !proxy.replied("appended:"),
        "the held append ran over its fence"
    );
    let third = log.append(vec![draft("3")]).await.unwrap()[0].id();
    assert_eq!(
        third,
        EventId::new(first.epoch(), first.offset() + 1),
        "the cancelled append took no offset"
    );
    assert_eq!(
        history(&log).await,
        [(first, "1".to_owned()), (third, "3".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_that_cannot_be_settled_is_reported_unknown() {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let options = options(&redis.url());
    let log = RedisLog::connect(options.clone()).await.unwrap();
    let mut tail = log.tail().items;
    let first = log.append(vec![draft("1")]).await.unwrap()[0].id();

    redis.freeze();
    let started = Instant::now();
    let error = log.append(vec![draft("2")]).await.unwrap_err();
    let took = started.elapsed();
    assert!(took >= SETTLED && took < SETTLED + SLACK, "{took:?}");
    assert!(matches!(error, LogError::OutcomeUnknown(_)), "{error:?}");
    let source = source(&error);
    assert!(
        source.is_timeout() && source.is_outcome_unknown(),
        "{source}"
    );
    let stats = log.stats();
    assert!(
        stats.timeouts >= 1 && stats.failures >= 4,
        "the append and three settling calls: {stats:?}"
    );
    assert_eq!(stats.appends_unknown, 1, "{stats:?}");

    redis.thaw();
    let third = append_eventually(&log, "3").await;
    assert_eq!(
        third.epoch(),
        first.epoch(),
        "the same life: nothing was lost"
    );

    // What the node could not learn, Redis settles on its own: the append ran when Redis
    // woke up, or a settling call reached Redis first and fenced it off. Either way the
    // attempt key says which, and the log agrees with it. In practice the append runs:
    // it was in its socket before the freeze, while the settling calls that timed out
    // never got past setting up their connections.
    let mut conn = redis::Client::open(options.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let attempts = support::attempts(&mut conn, &options.key_prefix).await;
    let history = history(&log).await;
    let twos: Vec<EventId> = history
        .iter()
        .filter(|(_, data)| data == "2")
        .map(|(id, _)| *id)
        .collect();
    match twos[..] {
        [two] => {
            let recorded = format!("appended:{}:{}:1:", two.epoch(), two.offset());
            assert!(
                attempts.values().any(|v| v.starts_with(&recorded)),
                "{attempts:?}"
            );
            assert_eq!(
                tailed_until(&mut tail, third).await,
                [
                    (first, "1".to_owned()),
                    (two, "2".to_owned()),
                    (third, "3".to_owned())
                ],
                "delivered once"
            );
        }
        [] => assert!(attempts.values().any(|v| v == "cancelled"), "{attempts:?}"),
        _ => panic!("stored twice: {history:?}"),
    }
    assert_eq!(
        attempts.len(),
        3,
        "one attempt key per append: {attempts:?}"
    );
}
