//! A tiny static web server on `127.0.0.1:0` for pages under test that Herald does not
//! serve itself (the probe page, `examples/browser/`). Its origin differs from Herald's
//! by the port, so the pages reach Herald cross-origin, through `cors.allowed_origins`,
//! as an app's pages do.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// One file: its URL path, content type and bytes.
pub type File = (&'static str, &'static str, Vec<u8>);

/// Serves fixed files until dropped.
#[derive(Debug)]
pub struct Site {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Site {
    /// Starts serving `files`; any other path is a 404.
    pub async fn serve(files: Vec<File>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let files: Arc<HashMap<&'static str, (&'static str, Vec<u8>)>> = Arc::new(
            files
                .into_iter()
                .map(|(path, ty, body)| (path, (ty, body)))
                .collect(),
        );
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let files = Arc::clone(&files);
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), answer(stream, &files)).await;
                });
            }
        });
        Self { addr, accept }
    }

    /// `http://127.0.0.1:PORT`: what the pages send as `Origin`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` (which may carry a query) on this site.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Reads one request head and answers it, then closes the connection.
async fn answer(
    mut stream: TcpStream,
    files: &HashMap<&'static str, (&'static str, Vec<u8>)>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split(' ').nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/");
    let reply = match files.get(path) {
        Some((ty, body)) => {
            let mut reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {ty}\r\nContent-Length: {}\r\n\
                 Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            reply.extend_from_slice(body);
            reply
        }
        None => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
    };
    stream.write_all(&reply).await?;
    stream.shutdown().await
}
