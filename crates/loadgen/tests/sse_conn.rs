//! `SseConn` and `Receiver` against a canned SSE server on loopback.

use herald_loadgen::{Error, Receiver, Recorder, SseConn, Target, payload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Accepts one connection, returns the request head and the socket.
async fn accept(listener: &TcpListener) -> (String, TcpStream) {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "client closed before its request was complete");
        request.extend_from_slice(&buf[..n]);
    }
    (String::from_utf8(request).unwrap(), socket)
}

fn chunk(text: &str) -> String {
    format!("{:x}\r\n{text}\r\n", text.len())
}

fn event(id: u64, seq: u64) -> String {
    let mut data = String::new();
    payload::write(&mut data, seq, payload::unix_micros(), 0, false, 96);
    format!("id: {id}\ndata: {data}\n\n")
}

#[tokio::test]
async fn reads_a_chunked_stream_and_resumes_with_last_event_id() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = Target::resolve(&format!("http://{}", listener.local_addr().unwrap()))
        .await
        .unwrap();
    let server = tokio::spawn(async move {
        let (request, mut socket) = accept(&listener).await;
        // The head and the first chunk in one write: body bytes arrive with the head.
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                    transfer-encoding: chunked\r\n\r\n";
        let first = chunk("event: herald.connected\ndata: {\"connection\":\"c\"}\n\n");
        socket
            .write_all(format!("{head}{first}").as_bytes())
            .await
            .unwrap();
        // An event split across two chunks, then a comment and a second event.
        let one = event(11, 0);
        let (a, b) = one.split_at(20);
        for part in [
            chunk(a),
            chunk(b),
            chunk(":\n\n"),
            chunk(&event(12, 1)),
            "0\r\n\r\n".into(),
        ] {
            socket.write_all(part.as_bytes()).await.unwrap();
            socket.flush().await.unwrap();
        }
        request
    });

    let source = Some("127.0.0.1".parse().unwrap());
    let mut conn = SseConn::open(&target, source, "/events?topic=t", Some("10"))
        .await
        .unwrap();
    let recorder = Recorder::default();
    let mut rx = Receiver::new(0, 0, 0);
    let mut items = Vec::new();
    while conn.read(&mut items).await.unwrap() {
        for item in items.drain(..) {
            rx.on_item(&item, &recorder);
        }
    }
    assert_eq!(conn.last_event_id(), "12");
    let (counts, tally) = rx.finish(2);
    assert_eq!(counts.received, 2);
    assert!(!counts.has_anomaly(), "{counts:?}");
    assert_eq!((tally.comments, tally.other, tally.measured), (1, 0, 2));
    assert_eq!(recorder.latency().len(), 2);

    let request = server.await.unwrap();
    assert!(
        request.starts_with("GET /events?topic=t HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("\r\nLast-Event-ID: 10\r\n"), "{request}");
    assert!(
        request.contains("\r\nAccept: text/event-stream\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn a_refusal_is_a_status_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = Target::resolve(&format!(
        "http://{}/prefix/",
        listener.local_addr().unwrap()
    ))
    .await
    .unwrap();
    let server = tokio::spawn(async move {
        let (request, mut socket) = accept(&listener).await;
        let body = r#"{"error":{"code":"too_many_connections"}}"#;
        let response = format!(
            "HTTP/1.1 429 Too Many Requests\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        request
    });
    let err = SseConn::open(&target, None, "/events?topic=t", None)
        .await
        .unwrap_err();
    match &err {
        Error::Status { status, body } => {
            assert_eq!(*status, 429);
            assert!(body.contains("too_many_connections"), "{body}");
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    assert_eq!(err.kind(), "status 429");
    let request = server.await.unwrap();
    assert!(
        request.starts_with("GET /prefix/events?topic=t "),
        "{request}"
    );
}
