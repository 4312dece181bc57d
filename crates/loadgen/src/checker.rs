//! Per-stream sequence checking: lost, duplicated and out-of-order events.

use std::ops::Range;

use serde::Serialize;

/// What one received sequence number was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observation {
    /// The expected next one.
    InOrder,
    /// Newer than expected: this many before it are (so far) missing.
    Gap(u64),
    /// Older than the newest, and already received before.
    Duplicate,
    /// Older than the newest, and one of the missing: it came late.
    OutOfOrder,
}

/// Counts for one subscriber's stream, or a sum of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Counts {
    /// Events received (duplicates included).
    pub received: u64,
    /// Events never received (gaps still open, and the missing tail once
    /// [`SeqChecker::finish`] knows how many were published).
    pub lost: u64,
    /// Events received more than once (each extra copy counts).
    pub duplicated: u64,
    /// Events received after a newer one (each late event counts once; it is
    /// not also counted as lost).
    pub out_of_order: u64,
}

impl Counts {
    /// Adds `other` to these counts.
    pub(crate) fn add(&mut self, other: &Counts) {
        self.received += other.received;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
    }

    /// Whether any event was lost, duplicated or out of order.
    pub(crate) fn has_anomaly(&self) -> bool {
        self.lost + self.duplicated + self.out_of_order > 0
    }
}

/// Checks that sequence numbers of one stream arrive as `start, start+1, …`.
///
/// Lost = gaps, duplicated = repeats, out-of-order = a missing number that
/// arrives after a newer one. Gaps are kept as ranges, so a wild jump costs
/// one entry, and the common case (no gap) costs nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqChecker {
    next: u64,
    counts: Counts,
    missing: Vec<Range<u64>>,
}

impl SeqChecker {
    /// A checker that expects `start` first.
    pub(crate) fn starting_at(start: u64) -> Self {
        Self {
            next: start,
            ..Self::default()
        }
    }

    /// The next expected sequence number: everything below it was received
    /// or is counted missing.
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    /// Records one received sequence number.
    pub(crate) fn observe(&mut self, seq: u64) -> Observation {
        self.counts.received += 1;
        if seq == self.next {
            self.next += 1;
            return Observation::InOrder;
        }
        if seq > self.next {
            let gap = seq - self.next;
            self.missing.push(self.next..seq);
            self.counts.lost += gap;
            self.next = seq + 1;
            return Observation::Gap(gap);
        }
        match self.missing.iter().position(|range| range.contains(&seq)) {
            Some(i) => {
                let range = self.missing.remove(i);
                if range.start < seq {
                    self.missing.push(range.start..seq);
                }
                if seq + 1 < range.end {
                    self.missing.push(seq + 1..range.end);
                }
                self.counts.lost -= 1;
                self.counts.out_of_order += 1;
                Observation::OutOfOrder
            }
            None => {
                self.counts.duplicated += 1;
                Observation::Duplicate
            }
        }
    }

    /// Closes the check: `published` events (numbers below it) were sent, so
    /// any not yet reached are lost. Call once, after the drain.
    pub(crate) fn finish(&mut self, published: u64) {
        if published > self.next {
            self.counts.lost += published - self.next;
            self.missing.push(self.next..published);
            self.next = published;
        }
    }

    /// The counts so far.
    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seqs: &[u64], published: u64) -> Counts {
        let mut check = SeqChecker::default();
        for &seq in seqs {
            check.observe(seq);
        }
        check.finish(published);
        check.counts()
    }

    fn triple(c: Counts) -> (u64, u64, u64) {
        (c.lost, c.duplicated, c.out_of_order)
    }

    #[test]
    fn clean_stream_has_no_anomaly() {
        let counts = run(&[0, 1, 2, 3], 4);
        assert_eq!(triple(counts), (0, 0, 0));
        assert_eq!(counts.received, 4);
        assert!(!counts.has_anomaly());
    }

    #[test]
    fn gaps_count_as_lost() {
        assert_eq!(triple(run(&[0, 3, 4, 9], 10)), (2 + 4, 0, 0));
    }

    #[test]
    fn missing_tail_counts_as_lost() {
        assert_eq!(triple(run(&[0, 1], 5)), (3, 0, 0));
        assert_eq!(triple(run(&[], 3)), (3, 0, 0));
    }

    #[test]
    fn repeats_count_as_duplicates() {
        assert_eq!(triple(run(&[0, 1, 1, 2, 0, 2], 3)), (0, 3, 0));
    }

    #[test]
    fn late_events_are_out_of_order_not_lost() {
        let mut check = SeqChecker::default();
        assert_eq!(check.observe(0), Observation::InOrder);
        assert_eq!(check.observe(3), Observation::Gap(2));
        assert_eq!(check.observe(2), Observation::OutOfOrder);
        assert_eq!(check.observe(1), Observation::OutOfOrder);
        assert_eq!(check.observe(1), Observation::Duplicate);
        check.finish(4);
        assert_eq!(triple(check.counts()), (0, 1, 2));
    }

    #[test]
    fn late_event_inside_a_gap_splits_it() {
        // 1..6 missing, then 3 arrives: 1, 2, 4, 5 stay missing.
        let counts = run(&[0, 6, 3, 3, 5], 7);
        assert_eq!(triple(counts), (3, 1, 2));
    }

    #[test]
    fn checker_may_start_elsewhere() {
        let mut check = SeqChecker::starting_at(1);
        for seq in 1..=1000 {
            assert_eq!(check.observe(seq), Observation::InOrder);
        }
        check.finish(1001);
        assert_eq!(triple(check.counts()), (0, 0, 0));
        assert_eq!(check.next(), 1001);
    }

    #[test]
    fn counts_add_up() {
        let mut total = Counts::default();
        total.add(&run(&[0, 2], 3));
        total.add(&run(&[0, 0], 1));
        assert_eq!(triple(total), (1, 1, 0));
        assert_eq!(total.received, 4);
    }

    #[test]
    fn lost_duplicated_and_out_of_order_are_counted_apart() {
        let mut check = SeqChecker::default();
        for seq in [0, 1, 3, 2, 3, 5] {
            check.observe(seq);
        }
        check.finish(7); // 0..7 were published: 4 and 6 never came
        let counts = check.counts();
        assert_eq!(
            (counts.lost, counts.duplicated, counts.out_of_order),
            (2, 1, 1)
        );
    }
}
