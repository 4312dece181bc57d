//! Report figures, as JSON (`--json`) and as a table on stdout.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::resources::FileLimit;
use crate::{Counts, Tally};

/// Percentiles of a histogram recorded in microseconds, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Summary {
    /// Summarises `histogram` (microseconds).
    pub(crate) fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            mean_ms: histogram.mean() / 1000.0,
        }
    }

    fn cells(&self) -> String {
        if self.count == 0 {
            return "-".into();
        }
        format!(
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

/// Connection figures.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Connections {
    /// Connections this process was to open.
    pub requested: usize,
    /// Opened with a 200 answer.
    pub opened: usize,
    /// Failed, grouped by cause.
    pub failures: BTreeMap<String, u64>,
    /// Time from connect to the response head.
    pub connect: Summary,
    /// Wall time to open all of them, seconds.
    pub open_all_s: f64,
    /// Streams the server ended before the run did.
    pub closed_early: u64,
    /// Streams that failed while reading (first error in `stream_error`).
    pub stream_errors: u64,
    /// The first read error.
    pub stream_error: Option<String>,
}

/// Delivery correctness, summed over subscribers, and the worst one.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Delivery {
    /// Sums over every subscriber.
    pub counts: Counts,
    /// Other observations, summed.
    pub tally: Tally,
    /// Events subscribers should have received (sum of their streams' publishes).
    pub expected: u64,
    /// Subscribers with any lost, duplicated, out-of-order or foreign event or a reset.
    pub affected_subscribers: u64,
    /// The most events one subscriber lost.
    pub max_lost_per_subscriber: u64,
    /// The most duplicates one subscriber got.
    pub max_duplicated_per_subscriber: u64,
    /// The most out-of-order events one subscriber got.
    pub max_out_of_order_per_subscriber: u64,
}

impl Delivery {
    /// Adds one subscriber's result.
    pub(crate) fn add(&mut self, counts: &Counts, tally: &Tally, expected: u64) {
        self.counts.add(counts);
        self.tally.add(tally);
        self.expected += expected;
        if counts.has_anomaly() || tally.foreign + tally.resets > 0 {
            self.affected_subscribers += 1;
        }
        self.max_lost_per_subscriber = self.max_lost_per_subscriber.max(counts.lost);
        self.max_duplicated_per_subscriber =
            self.max_duplicated_per_subscriber.max(counts.duplicated);
        self.max_out_of_order_per_subscriber = self
            .max_out_of_order_per_subscriber
            .max(counts.out_of_order);
    }

    /// Whether every subscriber got exactly its events, in order.
    pub(crate) fn is_clean(&self) -> bool {
        !self.counts.has_anomaly() && self.tally.foreign == 0 && self.tally.resets == 0
    }
}

/// The server's resources (summed over `--server-pid`s), or this process's
/// with `--in-process`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Resources {
    /// The processes measured.
    pub pids: Vec<u32>,
    /// RSS before any connection, KiB.
    pub rss_before_kib: u64,
    /// RSS with every connection open (idle), KiB.
    pub rss_connected_kib: u64,
    /// RSS at the end, KiB.
    pub rss_end_kib: u64,
    /// (connected − before) / connections, bytes.
    pub memory_per_connection_bytes: Option<f64>,
    /// CPU seconds over the measured window (warm-up end to drain end).
    pub cpu_s: f64,
    /// CPU seconds per 1,000 deliveries in that window.
    pub cpu_s_per_1000_deliveries: Option<f64>,
}

/// Everything `run` measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// Server URL, or `in-process`.
    pub(crate) target: String,
    /// `I/N` when the run is split over processes.
    pub(crate) shard: String,
    /// Topics, streams, rate and times.
    pub(crate) settings: BTreeMap<&'static str, serde_json::Value>,
    /// Open-file limit in force.
    pub(crate) file_limit: Option<FileLimit>,
    /// Connection figures.
    pub(crate) connections: Connections,
    /// Events published (all, and outside the warm-up).
    pub(crate) published: u64,
    /// Events published outside the warm-up.
    pub(crate) published_measured: u64,
    /// Failed publishes (they consume no sequence number).
    pub(crate) publish_errors: u64,
    /// The first publish failure.
    pub(crate) publish_error: Option<String>,
    /// Publishes that started over one interval late (the publisher could not keep up).
    pub(crate) publish_late: u64,
    /// Publish round trip (measured events).
    pub(crate) publish_latency: Summary,
    /// Delivery correctness.
    pub(crate) delivery: Delivery,
    /// Measured deliveries per second of the measured window.
    pub(crate) deliveries_per_s: f64,
    /// Publish-to-receive latency (measured events).
    pub(crate) latency: Summary,
    /// The server's resources, when a pid was given (or in-process).
    pub(crate) server: Option<Resources>,
    /// This generator's own resources.
    pub(crate) generator: Resources,
    /// Delivery is clean and no stream ended early.
    pub(crate) ok: bool,
}

/// Rows of a two-column table.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<(String, String)>,
}

impl Table {
    /// Adds a row.
    pub(crate) fn row(&mut self, label: impl Into<String>, value: impl ToString) -> &mut Self {
        self.rows.push((label.into(), value.to_string()));
        self
    }

    /// The two rows every report has: what the checker found wrong, and the rest.
    pub(crate) fn delivery_checks(&mut self, d: &Delivery) -> &mut Self {
        let c = &d.counts;
        let t = &d.tally;
        self.row(
            "lost / dup / out of order",
            format!("{} / {} / {}", c.lost, c.duplicated, c.out_of_order),
        )
        .row(
            "foreign / resets / other",
            format!("{} / {} / {}", t.foreign, t.resets, t.other),
        )
    }

    /// Adds a section heading.
    pub(crate) fn section(&mut self, title: &str) -> &mut Self {
        self.rows.push((format!("[{title}]"), String::new()));
        self
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let width = self.rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (label, value) in &self.rows {
            writeln!(f, "{label:<width$}  {value}")?;
        }
        Ok(())
    }
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

impl RunReport {
    /// Whether delivery was clean: nothing lost, duplicated, out of order
    /// or misrouted, and no stream ended early.
    pub fn is_clean(&self) -> bool {
        self.ok
    }

    /// Whether connections or publishes failed.
    pub fn has_failures(&self) -> bool {
        !self.connections.failures.is_empty() || self.publish_errors > 0
    }

    /// The report as a readable table.
    pub fn table(&self) -> Table {
        let mut t = Table::default();
        t.row("target", &self.target).row("shard", &self.shard);
        for (key, value) in &self.settings {
            t.row(*key, value);
        }
        if let Some(limit) = self.file_limit {
            t.row(
                "open-file limit",
                format!("{} (hard {})", limit.soft, limit.hard),
            );
        }
        let c = &self.connections;
        t.section("connections")
            .row("opened", format!("{} of {}", c.opened, c.requested))
            .row("failed", format!("{:?}", c.failures))
            .row("connect", c.connect.cells())
            .row("open all", format!("{:.2} s", c.open_all_s))
            .row(
                "closed early / errors",
                format!("{} / {}", c.closed_early, c.stream_errors),
            );
        let d = &self.delivery;
        t.section("events")
            .row(
                "published",
                format!(
                    "{} ({} measured, {} errors, {} late)",
                    self.published, self.published_measured, self.publish_errors, self.publish_late
                ),
            )
            .row("publish round trip", self.publish_latency.cells())
            .row(
                "deliveries",
                format!("{} of {} expected", d.counts.received, d.expected),
            )
            .row("deliveries/s", format!("{:.0}", self.deliveries_per_s))
            .row("latency", self.latency.cells())
            .delivery_checks(d)
            .row("affected subscribers", d.affected_subscribers)
            .row(
                "worst subscriber lost/dup/ooo",
                format!(
                    "{} / {} / {}",
                    d.max_lost_per_subscriber,
                    d.max_duplicated_per_subscriber,
                    d.max_out_of_order_per_subscriber
                ),
            );
        for (title, r) in [
            ("server", self.server.as_ref()),
            ("generator", Some(&self.generator)),
        ] {
            let Some(r) = r else { continue };
            t.section(title)
                .row("pids", format!("{:?}", r.pids))
                .row(
                    "rss before / connected / end",
                    format!(
                        "{} / {} / {} KiB",
                        r.rss_before_kib, r.rss_connected_kib, r.rss_end_kib
                    ),
                )
                .row(
                    "memory per connection",
                    format!("{} bytes", opt(r.memory_per_connection_bytes, 0)),
                )
                .row("cpu (measured window)", format!("{:.2} s", r.cpu_s))
                .row(
                    "cpu per 1,000 deliveries",
                    format!("{} s", opt(r.cpu_s_per_1000_deliveries, 4)),
                );
        }
        t.section("verdict").row(
            "ok",
            if self.ok {
                "yes"
            } else {
                "NO: events lost, duplicated, reordered or misrouted"
            },
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_summarises_to_zero() {
        let s = Summary::of(&crate::receiver::histogram());
        assert_eq!(s, Summary::default());
        assert_eq!(s.cells(), "-");
    }

    #[test]
    fn delivery_tracks_the_worst_subscriber() {
        let mut d = Delivery::default();
        let clean = Counts {
            received: 5,
            ..Counts::default()
        };
        let lossy = Counts {
            received: 3,
            lost: 2,
            ..Counts::default()
        };
        d.add(&clean, &Tally::default(), 5);
        d.add(&lossy, &Tally::default(), 5);
        assert_eq!(
            (
                d.expected,
                d.affected_subscribers,
                d.max_lost_per_subscriber
            ),
            (10, 1, 2)
        );
        assert!(!d.is_clean());
    }

    #[test]
    fn table_aligns_labels() {
        let mut t = Table::default();
        t.row("a", 1).row("long label", "x");
        assert_eq!(t.to_string(), "a           1\nlong label  x\n");
    }

    #[test]
    fn summary_of_a_histogram_gives_count_median_and_max() {
        let mut h = crate::receiver::histogram();
        for us in 1..=100 {
            h.record(us * 1000).unwrap();
        }
        let s = crate::Summary::of(&h);
        assert_eq!(
            (s.count, s.p50_ms.round(), s.max_ms.round()),
            (100, 50.0, 100.0)
        );
    }
}
