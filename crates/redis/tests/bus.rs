//! End to end through `herald_bus::Bus`: two buses (two nodes) on one Redis log.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use herald_bus::{
    Bus, Delivery, Draft, EventId, Resume, Selector, Subscriber, Subscription, Topic,
};

async fn next_event(subscriber: &mut Subscriber) -> (EventId, String) {
    match tokio::time::timeout(Duration::from_secs(5), subscriber.next()).await {
        Ok(Some(Delivery::Event(e))) => (e.id(), e.data().as_str().to_owned()),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_bus_receives_what_another_bus_publishes() {
    let url = support::redis_url();
    if !support::reachable(&url) {
        return;
    }
    let options = support::options(&url);
    let bus_a = Bus::builder().log(support::connect(&options).await).build();
    let bus_b = Bus::builder().log(support::connect(&options).await).build();
    let orders = || Subscription::new([Selector::new("orders.>").unwrap()]);
    let mut on_a = bus_a.subscribe(orders()).unwrap();

    let mut published = Vec::new();
    for i in 0..20 {
        let topic = if i % 2 == 0 {
            "orders.created"
        } else {
            "orders.eu.paid"
        };
        let bus = if i % 5 == 0 { &bus_a } else { &bus_b };
        let id = bus
            .publish(Draft::new(Topic::new(topic).unwrap(), i.to_string()))
            .await
            .unwrap();
        published.push((id, i.to_string()));
    }
    let mut received = Vec::new();
    for _ in 0..published.len() {
        received.push(next_event(&mut on_a).await);
    }
    assert_eq!(
        received, published,
        "every event, in publish order, with its id"
    );

    // Resume on B from an id a client saw on A: the rest, no reset, no duplicate.
    let seen = received[7].0;
    let mut resumed = bus_b
        .subscribe(orders().with_resume(Resume::After(seen)))
        .unwrap();
    for want in &published[8..] {
        assert_eq!(&next_event(&mut resumed).await, want);
    }
    let late = bus_a
        .publish(Draft::new(Topic::new("orders.late").unwrap(), "late"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut resumed).await, (late, "late".to_owned()));
    assert_eq!(next_event(&mut on_a).await, (late, "late".to_owned()));

    drop((on_a, resumed, bus_a, bus_b));
    support::cleanup(&[options]).await;
}
