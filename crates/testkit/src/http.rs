//! Tiny HTTP/1.1 client over raw TCP, for tests.
//!
//! Every request opens a fresh connection and sends `Connection: close`.
//! [`request`] and [`send_raw`] give the caller full control (malformed
//! JSON, bodies over a limit, chunked uploads); [`get`] and [`post_json`]
//! are the everyday shorthands and panic on transport errors.
//!
//! ```no_run
//! # async fn example(addr: std::net::SocketAddr) {
//! use herald_testkit::http;
//!
//! let res = http::post_json(addr, "/publish", r#"{"topic": "a", "evnet": "x"}"#, &[]).await;
//! res.assert_error(400, "unknown_field");
//! # }
//! ```

use std::{borrow::Cow, io, net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::wire::{self, BodyDecoder};

/// How long [`get`] and [`post_json`] wait for a whole response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::find_header(&self.headers, name)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON; the message shows status and body.
    pub fn json(&self) -> serde_json::Value {
        parse_json(self.status, &self.body)
    }

    /// Asserts the status is `status`; returns `self` for chaining.
    ///
    /// # Panics
    ///
    /// When it is not; the message shows the body.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "expected status {status}, got {} with body {:?}",
            self.status,
            self.text()
        );
        self
    }

    /// Asserts a Herald error reply (the shape `docs/api.md` gives): this `status`, a JSON
    /// content type, and a body `{"error": {"code": code, "message": "<non-empty>"}}`.
    ///
    /// # Panics
    ///
    /// When any part differs.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_error_reply(
            self.status,
            self.header("content-type"),
            &self.body,
            status,
            code,
        );
        self
    }
}

/// Parses `body` as JSON or panics showing it.
#[track_caller]
pub(crate) fn parse_json(status: u16, body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|err| {
        panic!(
            "response body (status {status}) is not JSON ({err}): {:?}",
            String::from_utf8_lossy(body)
        )
    })
}

/// The check behind [`Response::assert_error`], shared with the SSE client.
#[track_caller]
pub(crate) fn assert_error_reply(
    got_status: u16,
    content_type: Option<&str>,
    body: &[u8],
    status: u16,
    code: &str,
) {
    let text = String::from_utf8_lossy(body);
    assert_eq!(
        got_status, status,
        "expected status {status}, got {got_status} with body {text:?}"
    );
    assert!(
        content_type.is_some_and(|ct| ct.starts_with("application/json")),
        "error reply content type is {content_type:?}, not application/json; body {text:?}"
    );
    let json = parse_json(got_status, body);
    let error = &json["error"];
    assert_eq!(
        error["code"].as_str(),
        Some(code),
        "error reply code differs; body {text}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error reply has no message; body {text}"
    );
}

/// Sends a request and reads the whole response, within `DEFAULT_TIMEOUT`.
///
/// Adds `Host` and `Connection: close`, and `Content-Length` when `body` is
/// not empty or the method is `POST`/`PUT`/`PATCH` — unless `headers`
/// already has that header or `Transfer-Encoding` (then `body` is sent as
/// given, so it must already be chunk-encoded).
///
/// # Errors
///
/// Connection or I/O failures, a malformed response, or `TimedOut`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    let wants_length = !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH");
    if wants_length && !has("content-length") && !has("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    send_raw_with(addr, &bytes, method == "HEAD").await
}

/// Writes `bytes` to a fresh connection as they are and reads one response,
/// within `DEFAULT_TIMEOUT`. For requests no well-behaved client would send.
///
/// # Errors
///
/// As [`request`].
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> io::Result<Response> {
    send_raw_with(addr, bytes, bytes.starts_with(b"HEAD ")).await
}

async fn send_raw_with(addr: SocketAddr, bytes: &[u8], head_only: bool) -> io::Result<Response> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        stream.write_all(bytes).await?;
        read_response(&mut stream, head_only).await
    };
    tokio::time::timeout(DEFAULT_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no complete response from {addr} within {DEFAULT_TIMEOUT:?}"),
            ))
        })
}

async fn read_response(stream: &mut TcpStream, head_only: bool) -> io::Result<Response> {
    let mut buf = Vec::new();
    let head = wire::read_head(stream, &mut buf).await?;
    let kind = if head_only {
        wire::BodyKind::Empty
    } else {
        head.body_kind()
    };
    let body = read_body(stream, buf, BodyDecoder::new(kind)).await?;
    Ok(Response {
        status: head.status,
        headers: head.headers,
        body,
    })
}

/// Reads the rest of a body whose first bytes are `already`.
pub(crate) async fn read_body(
    stream: &mut TcpStream,
    already: Vec<u8>,
    mut decoder: BodyDecoder,
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    decoder.feed(&already, &mut body)?;
    let mut chunk = [0; 8192];
    while !decoder.is_done() {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // The server may reset after replying to a request it refused.
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset && decoder.eof_is_clean() => 0,
            Err(err) => return Err(err),
        };
        if n == 0 {
            if decoder.eof_is_clean() {
                break;
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed inside the body; got {:?}",
                    String::from_utf8_lossy(&body)
                ),
            ));
        }
        decoder.feed(&chunk[..n], &mut body)?;
    }
    Ok(body)
}

/// `GET path` with extra `headers`.
///
/// # Panics
///
/// On a transport error or timeout (every request gets an answer in time, so a hang is
/// a bug).
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request(addr, "GET", path, headers, b"")
        .await
        .unwrap_or_else(|err| panic!("GET {path} on {addr} failed: {err}"))
}

/// `POST path` with `body` as `application/json` (unless `headers` sets a
/// content type) and extra `headers`. `body` is sent verbatim, so it may be
/// malformed on purpose.
///
/// # Panics
///
/// On a transport error or timeout.
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut all = headers.to_vec();
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        all.push(("Content-Type", "application/json"));
    }
    request(addr, "POST", path, &all, body.as_bytes())
        .await
        .unwrap_or_else(|err| panic!("POST {path} on {addr} failed: {err}"))
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// Serves one connection: records the request head, answers `reply`.
    async fn one_shot(reply: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            while wire::head_len(&seen).is_none() {
                let mut chunk = [0; 1024];
                let n = socket.read(&mut chunk).await.unwrap();
                seen.extend_from_slice(&chunk[..n]);
            }
            for piece in reply.chunks(5) {
                socket.write_all(piece).await.unwrap();
            }
            String::from_utf8(seen).unwrap()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn post_json_sends_length_and_reads_a_chunked_reply() {
        let (addr, task) = one_shot(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\n\r\n4\r\n{\"id\r\n7\r\n\": \"1\"}\r\n0\r\n\r\n",
        )
        .await;
        let res = post_json(addr, "/publish", "{}", &[("X-Test", "1")]).await;
        assert_eq!(res.assert_status(200).json()["id"], "1");
        let sent = task.await.unwrap();
        assert!(sent.starts_with("POST /publish HTTP/1.1\r\n"), "{sent}");
        for line in [
            "Content-Length: 2",
            "Content-Type: application/json",
            "X-Test: 1",
        ] {
            assert!(sent.contains(&format!("{line}\r\n")), "{sent}");
        }
    }

    #[tokio::test]
    async fn error_replies_are_checked() {
        let (addr, _task) = one_shot(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\n\
              content-length: 55\r\n\r\n{\"error\":{\"code\":\"body_too_large\",\"message\":\"too big\"}}",
        )
        .await;
        let res = get(addr, "/x", &[]).await;
        res.assert_error(413, "body_too_large");
        assert_eq!(res.header("Content-Length"), Some("55"));
    }
}
