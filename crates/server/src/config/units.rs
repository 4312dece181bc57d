//! The plain numbers of configuration keys (`*_ms`) for the typed defaults the crates
//! own, so a default is written once, next to the type that uses it.

use std::time::Duration;

/// `duration` as the whole milliseconds a `*_ms` key holds.
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_are_whole_and_saturate() {
        assert_eq!(millis(Duration::from_micros(2_500)), 2);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
