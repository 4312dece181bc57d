//! How connections are served: a connection that opens with `GET /events` takes the
//! streaming path, every other one goes to hyper; clients must not be able to tell,
//! whatever the HTTP version, however the head arrives, and whichever request came first.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{WAIT, wait_metric};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Reads from `stream` into `seen` until it contains `needle`; panics after [`WAIT`].
async fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &str) {
    let found = |seen: &[u8]| String::from_utf8_lossy(seen).contains(needle);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !found(seen) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {needle:?} within {WAIT:?}; got {:?}",
                    String::from_utf8_lossy(seen)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "closed before {needle:?}; got {:?}",
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn a_stream_on_a_reused_keep_alive_connection_is_served_by_hyper() {
    let server = support::start().await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, "\r\n\r\n").await;
    let head = String::from_utf8_lossy(&seen).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");

    // The same connection now asks for a stream.
    stream
        .write_all(b"GET /events?topic=kept HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut stream, &mut seen, "herald.connected").await;
    server
        .publish(json!({"topic": "kept", "data": "on a reused connection"}))
        .await;
    read_until(&mut stream, &mut seen, "data: on a reused connection\n\n").await;
}

#[tokio::test]
async fn http10_clients_get_a_stream_delimited_by_close() {
    let server = support::start().await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /events?topic=old HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, "herald.connected").await;
    let id = server
        .publish(json!({"topic": "old", "data": "plain"}))
        .await;
    let frame = format!("id: {id}\ndata: plain\n\n");
    read_until(&mut stream, &mut seen, &frame).await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head = head.to_lowercase();
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(
        body.starts_with("event: herald.connected\n"),
        "no chunk sizes: {body:?}"
    );
    assert!(body.ends_with(&frame), "{body:?}");
}

#[tokio::test]
async fn a_head_that_arrives_in_pieces_is_served() {
    let server = support::start().await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    for piece in [
        "GE",
        "T /eve",
        "nts?topic=slow HTTP/1.1\r\nHo",
        "st: h\r\n",
        "\r\n",
    ] {
        stream.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, "herald.connected").await;
    let head = String::from_utf8_lossy(&seen).to_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
}

#[tokio::test]
async fn an_events_request_with_a_body_still_gets_an_answer() {
    let server = support::start().await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /events?topic=odd HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, "herald.connected").await;
    server
        .publish(json!({"topic": "odd", "data": "still"}))
        .await;
    read_until(&mut stream, &mut seen, "data: still\n\n").await;
}

#[tokio::test]
async fn errors_on_the_streaming_path_are_json_and_close_the_connection() {
    let server = support::start().await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut seen))
        .await
        .expect("the connection closes after the error")
        .unwrap();
    let text = String::from_utf8_lossy(&seen);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 400 Bad Request"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    let error: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(error["error"]["code"], "missing_topic");
}

#[tokio::test]
async fn clients_that_leave_idle_streams_free_their_connections_at_once() {
    // No heartbeat for a minute: only reading the socket can notice the clients leave.
    let server = support::herald()
        .config_toml("[sse]\nheartbeat_ms = 60000\n")
        .spawn()
        .await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(server.subscribe(&["idle"]).await);
    }
    wait_metric(&server, "herald_connections", 3.0).await;
    for client in clients {
        client.close();
    }
    wait_metric(&server, "herald_connections", 0.0).await;
}
