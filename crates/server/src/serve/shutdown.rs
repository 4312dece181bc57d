//! Graceful shutdown: on SIGTERM or SIGINT the sources stop, then every stream ends, and
//! every connection is gone by a deadline the grace period sets.

use std::time::Duration;

use tokio::{sync::watch, time::Instant};

use crate::app::App;

/// Turns to the exit deadline when the server stops.
pub(super) type Stop = watch::Receiver<Option<Instant>>;

/// Completes when the server stops, with the deadline for every connection to end.
pub(super) async fn stopping(stopped: &mut Stop) -> Instant {
    let deadline = stopped.wait_for(Option::is_some).await.map(|d| *d);
    match deadline {
        Ok(deadline) => deadline.unwrap_or_else(Instant::now),
        // The signal task keeps its sender for the life of the process.
        Err(_) => std::future::pending().await,
    }
}

/// On SIGTERM or SIGINT: stops the sources, then ends every stream, all within `grace`.
pub(super) async fn wait_for_signal(
    app: App,
    grace: Duration,
    stop: watch::Sender<Option<Instant>>,
) {
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
    if tokio::time::timeout_at(deadline, app.sources.stop())
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
