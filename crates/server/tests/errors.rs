//! Bad input gets the right 4xx JSON error, and the live streams keep flowing.

mod support;

use std::time::Duration;

use herald_testkit::{
    http,
    sse::{SseClient, events_path},
};
use serde_json::json;
use support::{WAIT, data};

const CONFIG: &str = "[limits]\nmax_body_bytes = 2048\nmax_event_bytes = 100\nmax_selectors = 3\nmax_connections = 3\n";

#[tokio::test]
async fn bad_input_is_refused_clearly_and_live_streams_keep_going() {
    let server = support::herald().config_toml(CONFIG).spawn().await;
    let mut live = server.subscribe(&["t"]).await;
    let post = |body: String| {
        let addr = server.addr();
        async move { http::post_json(addr, "/publish", &body, &[]).await }
    };

    post(r#"{"topic":"a..b","data":1}"#.into())
        .await
        .assert_error(400, "invalid_event");
    post(r#"{"topic":"t","data":1"#.into())
        .await
        .assert_error(400, "invalid_json");
    post(r#"{"topic":"t","data":1,"evnet":"x"}"#.into())
        .await
        .assert_error(400, "invalid_event");
    post(r#"{"topic":"t","data":1,"id":"1-1"}"#.into())
        .await
        .assert_error(400, "invalid_event");
    post(r#"{"topic":"t","data":1,"event":"x\nid: 9"}"#.into())
        .await
        .assert_error(400, "invalid_event");
    post(r#"{"topic":"t","data":1,"event":"x\r"}"#.into())
        .await
        .assert_error(400, "invalid_event");
    post(r#"{"topic":"t","data":1,"user":"u","connection":"c"}"#.into())
        .await
        .assert_error(400, "invalid_event");
    post("[]".into()).await.assert_error(400, "empty_batch");
    post("\"just a string\"".into())
        .await
        .assert_error(400, "invalid_event");
    post(json!({"topic": "t", "data": "x".repeat(200)}).to_string())
        .await
        .assert_error(413, "event_too_large");
    post(json!({"topic": "t", "data": "x".repeat(3000)}).to_string())
        .await
        .assert_error(413, "body_too_large");

    // A chunked body over the limit is refused as well (no Content-Length to check).
    let chunk = "x".repeat(1500);
    let raw = format!(
        "POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    http::send_raw(server.addr(), raw.as_bytes())
        .await
        .unwrap()
        .assert_error(413, "body_too_large");

    // A batch with one bad event publishes nothing.
    let batch = json!([{"topic": "t", "data": "never"}, {"topic": "t", "data": "x".repeat(200)}]);
    post(batch.to_string())
        .await
        .assert_error(413, "event_too_large");

    let sub_error = |path: String| {
        let addr = server.addr();
        async move { SseClient::connect(addr, &path, &[]).await.unwrap() }
    };
    sub_error("/events?topic=a..b".into())
        .await
        .assert_error(400, "invalid_selector");
    sub_error("/events?topic=a.%3E.b".into())
        .await
        .assert_error(400, "invalid_selector");
    sub_error("/events".into())
        .await
        .assert_error(400, "missing_topic");
    sub_error(events_path(&["a", "b", "c", "d"]))
        .await
        .assert_error(413, "too_many_selectors");
    sub_error("/events?topic=t&user=".into())
        .await
        .assert_error(400, "invalid_user");

    server.get("/nope").await.assert_error(404, "not_found");
    server
        .get("/publish")
        .await
        .assert_error(405, "method_not_allowed");
    http::request(server.addr(), "DELETE", "/events?topic=t", &[], b"")
        .await
        .unwrap()
        .assert_error(405, "method_not_allowed");
    // Garbage on the socket does not hurt the server.
    let _ = http::send_raw(server.addr(), b"\x00\x01 NOT HTTP\r\n\r\n").await;

    server
        .publish(json!({"topic": "t", "data": "still alive"}))
        .await;
    assert_eq!(
        data(&live.collect_events(1, WAIT).await),
        ["still alive"],
        "nothing refused was delivered"
    );
    live.assert_quiet(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn the_connection_limit_answers_429_and_frees_up() {
    let server = support::herald().config_toml(CONFIG).spawn().await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(server.subscribe(&["t"]).await);
    }
    let refused = SseClient::connect(server.addr(), "/events?topic=t", &[])
        .await
        .unwrap();
    refused.assert_error(429, "too_many_connections");
    assert!(
        refused.header("retry-after").is_some(),
        "429 carries Retry-After"
    );
    support::wait_metric(&server, "herald_connections", 3.0).await;

    server.publish(json!({"topic": "t", "data": "x"})).await;
    for client in &mut open {
        assert_eq!(
            data(&client.collect_events(1, WAIT).await),
            ["x"],
            "existing streams are unaffected"
        );
    }
    open.pop().unwrap().close();
    support::wait_metric(&server, "herald_connections", 2.0).await;
    server.subscribe(&["t"]).await;
}
