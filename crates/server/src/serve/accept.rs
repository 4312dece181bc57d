//! Accepting connections and choosing who serves each one.
//!
//! A connection whose first request is a plain `GET /events…` is served by
//! [`streaming`]: a small HTTP/1.1 writer that holds an idle event
//! stream in a few kilobytes. Every other connection (any other request, a request with a
//! body, HTTP/2 with prior knowledge, anything the quick parse does not accept) goes to
//! hyper, with the bytes already read put back in front. Both paths run the same warp
//! routes, so a request gets the same answer either way.

use std::{future::Future, net::SocketAddr, time::Duration};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

use super::{
    opening::{Opening, read_opening},
    rewind::Rewind,
    shutdown::{Stop, stopping},
    streaming,
};
use crate::api::{ClientAddr, Routes};

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
