//! [`Family`]: one metric family that a collector reads at scrape time from a snapshot
//! of someone else's totals, and how it becomes Prometheus samples.

use prometheus::{
    CounterVec, GaugeVec, Opts,
    core::{Collector as _, Desc},
    proto::MetricFamily,
};

/// A metric family read from a snapshot `S`.
pub(super) struct Family<S> {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) counter: bool,
    /// The value in one snapshot; `None` leaves that snapshot out. Prometheus samples
    /// are `f64`: counts below 2^53 are exact.
    pub(super) value: fn(&S) -> Option<f64>,
}

impl<S> Family<S> {
    /// The description a collector registers, with `label` if its samples have one.
    pub(super) fn desc(&self, label: Option<&str>) -> Desc {
        Desc::new(
            self.name.to_owned(),
            self.help.to_owned(),
            label.into_iter().map(str::to_owned).collect(),
            Default::default(),
        )
        .expect("valid metric name")
    }

    /// The samples of `snapshots`, each under its value of `label` (`""` without one).
    pub(super) fn collect<'a>(
        &self,
        label: Option<&str>,
        snapshots: impl IntoIterator<Item = (&'a str, &'a S)>,
    ) -> Vec<MetricFamily>
    where
        S: 'a,
    {
        let opts = Opts::new(self.name, self.help);
        let labels: Vec<&str> = label.into_iter().collect();
        let values = snapshots
            .into_iter()
            .filter_map(|(name, s)| Some((name, (self.value)(s)?)));
        let label_values = |name: &'a str| if label.is_some() { vec![name] } else { vec![] };
        // Fresh metrics per scrape, set to the totals: a few allocations, at scrape time
        // only.
        if self.counter {
            let vec = CounterVec::new(opts, &labels).expect("valid metric");
            for (name, value) in values {
                vec.with_label_values(&label_values(name)).inc_by(value);
            }
            vec.collect()
        } else {
            let vec = GaugeVec::new(opts, &labels).expect("valid metric");
            for (name, value) in values {
                vec.with_label_values(&label_values(name)).set(value);
            }
            vec.collect()
        }
    }
}
