//! Prometheus metrics, rendered in the text format at `/metrics`.
//!
//! What the server counts itself (connections, bytes sent, publish time, topics) lives in
//! the registry. What the bus and the shared log count (published, delivered, resets,
//! subscribers, Redis calls) is read from them at each scrape (`metrics/totals.rs`), and
//! so are the PostgreSQL sources' numbers (`metrics/sources.rs`): no total is copied, so
//! none can drift or double count.

mod family;
mod sources;
mod totals;

use herald_bus::Bus;
use herald_redis::RedisLog;
use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, Registry, TextEncoder};

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) connections: IntGauge,
    topics: IntGauge,
    pub(crate) bytes_sent: IntCounter,
    pub(crate) publish_duration: Histogram,
}

impl Metrics {
    /// The server's metrics, and the totals of `bus` and of its shared log `redis`.
    pub(crate) fn new(bus: &Bus, redis: Option<&RedisLog>) -> Self {
        let registry = Registry::new();
        let register = |metric: Box<dyn prometheus::core::Collector>| {
            registry.register(metric).expect("registered once");
        };
        let connections =
            IntGauge::new("herald_connections", "Open SSE connections.").expect("valid name");
        register(Box::new(connections.clone()));
        let topics = IntGauge::new(
            "herald_topics",
            "Topics held in memory (retained events or exact subscribers).",
        )
        .expect("valid name");
        register(Box::new(topics.clone()));
        let bytes_sent =
            IntCounter::new("herald_bytes_sent_total", "Bytes written to SSE streams.")
                .expect("valid name");
        register(Box::new(bytes_sent.clone()));
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
        register(Box::new(publish_duration.clone()));
        register(Box::new(totals::TotalsCollector::new(
            bus.clone(),
            redis.cloned(),
        )));
        Self {
            registry,
            connections,
            topics,
            bytes_sent,
            publish_duration,
        }
    }

    /// Adds the per-source metrics (`herald_source_*{source="<name>"}`) of `sources`.
    pub(crate) fn register_sources(&self, sources: Vec<herald_postgres::SourceMonitor>) {
        if !sources.is_empty() {
            self.registry
                .register(Box::new(sources::SourceCollector::new(sources)))
                .expect("registered once");
        }
    }

    /// Renders every metric, with `topics` topics held now.
    pub(crate) fn render(&self, topics: usize) -> String {
        self.topics.set(i64::try_from(topics).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_every_contract_name() {
        let metrics = Metrics::new(&Bus::new(), None);
        let text = metrics.render(3);
        for name in [
            "herald_connections",
            "herald_subscribers",
            "herald_topics 3",
            "herald_events_published_total",
            "herald_events_delivered_total",
            "herald_resets_total",
            "herald_bytes_sent_total",
            "herald_publish_duration_seconds_bucket",
            "herald_log_calls_total",
            "herald_log_tail_lag",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        assert!(
            !text.contains("herald_source_"),
            "no source, no source metrics"
        );
    }

    /// The value of the sample `name` in `text`.
    fn sample(text: &str, name: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_scrapes_read_the_bus_totals_exactly() {
        use herald_bus::{Draft, Topic};
        let bus = Bus::new();
        let metrics = Metrics::new(&bus, None);
        let publishes = 500;
        let scrapers: Vec<_> = (0..20)
            .map(|_| {
                let metrics = metrics.clone();
                tokio::task::spawn_blocking(move || {
                    let mut last = 0.0;
                    for _ in 0..50 {
                        let now = sample(&metrics.render(0), "herald_events_published_total");
                        assert!(now >= last, "a counter went down: {last} then {now}");
                        assert!(now <= f64::from(publishes), "overcounted: {now}");
                        last = now;
                    }
                })
            })
            .collect();
        let topic = Topic::new("a").unwrap();
        for i in 0..publishes {
            bus.publish(Draft::new(topic.clone(), serde_json::json!(i)))
                .await
                .unwrap();
        }
        for scraper in scrapers {
            scraper.await.unwrap();
        }
        let text = metrics.render(0);
        assert_eq!(
            sample(&text, "herald_events_published_total"),
            f64::from(publishes)
        );
        assert_eq!(sample(&text, "herald_log_calls_total"), 0.0);
    }

    #[tokio::test]
    async fn renders_each_source_under_its_name() {
        use herald_postgres::{Ident, Mapping, Mode, Outbox, PgSource};
        let bus = herald_bus::Bus::new();
        let source = |name: &str, mode: Mode| {
            // Port 1 on loopback refuses: the source stays disconnected.
            PgSource::builder("postgres://postgres@127.0.0.1:1/test")
                .name(name)
                .mode(mode)
                .mapping(Mapping::new("db.{table}.{op}").unwrap())
                .spawn(&bus)
                .unwrap()
        };
        let notify = source("orders", Mode::notify([Ident::new("herald").unwrap()]));
        let outbox = source("audit", Mode::outbox(Outbox::default()));
        let metrics = Metrics::new(&bus, None);
        metrics.register_sources(vec![notify.monitor(), outbox.monitor()]);
        let text = metrics.render(0);
        for line in [
            "herald_source_connected{source=\"orders\"} 0",
            "herald_source_connected{source=\"audit\"} 0",
            "herald_source_notifications_total{source=\"orders\"} 0",
            "herald_source_events_published_total{source=\"audit\"} 0",
            "herald_source_bad_payloads_total{source=\"orders\"} 0",
            "herald_source_reconnects_total{source=\"audit\"} 0",
            "# TYPE herald_source_reconnects_total counter",
            "# TYPE herald_source_connected gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // Not counted yet (never connected): left out rather than shown as 0.
        assert!(!text.contains("herald_source_outbox_lag"), "{text}");
        assert_eq!(text, metrics.render(0), "scrapes do not add up");
    }
}
