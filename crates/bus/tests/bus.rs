//! The bus's delivery guarantees through its public API.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use herald_bus::{
    Audience, Bus, ConnectionId, Delivery, Draft, PublishError, ResetReason, Resume, Retention,
    SubscribeError, UserId,
};
use support::*;

#[tokio::test]
async fn delivers_in_bus_order_across_topics_and_wildcards() {
    let bus = Bus::new();
    let mut sub = bus
        .subscribe(subscription(&["orders.*", "users.>", "exact"]))
        .unwrap();
    for (t, d) in [
        ("orders.created", "1"),
        ("orders.eu.created", "no"),
        ("users.1.n", "2"),
        ("exact", "3"),
        ("other", "no"),
        ("orders.paid", "4"),
    ] {
        publish(&bus, t, d).await;
    }
    assert_eq!(take_data(&mut sub, 4).await, ["1", "2", "3", "4"]);
    assert_quiet(&mut sub).await;
}

#[tokio::test]
async fn overlapping_selectors_deliver_each_event_once() {
    let bus = Bus::new();
    let mut sub = bus
        .subscribe(subscription(&["a.*", "a.>", ">", "a.b"]))
        .unwrap();
    publish(&bus, "a.b", "x").await;
    publish(&bus, "a.c", "y").await;
    assert_eq!(take_data(&mut sub, 2).await, ["x", "y"]);
    assert_quiet(&mut sub).await;
}

#[tokio::test]
async fn user_events_reach_only_that_user() {
    let bus = Bus::new();
    let alice = UserId::new("alice").unwrap();
    let bob = UserId::new("bob").unwrap();
    let mut as_alice = bus
        .subscribe(subscription(&["n"]).with_user(alice.clone()))
        .unwrap();
    let mut as_bob = bus
        .subscribe(subscription(&["n"]).with_user(bob.clone()))
        .unwrap();
    let mut anonymous = bus.subscribe(subscription(&["n"])).unwrap();
    for i in 0..50 {
        let who = if i % 2 == 0 { &alice } else { &bob };
        let draft =
            Draft::new(topic("n"), format!("{who}:{i}")).with_audience(Audience::User(who.clone()));
        bus.publish(draft).await.unwrap();
    }
    for (sub, who) in [(&mut as_alice, "alice"), (&mut as_bob, "bob")] {
        for data in take_data(sub, 25).await {
            assert!(data.starts_with(who), "{who} received {data}");
        }
        assert_quiet(sub).await;
    }
    assert_quiet(&mut anonymous).await;
}

#[tokio::test]
async fn connection_events_reach_only_that_connection() {
    let bus = Bus::new();
    let conn = ConnectionId::random();
    let mut mine = bus
        .subscribe(subscription(&["t"]).with_connection(conn))
        .unwrap();
    let mut other = bus.subscribe(subscription(&["t"])).unwrap();
    assert_eq!(mine.connection(), conn);
    bus.publish(Draft::new(topic("t"), "private").with_audience(Audience::Connection(conn)))
        .await
        .unwrap();
    bus.publish(Draft::new(topic("u"), "wrong topic").with_audience(Audience::Connection(conn)))
        .await
        .unwrap();
    assert_eq!(next_event(&mut mine).await.1, "private");
    assert_quiet(&mut mine).await;
    assert_quiet(&mut other).await;
}

#[tokio::test]
async fn resume_replays_after_last_event_id_then_goes_live() {
    let bus = Bus::new();
    let topics = ["a", "b.x", "c", "d.y.z", "e", "f"];
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(publish(&bus, topics[i % topics.len()], &i.to_string()).await);
    }
    let resumed =
        subscription(&["a", "b.*", "c", "d.>", "e", "f"]).with_resume(Resume::After(ids[9]));
    let mut sub = bus.subscribe(resumed).unwrap();
    // Publish while the replay is in progress: the seam must hold.
    for i in 30..40 {
        publish(&bus, topics[i % topics.len()], &i.to_string()).await;
    }
    let want: Vec<String> = (10..40).map(|i| i.to_string()).collect();
    assert_eq!(take_data(&mut sub, 30).await, want);
    assert_quiet(&mut sub).await;
}

#[tokio::test]
async fn resume_with_a_live_publisher_has_no_gap_and_no_duplicate() {
    let bus = Bus::builder().replay_page(3).build();
    let first = publish(&bus, "t.0", "0").await;
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for i in 1..500 {
                publish(&bus, &format!("t.{}", i % 7), &i.to_string()).await;
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    tokio::task::yield_now().await;
    let mut sub = bus
        .subscribe(subscription(&["t.*"]).with_resume(Resume::After(first)))
        .unwrap();
    publisher.await.unwrap();
    let want: Vec<String> = (1..500).map(|i| i.to_string()).collect();
    assert_eq!(take_data(&mut sub, 499).await, want);
    assert_quiet(&mut sub).await;
}

#[tokio::test]
async fn resume_past_retention_starts_with_a_reset() {
    let bus = Bus::builder()
        .retention(Retention {
            max_events: 5,
            max_age: Duration::from_secs(60),
        })
        .build();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(publish(&bus, "t", &i.to_string()).await);
    }
    let mut sub = bus
        .subscribe(subscription(&["t"]).with_resume(Resume::After(ids[2])))
        .unwrap();
    let reset = next_reset(&mut sub).await;
    assert_eq!(
        (reset.reason, reset.missed_since),
        (ResetReason::Retention, ids[2].to_string())
    );
    assert_eq!(take_data(&mut sub, 5).await, ["15", "16", "17", "18", "19"]);
    publish(&bus, "t", "live").await;
    assert_eq!(next_event(&mut sub).await.1, "live");
    assert_eq!(bus.metrics().resets, 1);
}

#[tokio::test]
async fn unknown_ids_get_a_reset_then_all_retained_events() {
    let bus = Bus::new();
    publish(&bus, "t", "kept").await;
    let other_life = Bus::new();
    let foreign = publish(&other_life, "t", "x").await;
    for resume in [
        Resume::from_last_event_id("garbage"),
        Resume::After(foreign),
    ] {
        let mut sub = bus
            .subscribe(subscription(&["t"]).with_resume(resume))
            .unwrap();
        assert_eq!(next_reset(&mut sub).await.reason, ResetReason::UnknownId);
        assert_eq!(next_event(&mut sub).await.1, "kept");
        assert_quiet(&mut sub).await;
    }
}

#[tokio::test]
async fn a_slow_subscriber_catches_up_from_history_without_loss() {
    let bus = Bus::builder().subscriber_buffer(4).build();
    let mut slow = bus.subscribe(subscription(&["t"])).unwrap();
    let mut fast = bus.subscribe(subscription(&["t"])).unwrap();
    let mut fast_seen = Vec::new();
    for i in 0..200 {
        publish(&bus, "t", &i.to_string()).await;
        fast_seen.push(next_event(&mut fast).await.1);
    }
    let want: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    assert_eq!(
        fast_seen, want,
        "a slow subscriber does not hold others back"
    );
    assert_eq!(
        take_data(&mut slow, 200).await,
        want,
        "the slow one lost nothing"
    );
    assert_quiet(&mut slow).await;
    assert_eq!(bus.metrics().resets, 0);
}

#[tokio::test]
async fn a_subscriber_behind_retention_gets_a_reset_then_the_rest() {
    let bus = Bus::builder()
        .subscriber_buffer(2)
        .retention(Retention {
            max_events: 10,
            max_age: Duration::from_secs(60),
        })
        .build();
    let mut slow = bus.subscribe(subscription(&["t"])).unwrap();
    for i in 0..100 {
        publish(&bus, "t", &i.to_string()).await;
    }
    tokio::task::yield_now().await;
    let mut got = Vec::new();
    let mut resets = 0;
    while got.last().map(String::as_str) != Some("99") {
        match next(&mut slow).await {
            Delivery::Event(e) => got.push(e.data().as_str().to_owned()),
            Delivery::Reset(_) => resets += 1,
        }
    }
    assert_eq!(resets, 1, "one reset for one gap");
    assert_eq!(
        &got[got.len() - 10..],
        (90..100).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    assert_quiet(&mut slow).await;
}

#[tokio::test]
async fn dropping_a_subscriber_unregisters_it_and_frees_idle_topics() {
    let bus = Bus::builder()
        .retention(Retention {
            max_events: 10,
            max_age: Duration::from_millis(50),
        })
        .build();
    let sub = bus.subscribe(subscription(&["a", "b.*"])).unwrap();
    publish(&bus, "a", "x").await;
    let stats = bus.stats().await.unwrap();
    assert_eq!(stats.subscribers, 1);
    assert_eq!(
        (
            stats.topics[0].topic.as_str(),
            stats.topics[0].subscribers,
            stats.topics[0].retained
        ),
        ("a", 1, 1)
    );
    drop(sub);
    assert_eq!(bus.metrics().subscribers, 0, "gone at once");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(bus.stats().await.unwrap().topics.is_empty());
}

#[tokio::test]
async fn oversized_and_empty_publishes_are_refused_and_not_stored() {
    let bus = Bus::builder().max_event_bytes(100).build();
    let mut sub = bus.subscribe(subscription(&["t"])).unwrap();
    let big = Draft::new(topic("t"), "x".repeat(100));
    match bus.publish(big).await {
        Err(PublishError::TooLarge {
            size: 101,
            limit: 100,
            index: 0,
        }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let batch = vec![
        Draft::new(topic("t"), "ok"),
        Draft::new(topic("t"), "y".repeat(200)),
    ];
    assert!(matches!(
        bus.publish_batch(batch).await,
        Err(PublishError::TooLarge { index: 1, .. })
    ));
    assert!(matches!(
        bus.publish_batch(vec![]).await,
        Err(PublishError::EmptyBatch)
    ));
    assert_quiet(&mut sub).await;
    assert_eq!(bus.metrics().published, 0);
}

#[tokio::test]
async fn batches_get_consecutive_ids_in_order() {
    let bus = Bus::new();
    let mut sub = bus.subscribe(subscription(&[">"])).unwrap();
    let ids = bus
        .publish_batch(vec![
            Draft::new(topic("a"), "1"),
            Draft::new(topic("b"), "2"),
            Draft::new(topic("a"), "3"),
        ])
        .await
        .unwrap();
    assert_eq!(ids[1].offset(), ids[0].offset() + 1);
    assert_eq!(ids[2].offset(), ids[0].offset() + 2);
    assert_eq!(take_data(&mut sub, 3).await, ["1", "2", "3"]);
}

#[tokio::test]
async fn close_ends_streams_and_refuses_new_subscribers() {
    let bus = Bus::new();
    let mut sub = bus.subscribe(subscription(&["t"])).unwrap();
    bus.close();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), sub.next())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        bus.subscribe(subscription(&["t"])).unwrap_err(),
        SubscribeError::Closed
    );
    assert_eq!(
        bus.subscribe(subscription(&[])).unwrap_err(),
        SubscribeError::NoSelectors
    );
}

#[tokio::test]
async fn dropping_the_bus_ends_streams() {
    let bus = Bus::new();
    let mut sub = bus.subscribe(subscription(&["t"])).unwrap();
    drop(bus);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), sub.next())
            .await
            .unwrap()
            .is_none()
    );
}
