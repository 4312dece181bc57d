//! Connection cleanup, readiness, graceful shutdown.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{WAIT, data, metric, wait_metric};

#[tokio::test]
async fn disconnecting_clients_are_unsubscribed_at_once() {
    let server = support::start().await;
    let clients = vec![
        server.subscribe(&["a"]).await,
        server.subscribe(&["a", "b.*"]).await,
        server.subscribe(&[">"]).await,
    ];
    wait_metric(&server, "herald_connections", 3.0).await;
    assert_eq!(metric(&server, "herald_subscribers").await, 3.0);
    let stats = server.get("/stats").await.json();
    assert_eq!(stats["subscribers"], 3);
    for client in clients {
        client.close();
    }
    wait_metric(&server, "herald_connections", 0.0).await;
    wait_metric(&server, "herald_subscribers", 0.0).await;
}

#[tokio::test]
async fn counters_are_exact_however_many_scrapes_run_at_once() {
    let server = std::sync::Arc::new(support::start().await);
    let publishes = 300;
    let scrapers: Vec<_> = (0..20)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move {
                let mut last = 0.0;
                for _ in 0..15 {
                    let now = metric(&server, "herald_events_published_total").await;
                    assert!(now >= last, "a counter went down: {last} then {now}");
                    assert!(now <= f64::from(publishes), "overcounted: {now}");
                    last = now;
                }
            })
        })
        .collect();
    for i in 0..publishes {
        server.publish(json!({"topic": "m", "data": i})).await;
    }
    for scraper in scrapers {
        scraper.await.unwrap();
    }
    assert_eq!(
        metric(&server, "herald_events_published_total").await,
        f64::from(publishes)
    );
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let server = support::start().await;
    server.get("/healthz").await.assert_status(200);
    assert_eq!(
        server.get("/readyz").await.assert_status(200).json()["status"],
        "ready"
    );
    let mut client = server.subscribe(&["m"]).await;
    server.publish(json!({"topic": "m", "data": "x"})).await;
    client.collect_events(1, WAIT).await;
    assert_eq!(metric(&server, "herald_events_published_total").await, 1.0);
    wait_metric(&server, "herald_events_delivered_total", 1.0).await;
    assert!(metric(&server, "herald_bytes_sent_total").await > 0.0);
    assert_eq!(metric(&server, "herald_topics").await, 1.0);
    assert_eq!(
        metric(&server, "herald_publish_duration_seconds_count").await,
        1.0
    );
}

#[tokio::test]
async fn batches_are_published_atomically_in_order() {
    let server = support::start().await;
    let mut client = server.subscribe(&[">"]).await;
    let batch = json!([{"topic": "a", "data": "1"}, {"topic": "b", "data": "2"}, {"topic": "a", "data": "3"}]);
    let res = server.post_json("/publish", &batch.to_string()).await;
    let ids = res.assert_status(200).json()["ids"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(ids.len(), 3);
    let events = client.collect_events(3, WAIT).await;
    assert_eq!(data(&events), ["1", "2", "3"]);
    let got: Vec<&str> = events.iter().map(|e| e.last_event_id.as_str()).collect();
    assert_eq!(
        got,
        ids.iter().map(|i| i.as_str().unwrap()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn sigterm_ends_every_stream_and_exits_zero_within_the_grace_period() {
    let mut server = support::herald()
        .config_toml("[shutdown]\ngrace_ms = 3000\n")
        .spawn()
        .await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(server.subscribe(&["s"]).await);
    }
    let started = Instant::now();
    server.sigterm();
    for client in &mut clients {
        client.expect_end(WAIT).await;
        assert!(
            client.ended_cleanly(),
            "the stream ends with the final chunk, not a reset connection"
        );
    }
    let status = server
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits");
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}
