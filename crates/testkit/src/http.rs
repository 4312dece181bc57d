//! One-shot HTTP requests for tests: well-formed ones through reqwest
//! ([`request`], [`get`], [`post_json`]), and bytes no HTTP library would send
//! ([`send_raw`]), whose answer hyper reads.
//!
//! Every request uses a fresh connection. [`request`] and [`send_raw`] return
//! transport errors; [`get`] and [`post_json`] are the everyday shorthands and
//! panic on them.
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

mod raw;

pub use raw::send_raw;

/// How long a request may take in all, response body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A response head: status and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code, e.g. `200`.
    pub status: u16,
    /// The canonical reason phrase of the status, e.g. `OK` (may be empty).
    pub reason: String,
    /// The header fields in order, names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The head of an `http` response.
    pub(crate) fn new(status: reqwest::StatusCode, headers: &reqwest::header::HeaderMap) -> Self {
        Head {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or_default().to_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes());
                    (name.as_str().to_owned(), value.trim().to_owned())
                })
                .collect(),
        }
    }

    /// The first value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

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
        find_header(&self.headers, name)
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

/// The first value of header `name` (any case) in a lowercased header list.
fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
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

/// A client that keeps no idle connection: each `#[tokio::test]` has its own
/// runtime, and a pooled connection would outlive it.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .tcp_nodelay(true)
        .build()
        .expect("a plain HTTP client builds")
}

/// A reqwest error as an `io::Error`, its sources in the message.
pub(crate) fn io_error(err: reqwest::Error) -> io::Error {
    let kind = if err.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, chain(&err))
}

/// An error and its sources, `a: b: c`: HTTP clients' errors say little
/// without their causes.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        msg.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    msg
}

/// Sends a well-formed request and reads the whole response, within
/// `DEFAULT_TIMEOUT`. `headers` are added as given; a body gets a
/// `Content-Length`. For framing by hand (a chunked upload, a malformed
/// head), use [`send_raw`].
///
/// # Errors
///
/// Connection or I/O failures, an invalid method or header, or `TimedOut`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut request = client()
        .request(method, format!("http://{addr}{path}"))
        .timeout(DEFAULT_TIMEOUT)
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.map_err(io_error)?;
    let head = Head::new(response.status(), response.headers());
    let body = response.bytes().await.map_err(io_error)?;
    Ok(Response {
        status: head.status,
        headers: head.headers,
        body: body.to_vec(),
    })
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
pub(crate) mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// Serves one connection: records the request head, answers `reply` in
    /// small pieces, then keeps the connection open unless `close`.
    pub(crate) async fn one_shot(
        reply: &'static [u8],
        close: bool,
    ) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (seen, mut socket) = crate::canned::accept(&listener).await;
            for piece in reply.chunks(5) {
                socket.write_all(piece).await.unwrap();
            }
            if !close {
                // Hold the connection until the client is done with it.
                let _ = socket.read(&mut [0; 1]).await;
            }
            seen
        });
        (addr, task)
    }

    #[tokio::test]
    async fn post_json_sends_length_and_reads_a_chunked_reply() {
        let (addr, task) = one_shot(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\n\r\n4\r\n{\"id\r\n7\r\n\": \"1\"}\r\n0\r\n\r\n",
            true,
        )
        .await;
        let res = post_json(addr, "/publish", "{}", &[("X-Test", "1")]).await;
        assert_eq!(res.assert_status(200).json()["id"], "1");
        let sent = task.await.unwrap().to_ascii_lowercase();
        assert!(sent.starts_with("post /publish http/1.1\r\n"), "{sent}");
        for line in [
            "content-length: 2",
            "content-type: application/json",
            "x-test: 1",
        ] {
            assert!(sent.contains(&format!("{line}\r\n")), "{sent}");
        }
    }

    #[tokio::test]
    async fn error_replies_are_checked() {
        let (addr, _task) = one_shot(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\n\
              content-length: 55\r\n\r\n{\"error\":{\"code\":\"body_too_large\",\"message\":\"too big\"}}",
            false,
        )
        .await;
        let res = get(addr, "/x", &[]).await;
        res.assert_error(413, "body_too_large");
        assert_eq!(res.header("Content-Length"), Some("55"));
    }
}
