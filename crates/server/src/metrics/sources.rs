//! Per-source metrics, labelled `source="<name>"`, read from each source's status at
//! scrape time.
//!
//! A collector rather than counters kept in step: a source keeps its own totals, so each
//! scrape emits them as they are, and nothing can drift or double count.

use prometheus::{
    IntCounterVec, IntGaugeVec, Opts,
    core::{Collector, Desc},
    proto::MetricFamily,
};

use herald_postgres::{SourceMonitor, SourceStatus};

/// A metric family of the sources.
struct Family {
    name: &'static str,
    help: &'static str,
    counter: bool,
    /// The value for one source; `None` leaves that source out.
    value: fn(&SourceStatus) -> Option<u64>,
}

const FAMILIES: [Family; 6] = [
    Family {
        name: "herald_source_connected",
        help: "Whether the PostgreSQL source is connected (1) or not (0).",
        counter: false,
        value: |s| Some(u64::from(s.connected)),
    },
    Family {
        name: "herald_source_notifications_total",
        help: "Notifications the source received (outbox mode: wake-ups).",
        counter: true,
        value: |s| Some(s.notifications),
    },
    Family {
        name: "herald_source_events_published_total",
        help: "Events the source published to the bus, herald.reset notices included.",
        counter: true,
        value: |s| Some(s.published),
    },
    Family {
        name: "herald_source_bad_payloads_total",
        help: "Changes the source skipped because they could not become events.",
        counter: true,
        value: |s| Some(s.bad_payloads),
    },
    Family {
        name: "herald_source_reconnects_total",
        help: "Connections the source re-established after losing one.",
        counter: true,
        value: |s| Some(s.reconnects),
    },
    Family {
        name: "herald_source_outbox_lag",
        help: "Outbox rows not yet published, as last counted (outbox mode).",
        counter: false,
        value: |s| s.outbox_lag,
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
        let descs = FAMILIES
            .iter()
            .map(|f| {
                Desc::new(
                    f.name.to_owned(),
                    f.help.to_owned(),
                    vec![LABEL.to_owned()],
                    Default::default(),
                )
                .expect("valid metric name")
            })
            .collect();
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
                let opts = Opts::new(family.name, family.help);
                let values = statuses
                    .iter()
                    .filter_map(|s| Some((s.name.as_str(), (family.value)(s)?)));
                // Fresh vectors per scrape, set to the totals: the cost is a few
                // allocations per source, at scrape time only.
                if family.counter {
                    let vec = IntCounterVec::new(opts, &[LABEL]).expect("valid metric");
                    for (name, value) in values {
                        vec.with_label_values(&[name]).inc_by(value);
                    }
                    vec.collect()
                } else {
                    let vec = IntGaugeVec::new(opts, &[LABEL]).expect("valid metric");
                    for (name, value) in values {
                        vec.with_label_values(&[name])
                            .set(i64::try_from(value).unwrap_or(i64::MAX));
                    }
                    vec.collect()
                }
            })
            .collect()
    }
}
