//! Resuming after a disconnect: no gap, no duplicate, and a reset when history is gone.

mod support;

use std::time::Duration;

use herald_testkit::{
    proxy::Proxy,
    server::Server,
    sse::{SseClient, events_path},
};
use serde_json::{Value, json};
use support::{WAIT, data};

const TOPICS: [&str; 6] = ["a", "b.x", "c.y.z", "d", "e.e", "f"];
const SELECTORS: [&str; 6] = ["a", "b.*", "c.>", "d", "e.e", "f"];

async fn publish_round(server: &Server, from: usize, to: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in from..to {
        ids.push(
            server
                .publish(json!({"topic": TOPICS[i % TOPICS.len()], "data": i.to_string()}))
                .await,
        );
    }
    ids
}

fn numbers(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| i.to_string()).collect()
}

#[tokio::test]
async fn resume_with_last_event_id_across_six_topics_has_no_gap_and_no_duplicate() {
    let server = support::start().await;
    let mut first = server.subscribe(&SELECTORS).await;
    publish_round(&server, 0, 12).await;
    let seen = first.collect_events(12, WAIT).await;
    let last = seen.last().unwrap().last_event_id.clone();
    first.close();

    // Missed while away, then published during the replay.
    publish_round(&server, 12, 30).await;
    let path = events_path(&SELECTORS);
    let mut back = SseClient::connect(server.addr(), &path, &[("Last-Event-ID", &last)])
        .await
        .unwrap();
    back.expect_connected(WAIT).await;
    let live = tokio::spawn({
        let addr = server.addr();
        async move {
            for i in 30..40 {
                let body =
                    json!({"topic": TOPICS[i % TOPICS.len()], "data": i.to_string()}).to_string();
                herald_testkit::http::post_json(addr, "/publish", &body, &[])
                    .await
                    .assert_status(200);
            }
        }
    });
    assert_eq!(data(&back.collect_events(28, WAIT).await), numbers(12, 40));
    live.await.unwrap();
    back.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn every_query_spelling_of_the_last_event_id_resumes() {
    let server = support::start().await;
    let ids = publish_round(&server, 0, 4).await;
    for param in ["lastEventId", "lastEventID", "last_event_id"] {
        let path = format!(
            "{}&{param}={}",
            events_path(&["a", "b.*", "c.>", "d"]),
            ids[1]
        );
        let mut client = SseClient::connect(server.addr(), &path, &[]).await.unwrap();
        client.expect_connected(WAIT).await;
        assert_eq!(
            data(&client.collect_events(2, WAIT).await),
            ["2", "3"],
            "{param}"
        );
        client.assert_quiet(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn resume_past_retention_starts_with_a_reset() {
    let server = support::herald()
        .config_toml("[retention]\nmax_events = 5\n")
        .spawn()
        .await;
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(
                server
                    .publish(json!({"topic": "t", "data": i.to_string()}))
                    .await,
            );
        }
        ids
    };
    let mut client = SseClient::connect(
        server.addr(),
        "/events?topic=t",
        &[("Last-Event-ID", &ids[3])],
    )
    .await
    .unwrap();
    client.expect_connected(WAIT).await;
    let reset = client.next_event(WAIT).await;
    assert_eq!(reset.event_type, "herald.reset");
    let notice: Value = serde_json::from_str(&reset.data).unwrap();
    assert_eq!(
        notice,
        json!({"reason": "retention", "missed_since": ids[3]})
    );
    assert_eq!(data(&client.collect_events(5, WAIT).await), numbers(15, 20));
    assert_eq!(support::metric(&server, "herald_resets_total").await, 1.0);
}

#[tokio::test]
async fn an_unknown_id_gets_a_reset_then_all_retained_events() {
    let server = support::start().await;
    publish_round(&server, 0, 3).await;
    for stale in ["0-17", "deadbeef-3", "not-an-id"] {
        let path = events_path(&["a", "b.*", "c.>"]);
        let mut client = SseClient::connect(server.addr(), &path, &[("Last-Event-ID", stale)])
            .await
            .unwrap();
        client.expect_connected(WAIT).await;
        let reset = client.next_event(WAIT).await;
        assert_eq!(reset.event_type, "herald.reset", "{stale}");
        let notice: Value = serde_json::from_str(&reset.data).unwrap();
        assert_eq!(notice["reason"], "unknown_id");
        assert_eq!(data(&client.collect_events(3, WAIT).await), numbers(0, 3));
    }
}

/// The network drops mid-stream, repeatedly, while events keep coming; `herald subscribe`
/// (which reconnects with Last-Event-ID by itself) ends up with every event exactly once.
#[tokio::test]
async fn a_client_behind_a_dropping_network_loses_nothing() {
    let server = support::herald()
        .config_toml("[sse]\nretry_ms = 50\n")
        .spawn()
        .await;
    let proxy = Proxy::start(server.addr()).await;
    let cli = tokio::process::Command::new(support::HERALD)
        .args(["subscribe", "--json", "--count", "300", "--url"])
        .arg(format!("http://{}", proxy.addr()))
        .args(SELECTORS)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for round in 0..6 {
        // The client's (re)connection of this round, then events, then the drop.
        proxy.wait_accepted(round + 1).await;
        support::wait_metric(&server, "herald_subscribers", 1.0).await;
        publish_round(&server, round * 50, round * 50 + 50).await;
        assert_eq!(proxy.cut(), 1, "round {round} cut the live stream");
    }
    let output = tokio::time::timeout(Duration::from_secs(20), cli.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "subscribe exited with {}",
        output.status
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<String> = lines
        .iter()
        .map(|l| l["data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, numbers(0, 300), "every event once, in order");
}
