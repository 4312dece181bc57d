//! Prometheus metrics (names in SPEC §7), rendered in the text format at `/metrics`.
//!
//! Counters the bus keeps (published, delivered, resets) are copied in at scrape time,
//! so the hot paths pay for one relaxed atomic add, not a registry lookup.

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, Registry, TextEncoder};

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) connections: IntGauge,
    subscribers: IntGauge,
    topics: IntGauge,
    published: IntCounter,
    delivered: IntCounter,
    resets: IntCounter,
    pub(crate) bytes_sent: IntCounter,
    pub(crate) publish_duration: Histogram,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric name");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric name");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let connections = gauge("herald_connections", "Open SSE connections.");
        let subscribers = gauge("herald_subscribers", "Subscribers registered on the bus.");
        let topics = gauge(
            "herald_topics",
            "Topics held in memory (retained events or exact subscribers).",
        );
        let published = counter("herald_events_published_total", "Events published.");
        let delivered = counter(
            "herald_events_delivered_total",
            "Events handed to subscribers, history included.",
        );
        let resets = counter("herald_resets_total", "herald.reset notices sent.");
        let bytes_sent = counter("herald_bytes_sent_total", "Bytes written to SSE streams.");
        let buckets = vec![
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
            0.25,
        ];
        let publish_duration = Histogram::with_opts(
            HistogramOpts::new(
                "herald_publish_duration_seconds",
                "Time to accept a publish request.",
            )
            .buckets(buckets),
        )
        .expect("valid histogram");
        registry
            .register(Box::new(publish_duration.clone()))
            .expect("registered once");
        Self {
            registry,
            connections,
            subscribers,
            topics,
            published,
            delivered,
            resets,
            bytes_sent,
            publish_duration,
        }
    }

    /// Copies the bus's numbers in, then renders every metric.
    pub(crate) fn render(&self, bus: herald_bus::Metrics, topics: usize) -> String {
        self.subscribers
            .set(i64::try_from(bus.subscribers).unwrap_or(i64::MAX));
        self.topics.set(i64::try_from(topics).unwrap_or(i64::MAX));
        catch_up(&self.published, bus.published);
        catch_up(&self.delivered, bus.delivered);
        catch_up(&self.resets, bus.resets);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Raises `counter` to `total`; the bus's totals only grow.
fn catch_up(counter: &IntCounter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_every_contract_name() {
        let metrics = Metrics::new();
        let text = metrics.render(herald_bus::Bus::new().metrics(), 3);
        for name in [
            "herald_connections",
            "herald_subscribers",
            "herald_topics 3",
            "herald_events_published_total",
            "herald_events_delivered_total",
            "herald_resets_total",
            "herald_bytes_sent_total",
            "herald_publish_duration_seconds_bucket",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
