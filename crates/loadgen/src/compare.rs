//! `herald-loadgen compare A.json B.json`: two reports side by side, with
//! the ratio A / B of each figure.

use serde_json::Value;

use crate::report::Table;

/// Figures compared: label and JSON pointer into a `run` or `catchup` report.
const FIGURES: &[(&str, &str)] = &[
    ("deliveries/s", "/deliveries_per_s"),
    ("latency p50 (ms)", "/latency/p50_ms"),
    ("latency p99 (ms)", "/latency/p99_ms"),
    ("latency max (ms)", "/latency/max_ms"),
    ("publish round trip p99 (ms)", "/publish_latency/p99_ms"),
    ("connect p99 (ms)", "/connections/connect/p99_ms"),
    (
        "server cpu s / 1,000 deliveries",
        "/server/cpu_s_per_1000_deliveries",
    ),
    (
        "server memory / connection (B)",
        "/server/memory_per_connection_bytes",
    ),
    ("server rss connected (KiB)", "/server/rss_connected_kib"),
    (
        "generator cpu s / 1,000 deliveries",
        "/generator/cpu_s_per_1000_deliveries",
    ),
    ("catch-up p50 (ms)", "/catchup/p50_ms"),
    ("catch-up max (ms)", "/catchup/max_ms"),
    ("catch-up events/s", "/events_per_s"),
    ("reconnect p50 (ms)", "/reconnect/p50_ms"),
    ("lost", "/delivery/counts/lost"),
    ("duplicated", "/delivery/counts/duplicated"),
    ("out of order", "/delivery/counts/out_of_order"),
];

/// The comparison of report `a` (named `names.0`) with report `b`.
///
/// # Examples
///
/// ```
/// use serde_json::json;
///
/// let a = json!({"latency": {"p99_ms": 2.0}, "ok": true});
/// let b = json!({"latency": {"p99_ms": 4.0}, "ok": true});
/// let table = herald_loadgen::compare(("herald", &a), ("nchan", &b)).to_string();
/// assert!(table.contains("latency p99 (ms)"));
/// assert!(table.contains("0.50"));
/// ```
pub fn compare(a: (&str, &Value), b: (&str, &Value)) -> Table {
    let mut table = Table::default();
    table.row(
        "figure",
        format!("{:>14}  {:>14}  {}/{}", a.0, b.0, a.0, b.0),
    );
    for (label, pointer) in FIGURES {
        let (x, y) = (number(a.1, pointer), number(b.1, pointer));
        if x.is_none() && y.is_none() {
            continue;
        }
        let ratio = match (x, y) {
            (Some(x), Some(y)) if y != 0.0 => format!("{:.2}", x / y),
            _ => "-".into(),
        };
        table.row(*label, format!("{:>14}  {:>14}  {ratio}", cell(x), cell(y)));
    }
    let ok = |v: &Value| {
        v.pointer("/ok")
            .and_then(Value::as_bool)
            .map_or("-", |ok| if ok { "yes" } else { "NO" })
    };
    table.row("ok", format!("{:>14}  {:>14}", ok(a.1), ok(b.1)));
    table
}

/// The number at `pointer`; `None` when absent, or when it belongs to a
/// latency summary that recorded nothing (`"count": 0`, e.g. an idle run).
fn number(report: &Value, pointer: &str) -> Option<f64> {
    let parent = &pointer[..pointer.rfind('/').unwrap_or(0)];
    let empty = pointer.ends_with("_ms")
        && report
            .pointer(&format!("{parent}/count"))
            .and_then(Value::as_u64)
            == Some(0);
    if empty {
        return None;
    }
    report.pointer(pointer).and_then(Value::as_f64)
}

fn cell(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.4}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ratios_skip_missing_and_zero() {
        let a = json!({"server": {"cpu_s_per_1000_deliveries": 0.5, "memory_per_connection_bytes": 3000.0},
                       "delivery": {"counts": {"lost": 0}}, "ok": true});
        let b = json!({"server": {"cpu_s_per_1000_deliveries": 0.25}, "delivery": {"counts": {"lost": 0}}, "ok": false});
        let text = compare(("a", &a), ("b", &b)).to_string();
        let line = |label: &str| {
            text.lines()
                .find(|l| l.starts_with(label))
                .unwrap()
                .to_owned()
        };
        assert!(line("server cpu").ends_with("2.00"), "{text}");
        assert!(line("server memory").ends_with('-'), "{text}");
        assert!(line("lost").ends_with('-'), "{text}");
        assert!(line("ok").contains("NO"), "{text}");
        assert!(!text.contains("catch-up"), "{text}");
        let idle = json!({"latency": {"count": 0, "p99_ms": 0.0}});
        assert!(
            !compare(("a", &idle), ("b", &idle))
                .to_string()
                .contains("latency")
        );
    }
}
