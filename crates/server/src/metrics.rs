//! Prometheus metrics (names in SPEC §7), rendered in the text format at `/metrics`.
//!
//! Counters the bus keeps (published, delivered, resets) are copied in at scrape time,
//! so the hot paths pay for one relaxed atomic add, not a registry lookup. The
//! PostgreSQL sources' metrics come from a collector (`metrics/sources.rs`).

mod sources;

use prometheus::{
    Counter, Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, Registry, TextEncoder,
};

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
    log: LogMetrics,
}

/// The shared log's numbers (Redis); they stay 0 on the in-memory log.
#[derive(Debug, Clone)]
struct LogMetrics {
    calls: IntCounter,
    failures: IntCounter,
    timeouts: IntCounter,
    call_seconds: Counter,
    tail_lag: IntGauge,
    tail_failures: IntCounter,
    appends_recovered: IntCounter,
    appends_fenced: IntCounter,
    appends_unknown: IntCounter,
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
        let call_seconds = Counter::new(
            "herald_log_call_seconds_total",
            "Time spent in shared-log (Redis) calls.",
        )
        .expect("valid metric name");
        registry
            .register(Box::new(call_seconds.clone()))
            .expect("registered once");
        let log = LogMetrics {
            calls: counter(
                "herald_log_calls_total",
                "Shared-log (Redis) calls; mean latency = call seconds / calls.",
            ),
            failures: counter(
                "herald_log_call_failures_total",
                "Shared-log calls that failed, timeouts included.",
            ),
            timeouts: counter(
                "herald_log_call_timeouts_total",
                "Shared-log calls that got no answer in time.",
            ),
            call_seconds,
            tail_lag: gauge(
                "herald_log_tail_lag",
                "Events this node's tail is behind the newest it knows of.",
            ),
            tail_failures: counter(
                "herald_log_tail_failures_total",
                "Times the tail's Redis connection failed.",
            ),
            appends_recovered: counter(
                "herald_log_appends_recovered_total",
                "Appends whose reply was lost but were found stored (answered 200).",
            ),
            appends_fenced: counter(
                "herald_log_appends_fenced_total",
                "Appends whose reply was lost and that were cancelled before running (answered 503).",
            ),
            appends_unknown: counter(
                "herald_log_appends_unknown_total",
                "Appends whose outcome could not be settled (answered 504).",
            ),
        };
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
            log,
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

    /// Copies the bus's numbers in, then renders every metric.
    pub(crate) fn render(
        &self,
        bus: herald_bus::Metrics,
        topics: usize,
        redis: Option<herald_redis::Stats>,
    ) -> String {
        self.subscribers
            .set(i64::try_from(bus.subscribers).unwrap_or(i64::MAX));
        self.topics.set(i64::try_from(topics).unwrap_or(i64::MAX));
        catch_up(&self.published, bus.published);
        catch_up(&self.delivered, bus.delivered);
        catch_up(&self.resets, bus.resets);
        if let Some(r) = redis {
            catch_up(&self.log.calls, r.calls);
            catch_up(&self.log.failures, r.failures);
            catch_up(&self.log.timeouts, r.timeouts);
            catch_up(&self.log.tail_failures, r.tail_failures);
            catch_up(&self.log.appends_recovered, r.appends_recovered);
            catch_up(&self.log.appends_fenced, r.appends_fenced);
            catch_up(&self.log.appends_unknown, r.appends_unknown);
            let seconds = r.call_time.as_secs_f64();
            if seconds > self.log.call_seconds.get() {
                self.log
                    .call_seconds
                    .inc_by(seconds - self.log.call_seconds.get());
            }
            self.log
                .tail_lag
                .set(i64::try_from(r.tail_lag).unwrap_or(i64::MAX));
        }
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
        let text = metrics.render(herald_bus::Bus::new().metrics(), 3, None);
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
        let metrics = Metrics::new();
        metrics.register_sources(vec![notify.monitor(), outbox.monitor()]);
        let text = metrics.render(bus.metrics(), 0, None);
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
        assert_eq!(
            text,
            metrics.render(bus.metrics(), 0, None),
            "scrapes do not add up"
        );
    }
}
