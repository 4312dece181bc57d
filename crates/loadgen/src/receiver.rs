//! What a subscriber does with each event: check its sequence, record its
//! latency.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use herald_bus::control::{CONNECTED, RESET};
use herald_sse::Item;
use serde::Serialize;

use crate::payload::{Probe, unix_micros};
use crate::{Counts, SeqChecker};

/// Histogram shards: subscribers record latencies into `index % SHARDS`, so
/// the lock is rarely contended and no subscriber carries its own histogram.
const SHARDS: usize = 16;

/// A latency histogram in microseconds, 1 µs to 1 hour, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Latency and delivery figures shared by every subscriber of a run.
#[derive(Debug)]
pub(crate) struct Recorder {
    shards: Vec<Mutex<Histogram<u64>>>,
    deliveries: AtomicU64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
            deliveries: AtomicU64::new(0),
        }
    }
}

impl Recorder {
    /// Deliveries so far (events with a sequence number, warm-up included).
    pub(crate) fn deliveries(&self) -> u64 {
        self.deliveries.load(Ordering::Relaxed)
    }

    /// All latencies recorded, merged.
    pub(crate) fn latency(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.shards {
            all.add(&*shard.lock().expect("histogram lock"))
                .expect("same bounds");
        }
        all
    }

    fn record(&self, subscriber: usize, micros: u64) {
        let mut shard = self.shards[subscriber % SHARDS]
            .lock()
            .expect("histogram lock");
        shard.saturating_record(micros.max(1));
    }
}

/// One subscriber's view of its stream.
#[derive(Debug, Clone)]
pub(crate) struct Receiver {
    index: usize,
    stream: usize,
    checker: SeqChecker,
    tally: Tally,
}

/// What a subscriber saw besides its sequence numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Tally {
    /// Events of another stream (another topic or user): misrouted.
    pub foreign: u64,
    /// `herald.reset` notices.
    pub resets: u64,
    /// Events without `seq`/`ts` (e.g. a server's own notices).
    pub other: u64,
    /// Comment lines (heartbeats).
    pub comments: u64,
    /// Deliveries outside the warm-up.
    pub measured: u64,
}

impl Tally {
    /// Adds `other` to this tally.
    pub(crate) fn add(&mut self, other: &Tally) {
        self.foreign += other.foreign;
        self.resets += other.resets;
        self.other += other.other;
        self.comments += other.comments;
        self.measured += other.measured;
    }
}

impl Receiver {
    /// Subscriber `index` of stream `stream`, expecting sequence number
    /// `start` first.
    pub(crate) fn new(index: usize, stream: usize, start: u64) -> Self {
        Self {
            index,
            stream,
            checker: SeqChecker::starting_at(start),
            tally: Tally::default(),
        }
    }

    /// The stream this subscriber checks.
    pub(crate) fn stream(&self) -> usize {
        self.stream
    }

    /// The next sequence number it expects.
    pub(crate) fn next(&self) -> u64 {
        self.checker.next()
    }

    /// Handles one parsed SSE item.
    pub(crate) fn on_item(&mut self, item: &Item, recorder: &Recorder) {
        match item {
            Item::Event(event) => self.on_event(&event.event_type, &event.data, recorder),
            Item::Comment(_) => self.tally.comments += 1,
            Item::Retry(_) => {}
        }
    }

    /// Handles one event: its type (empty for none) and its data.
    pub(crate) fn on_event(&mut self, event_type: &str, data: &str, recorder: &Recorder) {
        match event_type {
            CONNECTED => return,
            RESET => {
                self.tally.resets += 1;
                return;
            }
            _ => {}
        }
        let Some(probe) = Probe::find(data) else {
            self.tally.other += 1;
            return;
        };
        if probe.stream.is_some_and(|s| s != self.stream) {
            self.tally.foreign += 1;
            return;
        }
        self.checker.observe(probe.seq);
        recorder.deliveries.fetch_add(1, Ordering::Relaxed);
        if !probe.warmup {
            self.tally.measured += 1;
            recorder.record(self.index, unix_micros().saturating_sub(probe.ts));
        }
    }

    /// Closes the check once `published` events of its stream were sent, and
    /// returns the counts.
    pub(crate) fn finish(mut self, published: u64) -> (Counts, Tally) {
        self.checker.finish(published);
        (self.checker.counts(), self.tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload;

    fn data(seq: u64, stream: usize, warmup: bool) -> String {
        let mut out = String::new();
        payload::write(&mut out, seq, unix_micros(), stream, warmup, 64);
        out
    }

    #[test]
    fn counts_events_of_its_stream_and_records_measured_latency() {
        let recorder = Recorder::default();
        let mut rx = Receiver::new(0, 2, 0);
        rx.on_event(CONNECTED, r#"{"connection":"x"}"#, &recorder);
        rx.on_event("", &data(0, 2, true), &recorder);
        rx.on_event("", &data(1, 2, false), &recorder);
        rx.on_event("", &data(1, 3, false), &recorder);
        rx.on_event(RESET, "{}", &recorder);
        rx.on_event("", "not json", &recorder);
        assert_eq!(rx.next(), 2);
        let (counts, tally) = rx.finish(3);
        assert_eq!((counts.received, counts.lost), (2, 1));
        assert_eq!(
            (tally.foreign, tally.resets, tally.other, tally.measured),
            (1, 1, 1, 1)
        );
        assert_eq!(recorder.deliveries(), 2);
        assert_eq!(recorder.latency().len(), 1);
    }
}
