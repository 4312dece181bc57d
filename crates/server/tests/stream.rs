//! Publishing and receiving over real HTTP: wire format, selectors, audiences, heartbeats.

mod support;

use std::time::Duration;

use herald_testkit::sse::SseClient;
use serde_json::json;
use support::{WAIT, data};

#[tokio::test]
async fn a_published_event_arrives_as_exact_sse_bytes() {
    let server = support::start().await;
    let mut client = SseClient::connect(server.addr(), "/events?topic=orders.created", &[])
        .await
        .unwrap();
    assert_eq!(client.status(), 200);
    assert_eq!(client.header("content-type"), Some("text/event-stream"));
    assert_eq!(client.header("cache-control"), Some("no-cache"));
    assert_eq!(client.header("x-accel-buffering"), Some("no"));
    let connection = client.expect_connected(WAIT).await;
    let retry = client
        .retry_hint()
        .expect("the first frame has a retry hint");
    assert!(
        (2000..=3000).contains(&retry),
        "retry {retry} is the 2 s base plus jitter"
    );

    let id = server
        .publish(json!({"topic": "orders.created", "data": {"id": 7, "note": "a\nb"}, "event": "created", "retry": 500}))
        .await;
    let event = client.next_event(WAIT).await;
    assert_eq!(
        (event.event_type.as_str(), event.last_event_id.as_str()),
        ("created", id.as_str())
    );
    assert_eq!(event.data, r#"{"id":7,"note":"a\nb"}"#);
    let wire = String::from_utf8_lossy(client.raw_bytes_seen()).into_owned();
    let first = format!(
        "event: herald.connected\nretry: {retry}\ndata: {{\"connection\":\"{connection}\"}}\n\n"
    );
    let frame =
        format!("id: {id}\nevent: created\nretry: 500\ndata: {{\"id\":7,\"note\":\"a\\nb\"}}\n\n");
    assert_eq!(wire, format!("{first}{frame}"));

    server
        .publish(json!({"topic": "orders.created", "data": "line 1\r\nline 2\rline 3"}))
        .await;
    let event = client.next_event(WAIT).await;
    assert_eq!(
        (event.event_type.as_str(), event.data.as_str()),
        ("message", "line 1\nline 2\nline 3")
    );
}

#[tokio::test]
async fn many_topics_and_wildcards_share_one_connection() {
    let server = support::start().await;
    let mut client = server
        .subscribe(&["orders.*", "users.>", "stock.eu.fr", "*.audit"])
        .await;
    let published = [
        ("orders.created", true),
        ("orders.eu.created", false),
        ("users.42.notifications", true),
        ("stock.eu.fr", true),
        ("stock.eu.de", false),
        ("billing.audit", true),
        ("orders.paid", true),
    ];
    for (i, (topic, _)) in published.iter().enumerate() {
        server
            .publish(json!({"topic": topic, "data": i.to_string()}))
            .await;
    }
    let want: Vec<String> = published
        .iter()
        .enumerate()
        .filter(|(_, (_, m))| *m)
        .map(|(i, _)| i.to_string())
        .collect();
    assert_eq!(data(&client.collect_events(want.len(), WAIT).await), want);
    client.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn user_and_connection_audiences_reach_only_their_audience() {
    let server = support::start().await;
    let path = |user: &str| format!("/events?topic=users.*.inbox&user={user}");
    let mut alice = SseClient::connect(server.addr(), &path("alice"), &[])
        .await
        .unwrap();
    let mut bob = SseClient::connect(server.addr(), &path("bob"), &[])
        .await
        .unwrap();
    let mut anonymous = server.subscribe(&["users.*.inbox"]).await;
    alice.expect_connected(WAIT).await;
    let bob_connection = bob.expect_connected(WAIT).await;

    for i in 0..100 {
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        server.publish(json!({"topic": format!("users.{user}.inbox"), "data": format!("{user} {i}"), "user": user})).await;
    }
    server.publish(json!({"topic": "users.x.inbox", "data": "only bob's connection", "connection": bob_connection})).await;
    server
        .publish(json!({"topic": "users.x.inbox", "data": "everyone"}))
        .await;

    let alice_got = data(&alice.collect_events(51, WAIT).await);
    assert!(
        alice_got[..50].iter().all(|d| d.starts_with("alice ")),
        "{alice_got:?}"
    );
    assert_eq!(alice_got[50], "everyone");
    let bob_got = data(&bob.collect_events(52, WAIT).await);
    assert!(
        bob_got[..50].iter().all(|d| d.starts_with("bob ")),
        "{bob_got:?}"
    );
    assert_eq!(bob_got[50..], ["only bob's connection", "everyone"]);
    assert_eq!(data(&anonymous.collect_events(1, WAIT).await), ["everyone"]);
    for client in [&mut alice, &mut bob, &mut anonymous] {
        client.assert_quiet(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats() {
    let server = support::herald()
        .config_toml("[sse]\nheartbeat_ms = 150\n")
        .spawn()
        .await;
    let mut client = server.subscribe(&["quiet"]).await;
    for _ in 0..3 {
        assert_eq!(client.next_comment(Duration::from_secs(2)).await, "");
    }
}

#[tokio::test]
async fn a_thousand_subscribers_each_receive_every_event_in_order() {
    let server = support::start().await;
    let mut readers = Vec::new();
    for _ in 0..1000 {
        let client = server.subscribe(&["load.>"]).await;
        readers.push(client);
    }
    support::wait_metric(&server, "herald_subscribers", 1000.0).await;
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|mut client| {
            tokio::spawn(
                async move { data(&client.collect_events(100, Duration::from_secs(30)).await) },
            )
        })
        .collect();
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(
            server
                .publish(json!({"topic": format!("load.{}", i % 10), "data": i.to_string()}))
                .await,
        );
    }
    let want: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), want);
    }
}
