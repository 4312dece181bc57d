//! Retention on the whole stream: by count and by age, with exact per-topic counts.

mod support;

use std::time::Duration;

use herald_bus::{ConnectionId, Draft, Filter, Gap, Log, Selector, Topic};
use herald_redis::RedisOptions;

fn draft(topic: &str) -> Draft {
    Draft::new(Topic::new(topic).unwrap(), "d")
}

fn anyone(selector: &str) -> Filter {
    Filter::new(
        vec![Selector::new(selector).unwrap()],
        None,
        ConnectionId::random(),
    )
}

async fn retained(log: &impl Log) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = log
        .retained()
        .await
        .unwrap()
        .into_iter()
        .map(|(t, n)| (t.as_str().to_owned(), n))
        .collect();
    counts.sort();
    counts
}

#[tokio::test]
async fn count_retention_keeps_exact_counts_per_topic() {
    let url = support::redis_url();
    if !support::reachable(&url) {
        return;
    }
    let options = RedisOptions {
        max_len: 4,
        ..support::options(&url)
    };
    let log = support::connect(&options).await;
    log.append(vec![draft("a"), draft("a"), draft("b")])
        .await
        .unwrap();
    assert_eq!(retained(&log).await, [("a".into(), 2), ("b".into(), 1)]);
    let last = log
        .append(vec![draft("c"), draft("c"), draft("c")])
        .await
        .unwrap();
    assert_eq!(
        retained(&log).await,
        [("b".into(), 1), ("c".into(), 3)],
        "the two oldest (both `a`) were trimmed"
    );
    let page = log.read(None, &anyone(">"), 10).await.unwrap();
    assert_eq!(page.events.len(), 4);
    assert_eq!(page.next, last[2].id());
    support::cleanup(&[options]).await;
}

#[tokio::test]
async fn age_retention_expires_a_quiet_log() {
    let url = support::redis_url();
    if !support::reachable(&url) {
        return;
    }
    let options = RedisOptions {
        max_age: Duration::from_millis(200),
        ..support::options(&url)
    };
    let log = support::connect(&options).await;
    let events = log.append(vec![draft("old"), draft("old")]).await.unwrap();
    // Nothing is appended from here on: the sweep alone expires them.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        retained(&log).await.is_empty(),
        "{:?}",
        retained(&log).await
    );
    let page = log
        .read(Some(events[0].id()), &anyone("old"), 10)
        .await
        .unwrap();
    assert_eq!((page.events.len(), page.gap), (0, Some(Gap::Expired)));
    assert_eq!(page.next, events[1].id(), "the page covers what expired");
    let page = log
        .read(Some(events[1].id()), &anyone("old"), 10)
        .await
        .unwrap();
    assert_eq!(page.gap, None, "nothing was lost after the newest");
    support::cleanup(&[options]).await;
}
