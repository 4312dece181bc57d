//! The server side of a client's test: accept a connection and read its
//! request head, then answer whatever bytes the test wants (a canned reply,
//! a stream cut short, silence).
//!
//! ```no_run
//! # async fn example() {
//! use tokio::{io::AsyncWriteExt, net::TcpListener};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
//! // ... point the client under test at listener.local_addr() ...
//! let (head, mut socket) = herald_testkit::canned::accept(&listener).await;
//! assert!(head.starts_with("GET /events"));
//! socket.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
//! # }
//! ```

use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
};

/// Accepts one connection and reads its request head, up to and including
/// the blank line; returns the head as text and the socket. Bytes after the
/// head that came in the same read are part of the returned text.
///
/// # Panics
///
/// When accepting or reading fails, or the client closes first.
pub async fn accept(listener: &TcpListener) -> (String, TcpStream) {
    let (mut socket, _) = listener.accept().await.expect("accept a connection");
    let mut head = Vec::new();
    let mut buf = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.expect("read the request");
        assert!(n > 0, "client closed before its request head was complete");
        head.extend_from_slice(&buf[..n]);
    }
    (String::from_utf8_lossy(&head).into_owned(), socket)
}
