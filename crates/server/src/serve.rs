//! `herald serve`: the HTTP server, its routes, and graceful shutdown.
//!
//! `accept` takes connections and gives each to hyper, or, when it opens with
//! `GET /events`, to `streaming`, which holds an idle event stream in a few kilobytes
//! instead of hyper's buffers. Both serve the same [`routes`]. `rewind` puts bytes read
//! while choosing back in front of a connection handed to hyper.

mod accept;
mod rewind;
mod streaming;

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::watch,
    time::Instant,
};
use warp::{Filter, Reply, filters::BoxedFilter, reply::Response};

use self::accept::Connections;

/// Turns to the exit deadline when the server stops.
type Stop = watch::Receiver<Option<Instant>>;

use crate::{
    app::App,
    config::{AuthMode, Config},
    error::recover,
    events, ops, publish,
};

/// Every route, with JSON errors and CORS as configured.
pub(crate) fn routes(app: &App) -> BoxedFilter<(Response,)> {
    let api = events::route(app.clone())
        .or(publish::route(app.clone()))
        .unify()
        .or(ops::routes(app.clone()))
        .unify()
        .or(crate::console::routes(app.clone()))
        .unify()
        .recover(recover)
        .unify();
    let origins = &app.config().cors.allowed_origins;
    if origins.is_empty() {
        return api.boxed();
    }
    let mut cors = warp::cors()
        .allow_methods(["GET", "POST", "OPTIONS"])
        .allow_headers(["authorization", "content-type", "last-event-id"])
        .allow_credentials(true);
    cors = if origins.iter().any(|o| o == "*") {
        cors.allow_any_origin()
    } else {
        cors.allow_origins(origins.iter().map(String::as_str))
    };
    // Recover twice: inside, so errors carry CORS headers; outside, for the CORS
    // filter's own refusals.
    api.with(cors)
        .map(Reply::into_response)
        .recover(recover)
        .unify()
        .boxed()
}

/// The client's address, set on every request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

/// The client's address, when the request came through the accept loop.
pub(crate) fn client_addr()
-> impl Filter<Extract = (Option<SocketAddr>,), Error = std::convert::Infallible> + Clone {
    warp::ext::optional::<ClientAddr>().map(|addr: Option<ClientAddr>| addr.map(|a| a.0))
}

/// Serves until SIGTERM or SIGINT, then stops the sources, ends every stream and exits
/// within the grace period.
pub(crate) async fn serve(config: Config) -> anyhow::Result<()> {
    let listener =
        listen(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr().context("no local address")?;
    if config.auth.mode == AuthMode::None {
        tracing::warn!(
            "auth.mode = \"none\": anyone may subscribe as any user (?user=) and publish anything; \
             for development only"
        );
    }
    let grace = config.grace();
    let app = App::start(config).await?;
    // Set, to the exit deadline, once the streams are to end.
    let (stop, stopped) = watch::channel(None);
    tokio::spawn(wait_for_signal(app.clone(), grace, stop));

    // The one line on stdout: tools and tests read the address from it.
    println!("herald listening on http://{addr}");
    tracing::info!(%addr, "listening");

    let connections = Connections::new(routes(&app), stopped.clone());
    let deadline = connections
        .accept(listener, stopping(&mut stopped.clone()))
        .await;
    tokio::select! {
        () = connections.drain() => tracing::info!("all connections closed"),
        () = tokio::time::sleep_until(deadline) => {
            tracing::warn!(?grace, "grace period over; dropping the remaining connections");
        }
    }
    Ok(())
}

/// Pending connections the kernel queues for `accept` (capped by `net.core.somaxconn`):
/// thousands of clients reconnecting at once are queued, not dropped into a
/// one-second SYN retry.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Completes when the server stops, with the deadline for every connection to end.
async fn stopping(stopped: &mut Stop) -> Instant {
    let deadline = stopped.wait_for(Option::is_some).await.map(|d| *d);
    match deadline {
        Ok(deadline) => deadline.unwrap_or_else(Instant::now),
        // The signal task keeps its sender for the life of the process.
        Err(_) => std::future::pending().await,
    }
}

/// On SIGTERM or SIGINT: stops the sources, then ends every stream, all within `grace`.
async fn wait_for_signal(app: App, grace: Duration, stop: watch::Sender<Option<Instant>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals; stop the server with SIGKILL");
        // Keep `stop` alive: dropping it would read as "stop now".
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    let deadline = Instant::now() + grace;
    // Sources first, while the streams are still open: what they publish meanwhile still
    // reaches subscribers, and an outbox source records its position, so the next start
    // resumes without duplicates. Past the deadline they are dropped, which aborts them.
    if tokio::time::timeout_at(deadline, app.sources().stop())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "postgres sources did not stop within the grace period"
        );
    }
    app.begin_shutdown();
    let _ = stop.send(Some(deadline));
}
