//! [`Backoff`]: how long a subscription waits before it reconnects.

use std::time::Duration;

/// Jittered exponential backoff between reconnects.
///
/// After the `n`-th failed attempt in a row (`n` from 0), the wait is drawn
/// uniformly from `[d, 1.5·d]` with `d = min(max, base·2ⁿ)`. The first
/// reconnect takes the server's `retry:` hint as `base` once it sent one,
/// else [`initial`](Backoff::initial); later ones the larger of the two, so
/// that a hint of 0 cannot make a failing client spin. The jitter only adds
/// to `d`, so the client
/// never comes back sooner than the server asked, while clients that lost
/// the same server at the same moment spread out instead of returning
/// together.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use herald_client::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
/// let wait = backoff.delay(None, 2);
/// assert!(wait >= Duration::from_millis(400) && wait <= Duration::from_millis(600));
/// // Past the bound the delay stops growing (jitter aside).
/// assert!(backoff.delay(None, 30) <= Duration::from_millis(1500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Default for Backoff {
    /// 1 s initially, at most 30 s (jitter aside).
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(30))
    }
}

impl Backoff {
    /// A backoff starting at `initial` (until the server sends a `retry:`
    /// hint) and growing to at most `max` before jitter. A `max` below
    /// `initial` is raised to it.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
        }
    }

    /// The wait before the first reconnect, without a server hint.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The bound on the un-jittered wait.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The wait after `failures` failed attempts in a row, from a server
    /// `hint` when there is one.
    pub fn delay(&self, hint: Option<Duration>, failures: u32) -> Duration {
        self.delay_with(hint, failures, fastrand::f64())
    }

    /// [`delay`](Backoff::delay) with the random draw `unit` in `[0, 1)`.
    fn delay_with(&self, hint: Option<Duration>, failures: u32, unit: f64) -> Duration {
        let base = match hint {
            Some(hint) if failures == 0 => hint,
            Some(hint) => hint.max(self.initial),
            None => self.initial,
        };
        let factor = 1u32 << failures.min(16);
        let capped = base.saturating_mul(factor).min(self.max.max(base));
        capped.saturating_add(capped.mul_f64(unit.clamp(0.0, 1.0) / 2.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn grows_exponentially_up_to_the_bound() {
        let backoff = Backoff::new(100 * MS, 1000 * MS);
        let waits: Vec<_> = (0..6).map(|n| backoff.delay_with(None, n, 0.0)).collect();
        assert_eq!(
            waits,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
    }

    #[test]
    fn jitter_adds_up_to_half() {
        let backoff = Backoff::new(100 * MS, 1000 * MS);
        assert_eq!(backoff.delay_with(None, 1, 0.5), 250 * MS);
        assert_eq!(backoff.delay_with(None, 9, 0.999_999).as_millis(), 1499);
    }

    #[test]
    fn random_draws_spread_within_the_range() {
        let backoff = Backoff::new(100 * MS, 1000 * MS);
        let waits: Vec<Duration> = (0..200).map(|_| backoff.delay(None, 0)).collect();
        assert!(
            waits.iter().all(|w| (100 * MS..=150 * MS).contains(w)),
            "{waits:?}"
        );
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(
            distinct.len() > 20,
            "jitter draws too few values: {distinct:?}"
        );
    }

    #[test]
    fn the_server_hint_replaces_the_initial_wait() {
        let backoff = Backoff::new(100 * MS, 1000 * MS);
        assert_eq!(backoff.delay_with(Some(2000 * MS), 0, 0.0), 2000 * MS);
        assert_eq!(backoff.delay_with(Some(300 * MS), 1, 0.0), 600 * MS);
        assert_eq!(backoff.delay_with(Some(300 * MS), 5, 0.0), 1000 * MS);
    }

    #[test]
    fn a_zero_hint_applies_only_to_the_first_reconnect() {
        let backoff = Backoff::new(100 * MS, 1000 * MS);
        assert_eq!(
            backoff.delay_with(Some(Duration::ZERO), 0, 0.5),
            Duration::ZERO
        );
        assert_eq!(backoff.delay_with(Some(Duration::ZERO), 1, 0.0), 200 * MS);
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let backoff = Backoff::new(Duration::MAX / 4, Duration::MAX);
        assert!(backoff.delay_with(None, u32::MAX, 1.0) >= Duration::MAX / 4);
    }
}
