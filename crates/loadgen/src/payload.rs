//! The event payload: a sequence number, a send timestamp and padding.
//!
//! `{"seq":N,"ts":MICROS,"s":STREAM,"w":1,"pad":"…"}`: `s` is the stream
//! (topic, user) the event belongs to, so a subscriber can tell a misrouted
//! event; `w` marks warm-up events, whose latency is not recorded. Servers wrap
//! data differently (Herald sends `data` as compact JSON, nchan sends the
//! request body), so [`Probe::find`] looks for the fields in the SSE data as
//! JSON, also one or two levels down or inside a JSON string.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// Microseconds since the Unix epoch, the clock both ends of a latency use.
pub(crate) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Writes the payload JSON for one event into `out`, padded so it is about
/// `size` bytes long (never shorter than the fields themselves).
pub(crate) fn write(out: &mut String, seq: u64, ts: u64, stream: usize, warmup: bool, size: usize) {
    use std::fmt::Write as _;
    out.clear();
    write!(out, r#"{{"seq":{seq},"ts":{ts},"s":{stream},"#).expect("String write");
    if warmup {
        out.push_str(r#""w":1,"#);
    }
    out.push_str(r#""pad":""#);
    let pad = size.saturating_sub(out.len() + 2);
    out.extend(std::iter::repeat_n('x', pad));
    out.push_str("\"}");
}

/// The fields the receiver needs from one event's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) struct Probe {
    /// The sequence number within its stream.
    pub seq: u64,
    /// Send time, Unix microseconds.
    pub ts: u64,
    /// The stream index, when the sender put one.
    #[serde(default, rename = "s")]
    pub stream: Option<usize>,
    /// Whether this is a warm-up event.
    #[serde(default, rename = "w", deserialize_with = "flag")]
    pub warmup: bool,
}

fn flag<'de, D: serde::Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    Ok(u8::deserialize(de)? != 0)
}

/// How deep [`Probe::find`] looks into wrapped data.
const MAX_DEPTH: usize = 3;

impl Probe {
    /// Finds `seq` and `ts` in SSE data: the data itself as JSON (fast path,
    /// no allocation besides the parse), else an object nested in it or a
    /// JSON string holding it. `None` if there is none.
    pub(crate) fn find(data: &str) -> Option<Probe> {
        if let Ok(probe) = serde_json::from_str::<Probe>(data) {
            return Some(probe);
        }
        let value: serde_json::Value = serde_json::from_str(data).ok()?;
        Self::search(&value, MAX_DEPTH)
    }

    fn search(value: &serde_json::Value, depth: usize) -> Option<Probe> {
        use serde_json::Value;
        if let Ok(probe) = Probe::deserialize(value) {
            return Some(probe);
        }
        if depth == 0 {
            return None;
        }
        match value {
            Value::String(text) => {
                let inner: Value = serde_json::from_str(text).ok()?;
                Self::search(&inner, depth - 1)
            }
            Value::Object(map) => map.values().find_map(|v| Self::search(v, depth - 1)),
            Value::Array(items) => items.iter().find_map(|v| Self::search(v, depth - 1)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_padded_to_size_and_round_trips() {
        let mut out = String::new();
        write(&mut out, 42, 123_456, 9, true, 128);
        assert_eq!(out.len(), 128);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["seq"], 42);
        let probe = Probe::find(&out).unwrap();
        assert_eq!(
            probe,
            Probe {
                seq: 42,
                ts: 123_456,
                stream: Some(9),
                warmup: true
            }
        );
    }

    #[test]
    fn payload_never_truncates_fields() {
        let mut out = String::new();
        write(&mut out, u64::MAX, u64::MAX, 1, false, 10);
        assert!(out.ends_with(r#""pad":""}"#));
        assert_eq!(Probe::find(&out).unwrap().seq, u64::MAX);
    }

    #[test]
    fn finds_fields_in_wrapped_data() {
        let nested = r#"{"topic":"a","data":{"seq":3,"ts":9}}"#;
        assert_eq!(Probe::find(nested).unwrap().seq, 3);
        let stringly = r#""{\"seq\":4,\"ts\":9}""#;
        assert_eq!(Probe::find(stringly).unwrap().seq, 4);
        let listed = r#"[{"seq":5,"ts":9,"s":2}]"#;
        assert_eq!(Probe::find(listed).unwrap().stream, Some(2));
    }

    #[test]
    fn other_data_has_no_probe() {
        assert_eq!(Probe::find(r#"{"connection":"abc"}"#), None);
        assert_eq!(Probe::find("hello"), None);
        assert_eq!(Probe::find(r#"{"seq":"x","ts":1}"#), None);
    }

    #[test]
    fn clock_is_after_2020() {
        assert!(unix_micros() > 1_577_836_800_000_000);
    }

    #[test]
    fn written_payload_has_the_asked_size_and_is_found_again() {
        let mut out = String::new();
        write(&mut out, 7, 1_700_000_000_000_000, 3, false, 96);
        assert_eq!(out.len(), 96);
        let probe = Probe::find(&out).expect("fields found");
        assert_eq!((probe.seq, probe.stream, probe.warmup), (7, Some(3), false));
    }
}
