//! The running PostgreSQL sources: started on the app's bus with the server, read by
//! `/readyz`, `/stats` and `/metrics`, and stopped at shutdown before the bus closes.
//!
//! A source that cannot connect does not keep the server from starting: it retries with
//! backoff by itself, and `/readyz` answers 503 until it is connected.

use std::sync::Mutex;

use futures_util::future::join_all;
use herald_bus::Bus;
use herald_postgres::{PgSource, PgSourceHandle, SourceMonitor, SourceStatus};
use serde_json::{Value, json};

/// The sources of one server.
#[derive(Debug)]
pub(crate) struct Sources {
    /// Views of every source's status, in configuration order; they outlive a stop.
    monitors: Vec<SourceMonitor>,
    /// Taken by [`Sources::stop`]. A std mutex: only moved in and out, never held
    /// across an await.
    handles: Mutex<Vec<PgSourceHandle>>,
}

impl Sources {
    /// Spawns every source on `bus`. Must run inside a Tokio runtime.
    pub(crate) fn start(sources: Vec<PgSource>, bus: &Bus) -> Self {
        let handles: Vec<PgSourceHandle> = sources
            .iter()
            .map(|source| {
                tracing::info!(source = source.name(), "starting postgres source");
                source.spawn(bus)
            })
            .collect();
        Self {
            monitors: handles.iter().map(PgSourceHandle::monitor).collect(),
            handles: Mutex::new(handles),
        }
    }

    /// Every source's state now, in configuration order.
    pub(crate) fn statuses(&self) -> Vec<SourceStatus> {
        self.monitors.iter().map(SourceMonitor::status).collect()
    }

    /// Views for the metrics collector.
    pub(crate) fn monitors(&self) -> Vec<SourceMonitor> {
        self.monitors.clone()
    }

    /// Stops every source gracefully, together: an outbox source records the position
    /// of what it published, so a restart neither repeats nor skips. Later calls do
    /// nothing.
    pub(crate) async fn stop(&self) {
        let handles = std::mem::take(&mut *self.handles.lock().expect("never poisoned"));
        if !handles.is_empty() {
            join_all(handles.into_iter().map(PgSourceHandle::stop)).await;
            tracing::info!("postgres sources stopped");
        }
    }
}

/// What `/readyz` shows of a source.
pub(crate) fn readiness(status: &SourceStatus) -> Value {
    json!({
        "name": status.name,
        "mode": status.mode,
        "connected": status.connected,
        "last_error": status.last_error,
    })
}

/// What `/stats` shows of a source: its readiness and its counters.
pub(crate) fn stats(status: &SourceStatus) -> Value {
    let mut value = readiness(status);
    value["notifications"] = json!(status.notifications);
    value["published"] = json!(status.published);
    value["bad_payloads"] = json!(status.bad_payloads);
    value["reconnects"] = json!(status.reconnects);
    value["outbox_lag"] = json!(status.outbox_lag);
    value
}

/// Why the server is not ready because of its sources, if it is not: the first source
/// not connected, its last error, and how many more are down.
pub(crate) fn not_ready(statuses: &[SourceStatus]) -> Option<String> {
    let mut down = statuses.iter().filter(|s| !s.connected);
    let first = down.next()?;
    let mut message = format!("postgres source {:?} is not connected", first.name);
    if let Some(error) = &first.last_error {
        message.push_str(&format!(" (last error: {error})"));
    }
    let more = down.count();
    if more > 0 {
        message.push_str(&format!("; {more} more source(s) not connected"));
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use herald_postgres::{Ident, Mapping, Mode};

    use super::*;

    /// A source that can never connect: port 1 on loopback refuses at once.
    fn unreachable(name: &str) -> PgSource {
        PgSource::builder("postgres://postgres@127.0.0.1:1/test")
            .name(name)
            .mode(Mode::notify([Ident::new("herald").unwrap()]))
            .mapping(Mapping::new("db.{table}.{op}").unwrap())
            .backoff(Duration::from_millis(10), Duration::from_millis(20))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn unconnected_sources_are_reported_and_stop_cleanly() {
        let bus = Bus::new();
        let sources = Sources::start(vec![unreachable("a"), unreachable("b")], &bus);
        let start = tokio::time::Instant::now();
        while sources.statuses().iter().any(|s| s.last_error.is_none()) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no connect error"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let statuses = sources.statuses();
        let message = not_ready(&statuses).unwrap();
        assert!(
            message.starts_with("postgres source \"a\" is not connected (last error: "),
            "{message}"
        );
        assert!(
            message.ends_with("; 1 more source(s) not connected"),
            "{message}"
        );
        let shown = readiness(&statuses[1]);
        assert_eq!(
            (shown["name"].as_str(), shown["mode"].as_str()),
            (Some("b"), Some("notify"))
        );
        assert_eq!(shown["connected"], false);
        assert_eq!(stats(&statuses[0])["outbox_lag"], Value::Null);

        tokio::time::timeout(Duration::from_secs(6), sources.stop())
            .await
            .expect("stops in time");
        sources.stop().await;
        assert_eq!(sources.statuses().len(), 2, "statuses outlive the stop");
        assert_eq!(not_ready(&[]), None);
    }
}
