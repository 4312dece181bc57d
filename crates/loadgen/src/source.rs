//! Local source addresses for subscriber connections.
//!
//! One source address has at most ~28,000 ephemeral ports (Linux's default
//! `ip_local_port_range` is 32768–60999) towards one server address, so tens of
//! thousands of connections need several: binding each socket to the next
//! `127.0.0.x` before `connect` spreads them. Every `127.0.0.0/8` address is
//! local on Linux, no setup needed.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use crate::Error;

/// Most addresses one range may hold (a guard against `0.0.0.0-255.255.255.255`).
const MAX_ADDRESSES: u32 = 65_536;

/// A list of local addresses, used round robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceIps {
    addrs: Vec<IpAddr>,
}

impl SourceIps {
    /// How many addresses.
    pub(crate) fn len(&self) -> usize {
        self.addrs.len()
    }

    /// The address for connection `i` (round robin).
    ///
    /// # Panics
    ///
    /// If the list is empty, which parsing never produces.
    pub(crate) fn nth(&self, i: usize) -> IpAddr {
        self.addrs[i % self.addrs.len()]
    }
}

impl FromStr for SourceIps {
    type Err = Error;

    /// Parses comma-separated items, each an address or an IPv4 range `A-B`.
    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Invalid {
            what: "source-ips",
            reason,
        };
        let mut addrs = Vec::new();
        for item in text.split(',').map(str::trim) {
            if let Some((first, last)) = item.split_once('-') {
                let parse = |s: &str| {
                    s.trim()
                        .parse::<Ipv4Addr>()
                        .map_err(|_| invalid(format!("{s:?} is not an IPv4 address")))
                };
                let (first, last) = (u32::from(parse(first)?), u32::from(parse(last)?));
                if last < first {
                    return Err(invalid(format!("range {item:?} ends before it starts")));
                }
                if last - first >= MAX_ADDRESSES {
                    return Err(invalid(format!(
                        "range {item:?} holds more than {MAX_ADDRESSES} addresses"
                    )));
                }
                addrs.extend((first..=last).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
            } else {
                let addr = item
                    .parse::<IpAddr>()
                    .map_err(|_| invalid(format!("{item:?} is not an address or A-B range")))?;
                addrs.push(addr);
            }
        }
        Ok(Self { addrs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<String>, Error> {
        let ips: SourceIps = text.parse()?;
        Ok(ips.addrs.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn single_address() {
        assert_eq!(parse("127.0.0.9").unwrap(), ["127.0.0.9"]);
        assert_eq!(parse("::1").unwrap(), ["::1"]);
    }

    #[test]
    fn range_is_inclusive_and_crosses_octets() {
        assert_eq!(
            parse("127.0.0.254-127.0.1.1").unwrap(),
            ["127.0.0.254", "127.0.0.255", "127.0.1.0", "127.0.1.1"]
        );
        assert_eq!(parse(" 127.0.0.1 - 127.0.0.1 ").unwrap(), ["127.0.0.1"]);
    }

    #[test]
    fn lists_combine_items() {
        assert_eq!(
            parse("127.0.0.1-127.0.0.2, 127.0.0.7").unwrap(),
            ["127.0.0.1", "127.0.0.2", "127.0.0.7"]
        );
    }

    #[test]
    fn round_robin_wraps() {
        let ips: SourceIps = "127.0.0.1-127.0.0.20".parse().unwrap();
        assert_eq!(ips.len(), 20);
        assert_eq!(ips.nth(19).to_string(), "127.0.0.20");
        assert_eq!(ips.nth(20).to_string(), "127.0.0.1");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse("127.0.0.5-127.0.0.1").is_err());
        assert!(parse("127.0.0.1-nope").is_err());
        assert!(parse("").is_err());
        assert!(parse("10.0.0.0-10.255.255.255").is_err());
        assert!(parse("::1-::2").is_err());
    }

    #[test]
    fn ranges_and_single_addresses_are_cycled_through() -> Result<(), crate::Error> {
        let ips: SourceIps = "127.0.0.1-127.0.0.3,127.0.1.1".parse()?;
        assert_eq!(ips.len(), 4);
        assert_eq!(ips.nth(1).to_string(), "127.0.0.2");
        assert_eq!(ips.nth(4).to_string(), "127.0.0.1");
        Ok(())
    }
}
