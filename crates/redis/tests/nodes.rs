//! Several nodes on one log: the same ids, the same history, wherever they are read.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use herald_bus::{ConnectionId, Draft, EventId, Filter, Gap, Log, Page, Selector, TailItem, Topic};

fn draft(topic: &str, data: &str) -> Draft {
    Draft::new(Topic::new(topic).unwrap(), data)
}

fn anyone(selector: &str) -> Filter {
    Filter::new(
        vec![Selector::new(selector).unwrap()],
        None,
        ConnectionId::random(),
    )
}

fn summary(page: &Page) -> (Vec<(EventId, String)>, EventId, bool, Option<Gap>) {
    let events = page
        .events
        .iter()
        .map(|e| (e.id(), e.data().as_str().to_owned()))
        .collect();
    (events, page.next, page.more, page.gap)
}

#[tokio::test]
async fn an_append_on_one_node_reaches_the_other_nodes_tail_with_the_same_id() {
    let url = support::redis_url();
    if !support::reachable(&url) {
        return;
    }
    let options = support::options(&url);
    let (a, b) = (
        support::connect(&options).await,
        support::connect(&options).await,
    );
    assert_eq!(a.epoch(), b.epoch(), "one log, one epoch");
    let mut on_b = b.tail().items;
    let mut on_a = a.tail().items;

    let appended = a
        .append(vec![draft("x.1", "one"), draft("x.2", "two")])
        .await
        .unwrap();
    let more = b.append(vec![draft("x.1", "three")]).await.unwrap();
    assert_eq!(
        more[0].id().offset(),
        appended[1].id().offset() + 1,
        "offsets are global"
    );

    let want: Vec<EventId> = appended.iter().chain(&more).map(|e| e.id()).collect();
    for items in [&mut on_a, &mut on_b] {
        let mut got = Vec::new();
        while got.len() < want.len() {
            match tokio::time::timeout(Duration::from_secs(5), items.next()).await {
                Ok(Some(TailItem::Event(e))) => got.push(e.id()),
                other => panic!("expected an event, got {other:?}"),
            }
        }
        assert_eq!(got, want, "every node tails every append, in one order");
    }
    support::cleanup(&[options]).await;
}

#[tokio::test]
async fn both_nodes_read_the_same_pages() {
    let url = support::redis_url();
    if !support::reachable(&url) {
        return;
    }
    let options = support::options(&url);
    let (a, b) = (
        support::connect(&options).await,
        support::connect(&options).await,
    );
    for i in 0..30 {
        let node = if i % 3 == 0 { &a } else { &b };
        node.append(vec![draft(
            if i % 2 == 0 { "p.even" } else { "q" },
            &i.to_string(),
        )])
        .await
        .unwrap();
    }
    let filter = anyone("p.>");
    let mut from = None;
    let mut pages = 0;
    loop {
        let (page_a, page_b) = (
            a.read(from, &filter, 4).await.unwrap(),
            b.read(from, &filter, 4).await.unwrap(),
        );
        assert_eq!(summary(&page_a), summary(&page_b));
        pages += 1;
        from = Some(page_a.next);
        if !page_a.more {
            break;
        }
    }
    assert_eq!(pages, 4, "15 matching events in pages of 4");
    support::cleanup(&[options]).await;
}

#[tokio::test]
async fn a_read_scans_a_bounded_number_of_entries() {
    let url = support::redis_url();
    if !support::reachable(&url) {
        return;
    }
    let options = support::options(&url);
    let log = support::connect(&options).await;
    let drafts = (0..100).map(|i| draft("noise", &i.to_string())).collect();
    let appended = log.append(drafts).await.unwrap();
    let first = appended[0].id().offset();
    let page = log.read(None, &anyone("signal"), 2).await.unwrap();
    assert_eq!(
        (page.events.len(), page.next.offset(), page.more),
        (0, first + 31, true),
        "limit 2 scans 32 entries"
    );
    support::cleanup(&[options]).await;
}
