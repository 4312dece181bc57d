//! [`Stats`]: plain numbers about one node's use of the shared log, for metrics.

use std::time::Duration;

/// Counters of one [`RedisLog`](crate::RedisLog) (all its clones), since it connected.
///
/// Plain numbers, so a server can export them in whatever format it speaks: the mean call
/// latency is `call_time / calls`.
///
/// # Examples
///
/// ```
/// use herald_redis::Stats;
///
/// let stats = Stats::default();
/// assert_eq!(stats.mean_call_time(), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Redis calls made by appends (and their settling), reads, retention sweeps and tail
    /// resyncs (the tail's blocking reads are not counted: they wait by design).
    pub calls: u64,
    /// Calls that failed, timeouts included.
    pub failures: u64,
    /// Calls that got no answer within the call timeout.
    pub timeouts: u64,
    /// Time spent in calls, summed.
    pub call_time: Duration,
    /// How many events the tail is behind the newest one this node knows of (an offset
    /// difference; 0 when caught up).
    pub tail_lag: u64,
    /// How often the tail's connection failed (a read, a resync or a reconnection
    /// attempt); it then waits and reconnects.
    pub tail_failures: u64,
    /// Appends whose reply was lost (a timeout, a broken connection) and which the log
    /// then found stored: answered as if the reply had come.
    pub appends_recovered: u64,
    /// Appends whose reply was lost and which the log then cancelled before they ran:
    /// answered [`LogError::Unavailable`](herald_bus::LogError::Unavailable), nothing
    /// stored.
    pub appends_fenced: u64,
    /// Appends whose reply was lost and whose fate the log could not learn in time:
    /// answered [`LogError::OutcomeUnknown`](herald_bus::LogError::OutcomeUnknown).
    pub appends_unknown: u64,
}

impl Stats {
    /// The mean time of one call, if any was made.
    pub fn mean_call_time(&self) -> Option<Duration> {
        let calls = u128::from(self.calls);
        let mean = self.call_time.as_nanos().checked_div(calls)?;
        Some(Duration::from_nanos(
            u64::try_from(mean).unwrap_or(u64::MAX),
        ))
    }
}
