//! Per-source metrics, labelled `source="<name>"`, read from each source's status at
//! scrape time.
//!
//! A collector rather than counters kept in step: a source keeps its own totals, so each
//! scrape emits them as they are, and nothing can drift or double count.

use herald_postgres::{SourceMonitor, SourceStatus};
use prometheus::{
    core::{Collector, Desc},
    proto::MetricFamily,
};

use super::family::Family;

const FAMILIES: [Family<SourceStatus>; 6] = [
    Family {
        name: "herald_source_connected",
        help: "Whether the PostgreSQL source is connected (1) or not (0).",
        counter: false,
        value: |s| Some(f64::from(u8::from(s.connected))),
    },
    Family {
        name: "herald_source_notifications_total",
        help: "Notifications the source received (outbox mode: wake-ups).",
        counter: true,
        value: |s| Some(s.notifications as f64),
    },
    Family {
        name: "herald_source_events_published_total",
        help: "Events the source published to the bus, herald.reset notices included.",
        counter: true,
        value: |s| Some(s.published as f64),
    },
    Family {
        name: "herald_source_bad_payloads_total",
        help: "Changes the source skipped because they could not become events.",
        counter: true,
        value: |s| Some(s.bad_payloads as f64),
    },
    Family {
        name: "herald_source_reconnects_total",
        help: "Connections the source re-established after losing one.",
        counter: true,
        value: |s| Some(s.reconnects as f64),
    },
    Family {
        name: "herald_source_outbox_lag",
        help: "Outbox rows not yet published, as last counted (outbox mode).",
        counter: false,
        value: |s| s.outbox_lag.map(|n| n as f64),
    },
];

const LABEL: &str = "source";

/// Emits [`FAMILIES`] for every source.
pub(crate) struct SourceCollector {
    monitors: Vec<SourceMonitor>,
    descs: Vec<Desc>,
}

impl std::fmt::Debug for SourceCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceCollector")
            .field("sources", &self.monitors.len())
            .finish_non_exhaustive()
    }
}

impl SourceCollector {
    pub(crate) fn new(monitors: Vec<SourceMonitor>) -> Self {
        let descs = FAMILIES.iter().map(|f| f.desc(Some(LABEL))).collect();
        Self { monitors, descs }
    }
}

impl Collector for SourceCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let statuses: Vec<SourceStatus> = self.monitors.iter().map(SourceMonitor::status).collect();
        FAMILIES
            .iter()
            .flat_map(|family| {
                family.collect(Some(LABEL), statuses.iter().map(|s| (s.name.as_str(), s)))
            })
            .collect()
    }
}
