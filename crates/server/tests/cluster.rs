//! Several `herald serve` processes sharing one Redis log: one ordered stream, resume on
//! any node, nodes dying, Redis restarting.

mod support;

use std::time::Duration;

use herald_testkit::{
    http,
    redis::PrivateRedis,
    server::Server,
    services::{service_url, skip_or_fail},
    sse::{SseClient, events_path},
};
use serde_json::{Value, json};
use support::{WAIT, data};

fn redis_url() -> String {
    service_url("HERALD_REDIS_URL", "redis://127.0.0.1:6379")
}

/// Whether the shared Redis answers; a loud skip (or a failure in CI) when it does not.
fn shared_redis_available() -> bool {
    let addr = redis_url().trim_start_matches("redis://").to_owned();
    match std::net::TcpStream::connect_timeout(
        &addr.parse().expect("host:port"),
        Duration::from_secs(1),
    ) {
        Ok(_) => true,
        Err(e) => {
            skip_or_fail("redis", format!("{addr}: {e}"));
            false
        }
    }
}

async fn node(url: &str, prefix: &str) -> Server {
    let config = format!(
        "[log]\nkind = \"redis\"\nurl = \"{url}\"\nkey_prefix = \"{prefix}\"\ncall_timeout_ms = 500\n[sse]\nretry_ms = 100\n"
    );
    support::herald().config_toml(config).spawn().await
}

async fn cluster(n: usize) -> Vec<Server> {
    let prefix = format!(
        "herald-e2e:{}",
        std::process::id() as u64 * 1_000_000 + rand_suffix()
    );
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(node(&redis_url(), &prefix).await);
    }
    nodes
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

#[tokio::test]
async fn ten_thousand_events_through_three_nodes_arrive_everywhere_in_one_order() {
    if !shared_redis_available() {
        return;
    }
    let nodes = cluster(3).await;
    let mut readers = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            let mut client = node.subscribe(&["c.>"]).await;
            readers.push(tokio::spawn(async move {
                client.collect_events(10_000, Duration::from_secs(60)).await
            }));
        }
    }
    // Round robin through the three nodes, three publishers at a time.
    let addrs: Vec<_> = nodes.iter().map(Server::addr).collect();
    let publishers: Vec<_> = (0..3)
        .map(|p| {
            let addrs = addrs.clone();
            tokio::spawn(async move {
                for i in (p..10_000).step_by(3) {
                    let body =
                        json!({"topic": format!("c.{}", i % 7), "data": i.to_string()}).to_string();
                    http::post_json(addrs[i % 3], "/publish", &body, &[])
                        .await
                        .assert_status(200);
                }
            })
        })
        .collect();
    for p in publishers {
        p.await.unwrap();
    }
    let mut orders = Vec::new();
    for reader in readers {
        let events = reader.await.unwrap();
        let ids: Vec<String> = events.iter().map(|e| e.last_event_id.clone()).collect();
        let mut seen = data(&events);
        seen.sort_by_key(|d| d.parse::<usize>().unwrap());
        assert_eq!(
            seen,
            (0..10_000).map(|i| i.to_string()).collect::<Vec<_>>(),
            "every event once"
        );
        orders.push(ids);
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "every subscriber on every node sees one order"
    );
}

#[tokio::test]
async fn a_subscriber_resumes_on_another_node_without_gap_or_duplicate() {
    if !shared_redis_available() {
        return;
    }
    let nodes = cluster(3).await;
    let mut on_a = nodes[0].subscribe(&["r.*"]).await;
    for i in 0..5 {
        nodes[1]
            .publish(json!({"topic": "r.x", "data": i.to_string()}))
            .await;
    }
    let last = on_a
        .collect_events(5, WAIT)
        .await
        .last()
        .unwrap()
        .last_event_id
        .clone();
    on_a.close();
    for i in 5..15 {
        nodes[1]
            .publish(json!({"topic": "r.y", "data": i.to_string()}))
            .await;
    }
    let mut on_c = SseClient::connect(
        nodes[2].addr(),
        &events_path(&["r.*"]),
        &[("Last-Event-ID", &last)],
    )
    .await
    .unwrap();
    on_c.expect_connected(WAIT).await;
    assert_eq!(
        data(&on_c.collect_events(10, WAIT).await),
        (5..15).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    on_c.assert_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_killed_node_does_not_stop_the_others() {
    if !shared_redis_available() {
        return;
    }
    let mut nodes = cluster(3).await;
    let mut on_a = nodes[0].subscribe(&["k"]).await;
    let mut on_c = nodes[2].subscribe(&["k"]).await;
    nodes[1]
        .publish(json!({"topic": "k", "data": "before"}))
        .await;
    nodes[1].sigkill();
    assert!(nodes[1].wait_exit(WAIT).await.is_some(), "node B died");
    nodes[0]
        .publish(json!({"topic": "k", "data": "from a"}))
        .await;
    nodes[2]
        .publish(json!({"topic": "k", "data": "from c"}))
        .await;
    for client in [&mut on_a, &mut on_c] {
        assert_eq!(
            data(&client.collect_events(3, WAIT).await),
            ["before", "from a", "from c"]
        );
    }
}

/// A Redis restart loses the log: publishing fails cleanly meanwhile, works after, and
/// subscribers are told by a reset. A connection blip that loses nothing sends no reset.
#[tokio::test]
async fn redis_outages_fail_publishes_cleanly_and_reset_only_on_loss() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let prefix = "herald-e2e-outage";
    let a = node(&redis.url(), prefix).await;
    let b = node(&redis.url(), prefix).await;
    let mut sub = a.subscribe(&["o"]).await;
    b.publish(json!({"topic": "o", "data": "1"})).await;
    assert_eq!(data(&sub.collect_events(1, WAIT).await), ["1"]);

    // A blip: every connection to Redis is closed, the data stays.
    redis.kill_clients();
    publish_eventually(&b, "2").await;
    assert_eq!(
        sub.next_event(WAIT).await.data,
        "2",
        "no reset: nothing was lost"
    );

    // Redis dies and comes back empty. The append in flight when it died cannot be
    // settled: 504 says so honestly. Once the node knows Redis is gone: 503.
    redis.stop();
    let body = json!({"topic": "o", "data": "lost"}).to_string();
    let first = http::post_json(b.addr(), "/publish", &body, &[]).await;
    assert!(
        first.status == 503
            || (first.status == 504 && first.json()["error"]["code"] == "outcome_unknown"),
        "{} {}",
        first.status,
        first.text()
    );
    let refused = http::post_json(b.addr(), "/publish", &body, &[]).await;
    refused.assert_error(503, "log_unavailable");
    assert!(refused.header("retry-after").is_some());
    b.get("/readyz").await.assert_error(503, "log_unavailable");
    redis.restart();
    publish_eventually(&b, "3").await;
    let reset = sub.next_event(WAIT).await;
    assert_eq!(
        reset.event_type, "herald.reset",
        "the log's history is gone: {reset:?}"
    );
    let notice: Value = serde_json::from_str(&reset.data).unwrap();
    assert_eq!(notice["reason"], "unknown_id");
    assert_eq!(
        sub.next_event(WAIT).await.data,
        "3",
        "a refused publish is never delivered"
    );
    a.get("/readyz").await.assert_status(200);
}

/// Publishes through `server` until the log takes it (the node reconnects on its own).
async fn publish_eventually(server: &Server, data: &str) {
    let body = json!({"topic": "o", "data": data}).to_string();
    for _ in 0..100 {
        let res = http::post_json(server.addr(), "/publish", &body, &[]).await;
        match res.status {
            200 => return,
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("publish answered {other}: {}", res.text()),
        }
    }
    panic!("publishing never recovered");
}
