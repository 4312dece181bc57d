//! Raw HTTP/1.1 SSE connections: one small socket, one reusable buffer, the
//! body decoder and the SSE parser per subscriber.
//!
//! A general HTTP client holds far more state per connection than tens of
//! thousands of idle streams can afford, and the request is one fixed GET.

use std::net::{IpAddr, SocketAddr};

use herald_sse::{Item, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::{BodyDecoder, Error};

/// Read buffer per connection: events are ~128 bytes; a catch-up burst just
/// takes more reads.
const BUFFER: usize = 4096;

/// Most response headers accepted.
const MAX_HEADERS: usize = 32;

/// The server: where to connect and what to put in `Host`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    base: String,
    addr: SocketAddr,
    host: String,
    prefix: String,
}

impl Target {
    /// Parses an `http://host:port[/prefix]` URL and resolves its host once.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a malformed or non-`http` URL, [`Error::Io`]
    /// when the host does not resolve.
    pub(crate) async fn resolve(url: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Invalid {
            what: "url",
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(format!("{url:?}: {e}")))?;
        if parsed.scheme() != "http" {
            return Err(invalid(format!("{url:?}: only http:// is supported")));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| invalid(format!("{url:?} has no host")))?
            .to_owned();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| Error::io(format!("resolving {host}"), e))?
            .next()
            .ok_or_else(|| invalid(format!("{host} resolves to no address")))?;
        let prefix = parsed.path().trim_end_matches('/').to_owned();
        Ok(Self {
            base: format!("http://{host}:{port}"),
            addr,
            host: format!("{host}:{port}"),
            prefix,
        })
    }

    /// The full URL of `path` (a template expansion starting with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.base, self.prefix)
    }
}

/// An open SSE response stream.
#[derive(Debug)]
pub(crate) struct SseConn {
    stream: TcpStream,
    decoder: BodyDecoder,
    parser: Parser,
    buf: Box<[u8]>,
    /// Body bytes that came with the response head, not yet decoded.
    leftover: std::ops::Range<usize>,
}

impl SseConn {
    /// Connects (from `source` when given), sends `GET path` with an optional
    /// `Last-Event-ID`, and reads the response head.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the connection fails, [`Error::Status`] when the
    /// answer is not 200, [`Error::Protocol`] when it is not HTTP.
    pub(crate) async fn open(
        target: &Target,
        source: Option<IpAddr>,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<Self, Error> {
        let addr = target.addr;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| Error::io("creating a socket", e))?;
        if let Some(ip) = source {
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| Error::io(format!("binding to {ip}"), e))?;
        }
        let mut stream = socket
            .connect(addr)
            .await
            .map_err(|e| Error::io(format!("connecting to {addr}"), e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io("setting TCP_NODELAY", e))?;

        let mut request = format!(
            "GET {}{path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\
             Cache-Control: no-cache\r\nUser-Agent: herald-loadgen\r\n",
            target.prefix, target.host
        );
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| Error::io("sending the request", e))?;

        let mut buf = vec![0u8; BUFFER].into_boxed_slice();
        let mut filled = 0;
        loop {
            let n = stream
                .read(&mut buf[filled..])
                .await
                .map_err(|e| Error::io("reading the response head", e))?;
            if n == 0 {
                return Err(Error::Protocol(
                    "connection closed before the response head".into(),
                ));
            }
            filled += n;
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&buf[..filled]) {
                Ok(httparse::Status::Complete(head)) => {
                    let status = response.code.unwrap_or(0);
                    if status != 200 {
                        let body = String::from_utf8_lossy(&buf[head..filled]);
                        return Err(Error::Status {
                            status,
                            body: body.chars().take(200).collect(),
                        });
                    }
                    let chunked = response.headers.iter().any(|h| {
                        h.name.eq_ignore_ascii_case("transfer-encoding")
                            && String::from_utf8_lossy(h.value)
                                .to_ascii_lowercase()
                                .contains("chunked")
                    });
                    let decoder = if chunked {
                        BodyDecoder::chunked()
                    } else {
                        BodyDecoder::plain()
                    };
                    return Ok(Self {
                        stream,
                        decoder,
                        parser: Parser::new(),
                        buf,
                        leftover: head..filled,
                    });
                }
                Ok(httparse::Status::Partial) if filled < buf.len() => {}
                Ok(httparse::Status::Partial) => {
                    return Err(Error::Protocol("response head over 4 KiB".into()));
                }
                Err(e) => return Err(Error::Protocol(format!("response head: {e}"))),
            }
        }
    }

    /// Waits for more of the stream and appends the SSE items it completes
    /// to `items`. `Ok(false)` once the server ended the stream.
    ///
    /// Cancel safe: dropping the future loses no bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] on a socket error, [`Error::Protocol`] on bad framing.
    pub(crate) async fn read(&mut self, items: &mut Vec<Item>) -> Result<bool, Error> {
        if !self.leftover.is_empty() {
            let range = std::mem::replace(&mut self.leftover, 0..0);
            self.consume(range, items)?;
            return Ok(true);
        }
        if self.decoder.is_done() {
            return Ok(false);
        }
        let n = self
            .stream
            .read(&mut self.buf)
            .await
            .map_err(|e| Error::io("reading the stream", e))?;
        if n == 0 {
            return Ok(false);
        }
        self.consume(0..n, items)?;
        Ok(true)
    }

    /// The last event id the stream set (what a reconnect sends back).
    pub(crate) fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    fn consume(
        &mut self,
        range: std::ops::Range<usize>,
        items: &mut Vec<Item>,
    ) -> Result<(), Error> {
        let mut failed = None;
        let parser = &mut self.parser;
        self.decoder.decode(&self.buf[range], |part| {
            if failed.is_none() {
                failed = parser.feed_into(part, items).err();
            }
        })?;
        match failed {
            Some(e) => Err(Error::Protocol(format!("event stream: {e}"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    //! `SseConn` and `Receiver` against a canned SSE server on loopback.

    use herald_testkit::canned;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::{Receiver, Recorder, payload};

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
            let (request, mut socket) = canned::accept(&listener).await;
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
            let (request, mut socket) = canned::accept(&listener).await;
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
}
