//! Helpers for the integration tests: the Redis URL, unique key prefixes, cleanup, and a
//! private `redis-server` a test may stop and restart.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a part of this module"
)]

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use herald_redis::{RedisLog, RedisOptions};
use herald_testkit::services::{service_url, skip_or_fail};

/// The shared Redis: `HERALD_REDIS_URL`, default the local one.
pub fn redis_url() -> String {
    service_url("HERALD_REDIS_URL", "redis://127.0.0.1:6379")
}

/// Options for a log of its own on `url`: a unique key prefix, short timeouts.
pub fn options(url: &str) -> RedisOptions {
    RedisOptions {
        key_prefix: format!("herald-test:{}", uuid::Uuid::new_v4()),
        call_timeout: Duration::from_millis(500),
        ..RedisOptions::new(url)
    }
}

/// Reports that Redis cannot be reached: a loud skip, or a failure under
/// `HERALD_REQUIRE_SERVICES=1`.
#[track_caller]
pub fn skip(url: &str, error: &dyn std::error::Error) {
    skip_or_fail("redis", format!("{url}: {error}"));
}

/// Whether the shared Redis answers; reports a skip when it does not.
#[track_caller]
pub fn reachable(url: &str) -> bool {
    let client = match redis::Client::open(url) {
        Ok(client) => client,
        Err(error) => {
            skip(url, &error);
            return false;
        }
    };
    match client.get_connection_with_timeout(Duration::from_secs(1)) {
        Ok(_) => true,
        Err(error) => {
            skip(url, &error);
            false
        }
    }
}

/// Connects a log, panicking on failure (call [`reachable`] first).
pub async fn connect(options: &RedisOptions) -> RedisLog {
    RedisLog::connect(options.clone())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", options.url))
}

/// Deletes the keys of the logs with these options.
pub async fn cleanup(options: &[RedisOptions]) {
    for options in options {
        let Ok(client) = redis::Client::open(options.url.as_str()) else {
            continue;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            continue;
        };
        let p = &options.key_prefix;
        let mut keys = vec![
            format!("{p}:log"),
            format!("{p}:seq"),
            format!("{p}:epoch"),
            format!("{p}:topics"),
        ];
        // The attempt keys would expire by themselves; tidier to drop them now.
        keys.extend(attempts(&mut conn, p).await.into_keys());
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
    }
}

/// The attempt keys of the log with `prefix` and their values (`appended:...`,
/// `cancelled`), for tests that check how an append was settled.
pub async fn attempts(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> std::collections::HashMap<String, String> {
    let mut found = std::collections::HashMap::new();
    let mut cursor = 0_u64;
    loop {
        let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:attempt:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
        else {
            return found;
        };
        for key in keys {
            let value: redis::RedisResult<Option<String>> =
                redis::cmd("GET").arg(&key).query_async(conn).await;
            if let Ok(Some(value)) = value {
                found.insert(key, value);
            }
        }
        if next == 0 {
            return found;
        }
        cursor = next;
    }
}

#[allow(unused_imports, reason = "not every test binary runs a private server")]
pub use herald_testkit::redis::PrivateRedis;

/// A TCP proxy that can hold what clients send on the connections open at one moment,
/// the way a stalled network path does, while new connections pass: a request sent
/// before [`HoldingProxy::release`] reaches the server only then. Stops when dropped.
pub struct HoldingProxy {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<Arc<Link>>>>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

/// One proxied connection.
struct Link {
    held: tokio::sync::watch::Sender<bool>,
    /// What the server sent back since the link was first held.
    replies: Mutex<Option<Vec<u8>>>,
}

impl HoldingProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let connections: Arc<Mutex<Vec<Arc<Link>>>> = Arc::default();
        let tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (links, spawned) = (Arc::clone(&connections), Arc::clone(&tasks));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let link = Arc::new(Link {
                    held: tokio::sync::watch::channel(false).0,
                    replies: Mutex::new(None),
                });
                links.lock().unwrap().push(Arc::clone(&link));
                let task = tokio::spawn(forward(client, upstream, link));
                spawned.lock().unwrap().push(task.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Self {
            addr,
            connections,
            tasks,
        }
    }

    /// A Redis URL through the proxy.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Holds what clients send on every connection open now; new ones pass.
    pub fn hold(&self) {
        for link in self.connections.lock().unwrap().iter() {
            link.replies.lock().unwrap().get_or_insert_with(Vec::new);
            link.held.send_replace(true);
        }
    }

    /// Lets the held requests through.
    pub fn release(&self) {
        for link in self.connections.lock().unwrap().iter() {
            link.held.send_replace(false);
        }
    }

    /// Whether the server's replies on the connections held so far contain `text`.
    pub fn replied(&self, text: &str) -> bool {
        self.connections.lock().unwrap().iter().any(|link| {
            link.replies
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|r| r.windows(text.len()).any(|w| w == text.as_bytes()))
        })
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap().iter() {
            task.abort();
        }
    }
}

/// Copies both ways; what the client sends waits while the link is held, and still
/// reaches the server after the client has gone.
async fn forward(client: tokio::net::TcpStream, upstream: SocketAddr, link: Arc<Link>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let ((mut client_read, mut client_write), (mut server_read, mut server_write)) =
        (client.into_split(), server.into_split());
    let up = async {
        let mut held = link.held.subscribe();
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
            let _ = held.wait_for(|held| !held).await;
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = held.wait_for(|held| !held).await;
        let _ = server_write.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0; 64 * 1024];
        let mut client_gone = false;
        // Read on after the client has gone, so the server's replies are still recorded.
        while let Ok(n @ 1..) = server_read.read(&mut buf).await {
            if let Some(replies) = link.replies.lock().unwrap().as_mut() {
                replies.extend_from_slice(&buf[..n]);
            }
            if !client_gone {
                client_gone = client_write.write_all(&buf[..n]).await.is_err();
            }
        }
    };
    tokio::join!(up, down);
}
