//! The streaming path: answers one `GET /events` request through the routes and writes
//! the response itself, HTTP/1.1 on a bare socket.
//!
//! An event stream (`200`, `text/event-stream`) is written chunk by chunk as its frames
//! come, with `Transfer-Encoding: chunked` (close-delimited for HTTP/1.0); any other
//! response (an error) is written whole. Either way the connection closes afterwards:
//! an `EventSource` never reuses one. While a stream is idle the connection holds the
//! socket, this task and the stream's own state, nothing else; the socket is also read,
//! so a client that leaves is noticed at once, not at the next heartbeat.

use std::io::{self, Write as _};

use bytes::{Buf as _, Bytes};
use http_body_util::{BodyExt as _, Empty};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::TcpStream,
};
use warp::http::{HeaderMap, Request, StatusCode, Version, header, response::Parts};

use crate::api::Routes;

/// Serves `request` on `stream`, then closes it.
pub(super) async fn respond(mut stream: TcpStream, request: Request<Empty<Bytes>>, routes: Routes) {
    let http10 = request.version() == Version::HTTP_10;
    let Ok(response) = tower_service::Service::call(&mut warp::service(routes), request).await;
    let (parts, body) = response.into_parts();
    let written = if is_event_stream(&parts) {
        let framing = if http10 {
            Framing::Close
        } else {
            Framing::Chunked
        };
        let head = head(&parts, framing);
        drop(parts);
        let (mut reader, mut writer) = stream.split();
        write_stream(&mut reader, &mut writer, head, body, framing).await
    } else {
        write_whole(&mut stream, &parts, body).await
    };
    if let Err(err) = written {
        tracing::debug!(%err, "event stream connection ended");
    }
}

fn is_event_stream(parts: &Parts) -> bool {
    parts.status == StatusCode::OK
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// How the body's end is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Chunked,
    Length(usize),
    /// By closing the connection (HTTP/1.0).
    Close,
}

/// The status line and header fields, with the framing headers and `Connection: close`
/// set here rather than taken from the response.
fn head(parts: &Parts, framing: Framing) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    let status = parts.status;
    let reason = status.canonical_reason().unwrap_or("");
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    // Writing into a Vec cannot fail.
    let _ = write!(
        head,
        "HTTP/1.1 {} {reason}\r\ndate: {date}\r\n",
        status.as_u16()
    );
    write_fields(&mut head, &parts.headers);
    match framing {
        Framing::Chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Length(n) => {
            let _ = write!(head, "content-length: {n}\r\n");
        }
        Framing::Close => {}
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head
}

fn write_fields(head: &mut Vec<u8>, fields: &HeaderMap) {
    let framing = [
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::DATE,
    ];
    for (name, value) in fields {
        if framing.contains(name) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
}

/// Writes `head`, then every frame of `body` as it comes, until the body or the client
/// ends.
async fn write_stream<R, W, B>(
    reader: &mut R,
    writer: &mut W,
    head: Vec<u8>,
    mut body: B,
    framing: Framing,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    B: http_body::Body + Unpin,
    B::Error: std::fmt::Display,
{
    writer.write_all(&head).await?;
    drop(head);
    // Whatever a client sends after its request is read and dropped; what matters is
    // the end of file when it leaves.
    let mut probe = [0u8; 32];
    loop {
        tokio::select! {
            biased;
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data()
                        && data.has_remaining()
                    {
                        write_data(writer, &mut data, framing).await?;
                    }
                }
                // No terminating chunk: the client sees a broken stream and reconnects.
                Some(Err(err)) => return Err(io::Error::other(err.to_string())),
                None => break,
            },
            read = reader.read(&mut probe) => {
                if read? == 0 {
                    return Ok(());
                }
            }
        }
    }
    if framing == Framing::Chunked {
        writer.write_all(b"0\r\n\r\n").await?;
    }
    writer.shutdown().await
}

/// Writes one frame of the body: as a chunk, or as is.
async fn write_data<W, D>(writer: &mut W, data: &mut D, framing: Framing) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    D: bytes::Buf,
{
    if framing != Framing::Chunked {
        return writer.write_all_buf(data).await;
    }
    let mut line = [0u8; 18];
    let size = chunk_size_line(data.remaining(), &mut line);
    // One vectored write: size line, frame, CRLF.
    let mut chunk = bytes::Buf::chain(bytes::Buf::chain(size, data), &b"\r\n"[..]);
    writer.write_all_buf(&mut chunk).await
}

/// `len` in hex and CRLF, the line that opens a chunk: written by hand, since this runs
/// once per delivery.
fn chunk_size_line(len: usize, line: &mut [u8; 18]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 16;
    let mut rest = len;
    loop {
        start -= 1;
        line[start] = HEX[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    line[16..].copy_from_slice(b"\r\n");
    &line[start..]
}

/// Writes a response that is not an event stream, whole.
async fn write_whole<B>(stream: &mut TcpStream, parts: &Parts, body: B) -> io::Result<()>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    let body = body
        .collect()
        .await
        .map_err(|err| io::Error::other(err.to_string()))?
        .to_bytes();
    let mut response = head(parts, Framing::Length(body.len()));
    response.extend_from_slice(&body);
    stream.write_all(&response).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn body(
        frames: &[&'static str],
    ) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, io::Error>> + Unpin> {
        let frames: Vec<_> = frames
            .iter()
            .map(|f| Ok(Frame::data(Bytes::from_static(f.as_bytes()))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    /// Streams `frames` with `framing` and returns what the client read.
    async fn stream(frames: &[&'static str], framing: Framing) -> String {
        let (client, server) = tokio::io::duplex(4096);
        let (mut reader, mut writer) = tokio::io::split(server);
        let head = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        let (client_side, result) = tokio::join!(
            async move {
                let mut client = client;
                let mut text = String::new();
                client.read_to_string(&mut text).await.unwrap();
                text
            },
            write_stream(&mut reader, &mut writer, head, body(frames), framing)
        );
        result.unwrap();
        client_side
    }

    #[tokio::test]
    async fn frames_are_chunks_and_the_end_is_the_last_chunk() {
        let text = stream(&["data: a\n\n", "", "data: bc\n\n"], Framing::Chunked).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\n\r\n9\r\ndata: a\n\n\r\na\r\ndata: bc\n\n\r\n0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn http10_streams_are_delimited_by_close() {
        let text = stream(&["data: a\n\n", "data: b\n\n"], Framing::Close).await;
        assert_eq!(text, "HTTP/1.1 200 OK\r\n\r\ndata: a\n\ndata: b\n\n");
    }

    #[tokio::test]
    async fn a_client_that_leaves_ends_an_idle_stream() {
        let (mut client, server) = tokio::io::duplex(4096);
        let idle = StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, io::Error>,
        >());
        let head = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        let len = head.len();
        let streaming = tokio::spawn(async move {
            let (mut reader, mut writer) = tokio::io::split(server);
            write_stream(&mut reader, &mut writer, head, idle, Framing::Chunked).await
        });
        let mut got = vec![0u8; len];
        client.read_exact(&mut got).await.unwrap();
        client.write_all(b"ignored pipelined bytes").await.unwrap();
        drop(client);
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), streaming).await;
        assert!(
            ended
                .expect("the stream outlived its client")
                .unwrap()
                .is_ok()
        );
    }

    #[test]
    fn chunk_sizes_are_lowercase_hex() {
        for len in [0, 1, 9, 10, 255, 4096, 0xabc_def, usize::MAX] {
            let mut line = [0u8; 18];
            let got = chunk_size_line(len, &mut line);
            assert_eq!(got, format!("{len:x}\r\n").as_bytes());
        }
    }

    #[test]
    fn the_head_sets_its_own_framing_and_close() {
        let response = warp::http::Response::builder()
            .header("content-type", "text/event-stream")
            .header("content-length", "99")
            .header("connection", "keep-alive")
            .body(())
            .unwrap();
        let (parts, ()) = response.into_parts();
        let head = String::from_utf8(head(&parts, Framing::Length(7))).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\ndate: "), "{head}");
        assert!(
            head.ends_with(
                "content-type: text/event-stream\r\ncontent-length: 7\r\nconnection: close\r\n\r\n"
            ),
            "{head}"
        );
        assert_eq!(head.matches("content-length").count(), 1);
        assert!(!head.contains("keep-alive"));
        assert!(is_event_stream(&parts));
    }
}
