//! [`send_raw`]: bytes written to the server exactly as given, the answer
//! read by hyper, so tests can send what no HTTP library would (a chunked
//! upload framed by hand, garbage) without a hand-written response parser.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

use super::{DEFAULT_TIMEOUT, Head, Response, chain};

/// Writes `bytes` to a fresh connection as they are and reads one response,
/// within `DEFAULT_TIMEOUT`. A request starting with `HEAD ` is answered
/// without a body. For requests no well-behaved client would send.
///
/// # Errors
///
/// Connection or I/O failures, a malformed response, or `TimedOut`.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> io::Result<Response> {
    let head_only = bytes.starts_with(b"HEAD ");
    tokio::time::timeout(DEFAULT_TIMEOUT, exchange(addr, bytes.to_vec(), head_only))
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no complete response from {addr} within {DEFAULT_TIMEOUT:?}"),
            ))
        })
}

async fn exchange(addr: SocketAddr, raw: Vec<u8>, head_only: bool) -> io::Result<Response> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(Substitute {
        stream,
        raw,
        written: 0,
    });
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(hyper_error)?;
    let driver = tokio::spawn(connection);
    // hyper frames the response by the request's method; the request line it
    // writes is replaced by `raw` on the way out.
    let method = if head_only {
        hyper::Method::HEAD
    } else {
        hyper::Method::GET
    };
    let request = hyper::Request::builder()
        .method(method)
        .uri("/")
        .body(Empty::<Bytes>::new())
        .expect("a static request builds");
    let result = async {
        let response = sender.send_request(request).await.map_err(hyper_error)?;
        let head = Head::new(response.status(), response.headers());
        let body = response.into_body().collect().await.map_err(hyper_error)?;
        Ok(Response {
            status: head.status,
            headers: head.headers,
            body: body.to_bytes().to_vec(),
        })
    }
    .await;
    driver.abort();
    result
}

fn hyper_error(err: hyper::Error) -> io::Error {
    io::Error::other(chain(&err))
}

/// A connection that sends `raw` in place of what its HTTP client writes:
/// the first write sends all of `raw`, and every write reports the client's
/// bytes as written without sending them. Reads pass through.
#[derive(Debug)]
struct Substitute {
    stream: TcpStream,
    raw: Vec<u8>,
    written: usize,
}

impl AsyncWrite for Substitute {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        while this.written < this.raw.len() {
            let n = ready!(Pin::new(&mut this.stream).poll_write(cx, &this.raw[this.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.written += n;
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl AsyncRead for Substitute {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::one_shot;

    #[tokio::test]
    async fn sends_the_bytes_as_given_and_reads_a_chunked_answer() {
        let (addr, task) = one_shot(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\n\r\n1b\r\n{\"error\":{\"code\":\"too_big\",\r\n\
              15\r\n\"message\":\"too big\"}}\r\n0\r\n\r\n",
            true,
        )
        .await;
        let raw = b"POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n";
        let res = send_raw(addr, raw).await.unwrap();
        res.assert_error(413, "too_big");
        let sent = task.await.unwrap();
        assert!(
            sent.starts_with(
                "POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            "{sent:?}"
        );
        assert!(
            !sent.contains("GET"),
            "hyper's own request line was sent: {sent:?}"
        );
    }

    #[tokio::test]
    async fn a_head_request_reads_no_body() {
        let (addr, _task) = one_shot(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n", false).await;
        let res = send_raw(addr, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(
            (res.status, res.header("content-length")),
            (200, Some("12"))
        );
        assert!(res.body.is_empty());
    }
}
