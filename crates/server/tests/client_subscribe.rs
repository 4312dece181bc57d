//! Subscribing through `herald-client` against the real binary: resuming
//! after a network drop, and resets as typed items.

mod support;

use std::time::Duration;

use herald_client::{Backoff, Client, Draft, Item};
use herald_testkit::{canned, proxy::Proxy};
use support::client::{connected, data, events, next, quick_client};
use tokio::{io::AsyncWriteExt, net::TcpListener};

#[tokio::test]
async fn resumes_after_the_connection_drops_without_gap_or_duplicate() {
    // A short retry hint, so the reconnect honours it quickly.
    let server = support::herald()
        .config_toml("[sse]\nretry_ms = 100\n")
        .spawn()
        .await;
    let proxy = Proxy::start(server.addr()).await;
    let publisher = quick_client(&server.url(""));
    let client = quick_client(&format!("http://{}", proxy.addr()));
    let mut sub = client.subscribe(["feed.>"]);
    connected(&mut sub).await;
    publisher
        .publish(&Draft::new("feed.a", "before"))
        .await
        .unwrap();
    assert_eq!(data(&events(&mut sub, 1).await), ["before"]);

    assert_eq!(proxy.cut(), 1, "one live connection was cut");
    publisher
        .publish_batch(&[
            Draft::new("feed.a", "missed 1"),
            Draft::new("feed.b", "missed 2"),
        ])
        .await
        .unwrap();
    let Item::Disconnected { retry_in, .. } = next(&mut sub).await else {
        panic!("expected a disconnect notice")
    };
    assert!(
        retry_in >= Duration::from_millis(100) && retry_in <= Duration::from_millis(225),
        "the wait honours the server's hint (100..150 ms, jittered by the server) \
         plus the client's jitter (up to half again): {retry_in:?}"
    );
    connected(&mut sub).await;
    publisher
        .publish(&Draft::new("feed.a", "after"))
        .await
        .unwrap();
    assert_eq!(
        data(&events(&mut sub, 3).await),
        ["missed 1", "missed 2", "after"]
    );
    assert_eq!(proxy.accepted(), 2);
}

#[tokio::test]
async fn keeps_retrying_while_the_server_is_away() {
    let server = support::herald()
        .config_toml("[sse]\nretry_ms = 50\n")
        .spawn()
        .await;
    let proxy = Proxy::start(server.addr()).await;
    let client = quick_client(&format!("http://{}", proxy.addr()));
    let mut sub = client.subscribe(["t"]);
    connected(&mut sub).await;
    // Every connection is cut as soon as it is made, three times over.
    for round in 1..=3 {
        proxy.cut();
        let item = next(&mut sub).await;
        assert!(
            matches!(item, Item::Disconnected { .. }),
            "round {round}: {item:?}"
        );
        // The subscription reconnects as it is polled; no task runs behind it.
        connected(&mut sub).await;
        assert_eq!(proxy.accepted(), round + 1);
    }
    let id = quick_client(&server.url(""))
        .publish(&Draft::new("t", "still here"))
        .await
        .unwrap();
    assert_eq!(events(&mut sub, 1).await[0].id, id);
}

#[tokio::test]
async fn resuming_past_retention_yields_a_typed_reset() {
    let server = support::herald()
        .env("HERALD_RETENTION__MAX_EVENTS", "1")
        .spawn()
        .await;
    let client = quick_client(&server.url(""));
    let ids = client
        .publish_batch(&[
            Draft::new("t", "first"),
            Draft::new("t", "second"),
            Draft::new("t", "third"),
        ])
        .await
        .unwrap();
    let mut sub = client.subscribe(["t"]).with_last_event_id(&ids[0]);
    connected(&mut sub).await;
    assert_eq!(
        next(&mut sub).await,
        Item::Reset {
            reason: "retention".into(),
            missed_since: ids[0].clone(),
        }
    );
    let got = events(&mut sub, 1).await;
    assert_eq!(
        (got[0].id.as_str(), got[0].data.as_str()),
        (ids[2].as_str(), "third")
    );
}

#[tokio::test]
async fn an_unknown_id_yields_a_reset_then_the_retained_events() {
    let server = support::start().await;
    let client = quick_client(&server.url(""));
    client.publish(&Draft::new("t", "kept")).await.unwrap();
    let mut sub = client.subscribe(["t"]).with_last_event_id("not-an-id");
    connected(&mut sub).await;
    let Item::Reset { reason, .. } = next(&mut sub).await else {
        panic!("expected a reset")
    };
    assert_eq!(reason, "unknown_id");
    assert_eq!(data(&events(&mut sub, 1).await), ["kept"]);
}

#[tokio::test]
async fn a_silent_stream_is_reopened_with_the_last_event_id() {
    // A server that sends one event, then nothing: no heartbeat, no end.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut requests = Vec::new();
        let mut sockets = Vec::new();
        for _ in 0..2 {
            let (head, mut socket) = canned::accept(&listener).await;
            requests.push(head.to_ascii_lowercase());
            let body = "id: e-1\ndata: one\n\n";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                 transfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n",
                body.len()
            );
            socket.write_all(reply.as_bytes()).await.unwrap();
            sockets.push(socket);
        }
        requests
    });
    let client = Client::builder(base)
        .idle_timeout(Some(Duration::from_millis(200)))
        .backoff(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(10),
        ))
        .build()
        .unwrap();
    let mut sub = client.subscribe(["t"]);
    assert_eq!(data(&events(&mut sub, 1).await), ["one"]);
    let Item::Disconnected { reason, .. } = next(&mut sub).await else {
        panic!("expected a disconnect notice")
    };
    assert!(reason.contains("silent"), "{reason}");
    assert_eq!(data(&events(&mut sub, 1).await), ["one"]);
    let requests = server.await.unwrap();
    assert!(!requests[0].contains("last-event-id"), "{}", requests[0]);
    assert!(
        requests[1].contains("\r\nlast-event-id: e-1\r\n"),
        "{}",
        requests[1]
    );
}
