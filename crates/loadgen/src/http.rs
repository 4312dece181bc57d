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
pub struct Target {
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
    pub async fn resolve(url: &str) -> Result<Self, Error> {
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
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.base, self.prefix)
    }

    /// The server's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// An open SSE response stream.
#[derive(Debug)]
pub struct SseConn {
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
    pub async fn open(
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
    pub async fn read(&mut self, items: &mut Vec<Item>) -> Result<bool, Error> {
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
    pub fn last_event_id(&self) -> &str {
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
