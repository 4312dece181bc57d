//! A source's running state: the counters it updates ([`Stats`], internal) and the
//! snapshot anyone may read ([`SourceStatus`], through a [`SourceMonitor`]).

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

/// A snapshot of a source, for `/readyz` and metrics.
///
/// Reading one costs a few atomic loads and a short lock to copy the last error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceStatus {
    /// The source's name.
    pub name: String,
    /// `"notify"` or `"outbox"`.
    pub mode: &'static str,
    /// Whether the source is connected and listening now.
    pub connected: bool,
    /// Notifications received (in outbox mode: wake-ups).
    pub notifications: u64,
    /// Events published to the bus (reconnect notices included).
    pub published: u64,
    /// Changes that could not become events: not JSON, missing fields, an invalid topic,
    /// event type or user id, or over the bus's size limit.
    pub bad_payloads: u64,
    /// Connections re-established after one was lost.
    pub reconnects: u64,
    /// Outbox mode: rows not yet published, as last counted; `None` in notify mode or
    /// before the first count.
    pub outbox_lag: Option<u64>,
    /// The last connection or query error, kept after recovery for diagnosis.
    pub last_error: Option<String>,
}

/// A cheap, cloneable view of a running source's [`SourceStatus`].
///
/// It does not keep the source running: the [`PgSourceHandle`](crate::PgSourceHandle)
/// does.
#[derive(Debug, Clone)]
pub struct SourceMonitor {
    stats: Arc<Stats>,
}

impl SourceMonitor {
    pub(crate) fn new(stats: Arc<Stats>) -> Self {
        Self { stats }
    }

    /// The source's state now.
    pub fn status(&self) -> SourceStatus {
        self.stats.snapshot()
    }
}

/// `u64::MAX` in [`Stats::outbox_lag`] means "not counted".
const UNKNOWN: u64 = u64::MAX;

/// Counters a source updates as it runs.
#[derive(Debug)]
pub(crate) struct Stats {
    name: String,
    mode: &'static str,
    connected: AtomicBool,
    notifications: AtomicU64,
    published: AtomicU64,
    bad_payloads: AtomicU64,
    reconnects: AtomicU64,
    outbox_lag: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    pub(crate) fn new(name: &str, mode: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            mode,
            connected: AtomicBool::new(false),
            notifications: AtomicU64::new(0),
            published: AtomicU64::new(0),
            bad_payloads: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            outbox_lag: AtomicU64::new(UNKNOWN),
            last_error: Mutex::new(None),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    pub(crate) fn notifications(&self, n: u64) {
        self.notifications.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn published(&self, n: u64) {
        self.published.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn bad_payload(&self) {
        self.bad_payloads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_outbox_lag(&self, rows: u64) {
        self.outbox_lag.store(rows, Ordering::Relaxed);
    }

    pub(crate) fn set_error(&self, error: String) {
        *self
            .last_error
            .lock()
            .expect("status lock is never poisoned") = Some(error);
    }

    fn snapshot(&self) -> SourceStatus {
        let lag = self.outbox_lag.load(Ordering::Relaxed);
        SourceStatus {
            name: self.name.clone(),
            mode: self.mode,
            connected: self.connected.load(Ordering::Relaxed),
            notifications: self.notifications.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
            bad_payloads: self.bad_payloads.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            outbox_lag: (lag != UNKNOWN).then_some(lag),
            last_error: self
                .last_error
                .lock()
                .expect("status lock is never poisoned")
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_counters() {
        let stats = Arc::new(Stats::new("orders", "outbox"));
        let monitor = SourceMonitor::new(Arc::clone(&stats));
        assert_eq!(monitor.status().outbox_lag, None);
        stats.set_connected(true);
        stats.notifications(3);
        stats.published(2);
        stats.bad_payload();
        stats.reconnected();
        stats.set_outbox_lag(5);
        stats.set_error("boom".into());
        let status = monitor.status();
        assert_eq!(
            (status.connected, status.notifications, status.published),
            (true, 3, 2)
        );
        assert_eq!((status.bad_payloads, status.reconnects), (1, 1));
        assert_eq!(status.outbox_lag, Some(5));
        assert_eq!(status.last_error.as_deref(), Some("boom"));
        assert_eq!((status.name.as_str(), status.mode), ("orders", "outbox"));
    }
}
