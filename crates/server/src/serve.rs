//! `herald serve`'s transport: the listener, the connections on it, and graceful
//! shutdown. What each request is answered with is `crate::api`'s.
//!
//! - `listener`: the listening socket.
//! - `accept`: takes connections and gives each to hyper or, when it opens with
//!   `GET /events`, to `streaming`, which holds an idle event stream in a few kilobytes
//!   instead of hyper's buffers. Both serve the same routes.
//! - `opening`: reads a connection's first request head to choose between the two.
//! - `rewind`: puts bytes read while choosing back in front of a connection handed to
//!   hyper.
//! - `shutdown`: SIGTERM and SIGINT, and the deadline every connection ends by.

mod accept;
mod listener;
mod opening;
mod rewind;
mod shutdown;
mod streaming;

use anyhow::Context as _;
use tokio::sync::watch;

use self::accept::Connections;
use crate::{
    api,
    app::App,
    config::{AuthMode, Config},
};

/// Serves until SIGTERM or SIGINT, then stops the sources, ends every stream and exits
/// within the grace period.
pub(crate) async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = listener::listen(config.listen)
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
    tokio::spawn(shutdown::wait_for_signal(app.clone(), grace, stop));

    // The one line on stdout: tools and tests read the address from it.
    println!("herald listening on http://{addr}");
    tracing::info!(%addr, "listening");

    let connections = Connections::new(api::routes(&app), stopped.clone());
    let deadline = connections
        .accept(listener, shutdown::stopping(&mut stopped.clone()))
        .await;
    tokio::select! {
        () = connections.drain() => tracing::info!("all connections closed"),
        () = tokio::time::sleep_until(deadline) => {
            tracing::warn!(?grace, "grace period over; dropping the remaining connections");
        }
    }
    Ok(())
}
