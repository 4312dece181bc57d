//! Many publishers and subscribers on the multi-threaded runtime: every delivery checked.

mod support;

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use herald_bus::{Audience, Bus, Delivery, Draft, Event, Filter, Retention, Subscription, UserId};
use support::{selectors, topic};

const PUBLISHERS: usize = 4;
const EVENTS_EACH: usize = 500;
const TOPICS: [&str; 5] = [
    "orders.created",
    "orders.paid",
    "users.1.n",
    "users.2.n",
    "stock.eu.fr",
];
const SELECTIONS: [&[&str]; 6] = [
    &[">"],
    &["orders.*"],
    &["users.*.n"],
    &["stock.>", "orders.paid"],
    &["users.1.n"],
    &["orders.>", "users.>"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_subscriber_gets_exactly_its_events_in_order() {
    // A small buffer, so subscribers lag under load and exercise catch-up too.
    let bus = Bus::builder()
        .subscriber_buffer(16)
        .retention(Retention {
            max_events: 100_000,
            max_age: Duration::from_secs(3600),
        })
        .build();
    let users = [UserId::new("u1").unwrap(), UserId::new("u2").unwrap()];

    let mut readers = Vec::new();
    for i in 0..24 {
        let patterns = SELECTIONS[i % SELECTIONS.len()];
        let user = (i % 3 != 0).then(|| users[i % 2].clone());
        let mut subscription = Subscription::new(selectors(patterns));
        if let Some(u) = &user {
            subscription = subscription.with_user(u.clone());
        }
        let mut sub = bus.subscribe(subscription).unwrap();
        let filter = Filter::new(selectors(patterns), user, sub.connection());
        readers.push(tokio::spawn(async move {
            let mut got: Vec<Arc<Event>> = Vec::new();
            let expected_total = PUBLISHERS * EVENTS_EACH;
            // Read until quiet: the checker below compares against the full history.
            while let Ok(Some(delivery)) =
                tokio::time::timeout(Duration::from_secs(2), sub.next()).await
            {
                match delivery {
                    Delivery::Event(e) => got.push(e),
                    Delivery::Reset(r) => panic!("unexpected reset {r:?}"),
                }
                if got.len() > expected_total {
                    panic!("more events than were published");
                }
            }
            (filter, got)
        }));
    }

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let bus = bus.clone();
            let users = users.clone();
            tokio::spawn(async move {
                let mut published = Vec::new();
                for i in 0..EVENTS_EACH {
                    let audience = match i % 4 {
                        0 => Audience::User(users[(p + i) % 2].clone()),
                        _ => Audience::Everyone,
                    };
                    let draft =
                        Draft::new(topic(TOPICS[(p + i) % TOPICS.len()]), format!("{p}.{i}"))
                            .with_audience(audience);
                    let id = bus.publish(draft.clone()).await.unwrap();
                    published.push((id, draft));
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                published
            })
        })
        .collect();
    let mut history = Vec::new();
    for p in publishers {
        history.extend(p.await.unwrap());
    }
    history.sort_by_key(|(id, _)| id.offset());

    for reader in readers {
        let (filter, got) = reader.await.unwrap();
        let want: Vec<_> = history
            .iter()
            .filter(|(_, d)| {
                filter.matches(d.topic())
                    && d.audience().includes(filter.user(), filter.connection())
            })
            .map(|(id, _)| *id)
            .collect();
        let got: Vec<_> = got.iter().map(|e| e.id()).collect();
        assert!(!want.is_empty());
        assert_eq!(got, want, "subscriber {:?}", filter.selectors());
    }
    assert_eq!(bus.metrics().subscribers, 0);
}
