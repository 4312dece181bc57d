//! Accepting connections and choosing who serves each one.
//!
//! A connection whose first request is a plain `GET /events…` is served by
//! [`streaming`]: a small HTTP/1.1 writer that holds an idle event
//! stream in a few kilobytes. Every other connection (any other request, a request with a
//! body, HTTP/2 with prior knowledge, anything the quick parse does not accept) goes to
//! hyper, with the bytes already read put back in front. Both paths run the same warp
//! routes, so a request gets the same answer either way.

use std::{future::Future, net::SocketAddr, time::Duration};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::{
    io::AsyncReadExt as _,
    net::{TcpListener, TcpStream},
};
use tokio_util::task::TaskTracker;
use warp::{
    filters::BoxedFilter,
    http::{self, HeaderName, HeaderValue, Request, Uri, Version, header},
    reply::Response,
};

use super::{ClientAddr, Stop, rewind::Rewind, stopping, streaming};

/// What the server answers with: every route.
pub(super) type Routes = BoxedFilter<(Response,)>;

/// The start of a request line that the streaming path serves.
const EVENTS_REQUEST: &[u8] = b"GET /events";
/// The first read's buffer; a request head rarely needs more.
const HEAD_BUFFER: usize = 1024;
/// Longest request head the streaming path reads; a longer one goes to hyper.
const MAX_HEAD: usize = 16 * 1024;
/// Most header fields the streaming path parses; more go to hyper.
const MAX_HEADERS: usize = 64;
/// How long a new connection may take to send its first request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed accept (out of descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connections being served, for a graceful shutdown.
#[derive(Debug)]
pub(super) struct Connections {
    routes: Routes,
    tracker: TaskTracker,
    graceful: GracefulShutdown,
    stopped: Stop,
}

impl Connections {
    /// `stopped` turns when the server stops: connections still waiting for their
    /// first request are closed then.
    pub(super) fn new(routes: Routes, stopped: Stop) -> Self {
        Self {
            routes,
            tracker: TaskTracker::new(),
            graceful: GracefulShutdown::new(),
            stopped,
        }
    }

    /// Accepts connections from `listener` until `stop` completes, then closes it and
    /// returns what `stop` did.
    pub(super) async fn accept<T>(
        &self,
        listener: TcpListener,
        stop: impl Future<Output = T>,
    ) -> T {
        let mut stop = std::pin::pin!(stop);
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                stopped = &mut stop => return stopped,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        tracing::warn!(%err, "cannot accept a connection");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            // Events are small writes that must leave at once, not wait for an ACK.
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%err, "cannot set TCP_NODELAY");
            }
            let connection = Connection {
                stream,
                peer,
                routes: self.routes.clone(),
                tracker: self.tracker.clone(),
                stopped: self.stopped.clone(),
            };
            self.tracker
                .spawn(connection.serve(self.graceful.watcher()));
        }
    }

    /// Asks hyper's connections to finish, and waits for every connection to end.
    /// Streams end by themselves once the bus is closed.
    pub(super) async fn drain(self) {
        self.tracker.close();
        tokio::join!(self.graceful.shutdown(), self.tracker.wait());
    }
}

/// One accepted connection.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    routes: Routes,
    tracker: TaskTracker,
    stopped: Stop,
}

/// What the start of a connection turned out to be.
#[derive(Debug)]
enum Opening {
    /// A complete, body-less `GET /events` request.
    Events(Box<Request<Empty<Bytes>>>),
    /// Anything else: the bytes read so far.
    Other(Vec<u8>),
    /// The client closed (or broke) the connection first, or took too long.
    Gone,
}

impl Connection {
    async fn serve(mut self, watcher: hyper_util::server::graceful::Watcher) {
        let opening = tokio::select! {
            opening = tokio::time::timeout(HEAD_TIMEOUT, read_opening(&mut self.stream)) => {
                opening.unwrap_or(Opening::Gone)
            }
            _ = stopping(&mut self.stopped) => Opening::Gone,
        };
        match opening {
            Opening::Events(mut request) => {
                request.extensions_mut().insert(ClientAddr(self.peer));
                // A task of its own, sized for the stream alone: this one also has room
                // for hyper's connection state, about a kilobyte more for every stream.
                let stream = streaming::respond(self.stream, *request, self.routes);
                tokio::spawn(self.tracker.track_future(stream));
            }
            Opening::Other(prefix) => {
                let io = TokioIo::new(Rewind::new(prefix, self.stream));
                let (peer, service) = (self.peer, warp::service(self.routes));
                let service = hyper::service::service_fn(move |mut request| {
                    request.extensions_mut().insert(ClientAddr(peer));
                    tower_service::Service::call(&mut service.clone(), request)
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                let connection = builder.serve_connection_with_upgrades(io, service);
                if let Err(err) = watcher.watch(connection).await {
                    tracing::debug!(%err, "connection ended with an error");
                }
            }
            Opening::Gone => {}
        }
    }
}

/// Reads until the opening request is a complete `GET /events` head, or clearly
/// something else.
async fn read_opening(stream: &mut TcpStream) -> Opening {
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
