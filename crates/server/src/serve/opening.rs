//! The opening of a connection: read until it is a complete, body-less `GET /events`
//! head (served by `streaming`), or clearly something else (served by hyper).

use bytes::Bytes;
use http_body_util::Empty;
use tokio::{io::AsyncReadExt as _, net::TcpStream};
use warp::http::{self, HeaderName, HeaderValue, Request, Uri, Version, header};

/// The start of a request line that the streaming path serves.
const EVENTS_REQUEST: &[u8] = b"GET /events";
/// The first read's buffer; a request head rarely needs more.
const HEAD_BUFFER: usize = 1024;
/// Longest request head the streaming path reads; a longer one goes to hyper.
const MAX_HEAD: usize = 16 * 1024;
/// Most header fields the streaming path parses; more go to hyper.
const MAX_HEADERS: usize = 64;

/// What the start of a connection turned out to be.
#[derive(Debug)]
pub(super) enum Opening {
    /// A complete, body-less `GET /events` request.
    Events(Box<Request<Empty<Bytes>>>),
    /// Anything else: the bytes read so far.
    Other(Vec<u8>),
    /// The client closed (or broke) the connection first, or took too long.
    Gone,
}

/// Reads until the opening request is a complete `GET /events` head, or clearly
/// something else.
pub(super) async fn read_opening(stream: &mut TcpStream) -> Opening {
    let mut buf = Vec::with_capacity(HEAD_BUFFER);
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= MAX_HEAD {
                return Opening::Other(buf);
            }
            buf.reserve(buf.len());
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() => return Opening::Gone,
            // Half a request and then EOF: hyper answers it as it would.
            Ok(0) => return Opening::Other(buf),
            Ok(_) => {}
            Err(_) => return Opening::Gone,
        }
        let seen = buf.len().min(EVENTS_REQUEST.len());
        if buf[..seen] != EVENTS_REQUEST[..seen] {
            return Opening::Other(buf);
        }
        match parse_head(&buf) {
            Head::Partial => {}
            Head::Complete(request) => return Opening::Events(request),
            Head::Unsupported => return Opening::Other(buf),
        }
    }
}

#[derive(Debug)]
enum Head {
    Partial,
    Complete(Box<Request<Empty<Bytes>>>),
    /// Malformed, or something only hyper handles (a body, too many headers).
    Unsupported,
}

fn parse_head(buf: &[u8]) -> Head {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut fields);
    match head.parse(buf) {
        Ok(httparse::Status::Partial) => Head::Partial,
        Ok(httparse::Status::Complete(_)) => {
            to_request(&head).map_or(Head::Unsupported, |r| Head::Complete(Box::new(r)))
        }
        Err(_) => Head::Unsupported,
    }
}

fn to_request(head: &httparse::Request<'_, '_>) -> Option<Request<Empty<Bytes>>> {
    let version = match head.version? {
        0 => Version::HTTP_10,
        1 => Version::HTTP_11,
        _ => return None,
    };
    let mut request = Request::builder()
        .method(http::Method::GET)
        .uri(Uri::try_from(head.path?).ok()?)
        .version(version);
    for field in head.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes()).ok()?;
        let has_body = (name == header::CONTENT_LENGTH && field.value != b"0")
            || name == header::TRANSFER_ENCODING;
        if has_body {
            return None;
        }
        request = request.header(name, HeaderValue::from_bytes(field.value).ok()?);
    }
    request.body(Empty::new()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(head: &[u8]) -> Request<Empty<Bytes>> {
        match parse_head(head) {
            Head::Complete(request) => *request,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_plain_events_request_is_parsed() {
        let request =
            complete(b"GET /events?topic=a.%3E HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1-2\r\n\r\n");
        assert_eq!(request.uri().path(), "/events");
        assert_eq!(request.uri().query(), Some("topic=a.%3E"));
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers()["last-event-id"], "1-2");
        assert_eq!(
            complete(b"GET /events HTTP/1.0\n\n").version(),
            Version::HTTP_10
        );
    }

    #[test]
    fn partial_heads_wait_and_bodies_or_junk_go_to_hyper() {
        assert!(matches!(
            parse_head(b"GET /events HTTP/1.1\r\nHost"),
            Head::Partial
        ));
        for head in [
            &b"GET /events HTTP/1.1\r\nContent-Length: 3\r\n\r\n"[..],
            b"GET /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /events HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"GET /events HTTP/1.1\r\nX: \x01\r\n\r\n",
        ] {
            assert!(matches!(parse_head(head), Head::Unsupported), "{head:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        let head = format!("GET /events HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(parse_head(head.as_bytes()), Head::Unsupported));
    }
}
