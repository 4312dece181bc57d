//! Event ids: a position in a log (offset) tagged with the log's epoch.

use std::{fmt, str::FromStr};

use crate::error::{IdError, excerpt};

/// The id of an event: its offset in the bus's log, tagged with the log's epoch.
///
/// Offsets start at 1 and grow by one per event in bus order, across all topics, so one
/// number orders every event a subscriber can see. The epoch names one life of the log: an
/// in-memory log draws a new one at each start, so an id from before a restart is
/// recognised as foreign and answered with a reset rather than misread as a position.
///
/// On the wire an id is `<epoch in hex>-<offset>`; clients treat it as opaque.
///
/// # Examples
///
/// ```
/// use herald_bus::EventId;
///
/// let id = EventId::new(0xbeef, 42);
/// assert_eq!(id.to_string(), "beef-42");
/// assert_eq!("beef-42".parse::<EventId>()?, id);
/// assert!("42".parse::<EventId>().is_err());
/// # Ok::<(), herald_bus::IdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId {
    epoch: u64,
    offset: u64,
}

impl EventId {
    /// The id at `offset` in the log life `epoch`.
    pub const fn new(epoch: u64, offset: u64) -> Self {
        Self { epoch, offset }
    }

    /// The log life this id belongs to.
    pub const fn epoch(self) -> u64 {
        self.epoch
    }

    /// The position in the log; 0 is "before the first event".
    pub const fn offset(self) -> u64 {
        self.offset
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.epoch, self.offset)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for EventId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IdError { id: excerpt(s) };
        let (epoch, offset) = s.split_once('-').ok_or_else(err)?;
        // from_str_radix accepts a leading `+`; an id is only ever hex and decimal digits.
        let digits = |t: &str, hex: bool| {
            !t.is_empty()
                && t.len() <= 20
                && t.bytes().all(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
        };
        if !digits(epoch, true) || !digits(offset, false) {
            return Err(err());
        }
        Ok(Self {
            epoch: u64::from_str_radix(epoch, 16).map_err(|_| err())?,
            offset: offset.parse().map_err(|_| err())?,
        })
    }
}

impl serde::Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "x-1",
            "1-x",
            "+1-1",
            "1-+1",
            "1-1-1",
            "1 -1",
            "fffffffffffffffff-1",
            "1-99999999999999999999",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?} parsed");
        }
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(epoch: u64, offset: u64) {
            let id = EventId::new(epoch, offset);
            prop_assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<EventId>();
        }
    }
}
