//! `herald serve`: the HTTP server, its routes, and graceful shutdown.

use std::time::Duration;

use anyhow::Context as _;
use tokio::{net::TcpListener, sync::watch, time::Instant};
use warp::{Filter, Reply, filters::BoxedFilter, reply::Response};

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

/// Serves until SIGTERM or SIGINT, then stops the sources, ends every stream and exits
/// within the grace period.
pub(crate) async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
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

    let mut graceful = stopped.clone();
    let server = warp::serve(routes(&app))
        .incoming(listener)
        .graceful(async move {
            let _ = graceful.wait_for(Option::is_some).await;
        })
        .run();
    let mut deadline = stopped;
    tokio::select! {
        () = server => tracing::info!("all connections closed"),
        () = async {
            if let Some(deadline) = deadline.wait_for(Option::is_some).await.ok().and_then(|d| *d) {
                tokio::time::sleep_until(deadline).await;
            }
        } => tracing::warn!(?grace, "grace period over; dropping the remaining connections"),
    }
    Ok(())
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
