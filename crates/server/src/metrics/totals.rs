//! The bus's and the shared log's own totals (events published, delivered, resets,
//! subscribers, Redis calls…), read at scrape time.
//!
//! A collector rather than counters kept in step: the bus and the log keep their own
//! totals with one relaxed atomic add on the hot path, and each scrape emits them as they
//! are. Nothing is copied into the registry, so concurrent scrapes cannot add to a
//! counter twice: N publishes read as N however many scrapes run at once.

use herald_bus::Bus;
use herald_redis::{RedisLog, Stats as LogStats};
use prometheus::{
    core::{Collector, Desc},
    proto::MetricFamily,
};

use super::family::Family;

/// What one scrape reads.
struct Snapshot {
    bus: herald_bus::Metrics,
    /// The shared log's numbers; all 0 on the in-memory log.
    log: LogStats,
}

const FAMILIES: [Family<Snapshot>; 13] = [
    Family {
        name: "herald_subscribers",
        help: "Subscribers registered on the bus.",
        counter: false,
        value: |s| Some(s.bus.subscribers as f64),
    },
    Family {
        name: "herald_events_published_total",
        help: "Events published.",
        counter: true,
        value: |s| Some(s.bus.published as f64),
    },
    Family {
        name: "herald_events_delivered_total",
        help: "Events handed to subscribers, history included.",
        counter: true,
        value: |s| Some(s.bus.delivered as f64),
    },
    Family {
        name: "herald_resets_total",
        help: "herald.reset notices sent.",
        counter: true,
        value: |s| Some(s.bus.resets as f64),
    },
    Family {
        name: "herald_log_calls_total",
        help: "Shared-log (Redis) calls; mean latency = call seconds / calls.",
        counter: true,
        value: |s| Some(s.log.calls as f64),
    },
    Family {
        name: "herald_log_call_seconds_total",
        help: "Time spent in shared-log (Redis) calls.",
        counter: true,
        value: |s| Some(s.log.call_time.as_secs_f64()),
    },
    Family {
        name: "herald_log_call_failures_total",
        help: "Shared-log calls that failed, timeouts included.",
        counter: true,
        value: |s| Some(s.log.failures as f64),
    },
    Family {
        name: "herald_log_call_timeouts_total",
        help: "Shared-log calls that got no answer in time.",
        counter: true,
        value: |s| Some(s.log.timeouts as f64),
    },
    Family {
        name: "herald_log_tail_lag",
        help: "Events this node's tail is behind the newest it knows of.",
        counter: false,
        value: |s| Some(s.log.tail_lag as f64),
    },
    Family {
        name: "herald_log_tail_failures_total",
        help: "Times the tail's Redis connection failed.",
        counter: true,
        value: |s| Some(s.log.tail_failures as f64),
    },
    Family {
        name: "herald_log_appends_recovered_total",
        help: "Appends whose reply was lost but were found stored (answered 200).",
        counter: true,
        value: |s| Some(s.log.appends_recovered as f64),
    },
    Family {
        name: "herald_log_appends_fenced_total",
        help: "Appends whose reply was lost and that were cancelled before running (answered 503).",
        counter: true,
        value: |s| Some(s.log.appends_fenced as f64),
    },
    Family {
        name: "herald_log_appends_unknown_total",
        help: "Appends whose outcome could not be settled (answered 504).",
        counter: true,
        value: |s| Some(s.log.appends_unknown as f64),
    },
];

/// Emits [`FAMILIES`] from the bus and the shared log.
pub(crate) struct TotalsCollector {
    bus: Bus,
    redis: Option<RedisLog>,
    descs: Vec<Desc>,
}

impl std::fmt::Debug for TotalsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotalsCollector")
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl TotalsCollector {
    pub(crate) fn new(bus: Bus, redis: Option<RedisLog>) -> Self {
        let descs = FAMILIES.iter().map(|f| f.desc(None)).collect();
        Self { bus, redis, descs }
    }
}

impl Collector for TotalsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snapshot = Snapshot {
            bus: self.bus.metrics(),
            log: self.redis.as_ref().map(RedisLog::stats).unwrap_or_default(),
        };
        FAMILIES
            .iter()
            .flat_map(|family| family.collect(None, [("", &snapshot)]))
            .collect()
    }
}
