//! [`Rewind`]: a connection whose first bytes were already read, handed on whole.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `io` with `prefix` put back in front of it: reads return `prefix` first, then
/// whatever `io` delivers. Writes go straight to `io`.
#[derive(Debug)]
pub(super) struct Rewind<T> {
    prefix: Vec<u8>,
    /// How much of `prefix` has been read back.
    taken: usize,
    io: T,
}

impl<T> Rewind<T> {
    pub(super) fn new(prefix: Vec<u8>, io: T) -> Self {
        Self {
            prefix,
            taken: 0,
            io,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let rest = &this.prefix[this.taken..];
        if rest.is_empty() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.taken += n;
        if this.taken == this.prefix.len() {
            this.prefix = Vec::new();
            this.taken = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn reads_the_prefix_then_the_connection_and_writes_through() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut rewound = Rewind::new(b"GET /a".to_vec(), client);
        server.write_all(b" HTTP/1.1\r\n").await.unwrap();
        let mut small = [0u8; 4];
        rewound.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"GET ");
        let mut rest = [0u8; 13];
        rewound.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"/a HTTP/1.1\r\n");

        rewound.write_all(b"ok").await.unwrap();
        let mut answer = [0u8; 2];
        server.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"ok");
    }
}
