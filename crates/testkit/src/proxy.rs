//! A TCP proxy a test controls, to cut live connections the way a network drop does.
//!
//! ```no_run
//! # async fn example(upstream: std::net::SocketAddr) {
//! let proxy = herald_testkit::proxy::Proxy::start(upstream).await;
//! // ... point a client at proxy.addr() ...
//! proxy.cut(); // every connection through it is closed at once; new ones still work
//! # }
//! ```

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::{AbortHandle, JoinHandle},
};

/// Forwards `127.0.0.1:<port>` to an upstream address until dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accepted: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let tracked = Arc::clone(&connections);
        let accepted: Arc<AtomicUsize> = Arc::default();
        let counter = Arc::clone(&accepted);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                let mut list = tracked.lock().expect("proxy lock");
                list.retain(|h| !h.is_finished());
                list.push(task.abort_handle());
            }
        });
        Self {
            addr,
            connections,
            accepted,
            accept,
        }
    }

    /// How many connections it has accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits until it has accepted `n` connections in all, failing after 10 s.
    ///
    /// # Panics
    ///
    /// When fewer than `n` arrive in time.
    pub async fn wait_accepted(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.accepted() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} connections arrived",
                self.accepted()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection now open through the proxy; returns how many.
    pub fn cut(&self) -> usize {
        let mut list = self.connections.lock().expect("proxy lock");
        let live = list.iter().filter(|h| !h.is_finished()).count();
        list.drain(..).for_each(|h| h.abort());
        live
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
