//! [`RedisOptions`]: where the log lives and how much of it is kept.

use std::time::Duration;

/// How to reach the shared log and how much history it keeps.
///
/// Every node of one deployment must use the same `key_prefix` (that is what makes them
/// share a log) and should use the same retention: each node trims with its own numbers.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use herald_redis::RedisOptions;
///
/// let options = RedisOptions {
///     key_prefix: "{shop}".into(),
///     max_len: 10_000,
///     ..RedisOptions::new("redis://10.0.0.5:6379")
/// };
/// assert_eq!(options.key_prefix, "{shop}");
/// assert_eq!(options.max_age, Duration::from_secs(3600));
/// assert_eq!(options.call_timeout, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// The Redis URL, e.g. `redis://127.0.0.1:6379` or `rediss://user:pass@host/0`.
    pub url: String,
    /// Prefix of the log's keys: `{prefix}:log` (the stream), `{prefix}:seq` (the offset
    /// counter), `{prefix}:epoch`, `{prefix}:topics` (retained entries per topic) and
    /// `{prefix}:attempt:<id>` (one per recent append, expiring by itself). On Redis
    /// Cluster, wrap it in braces (`{herald}`) so they all share a slot.
    pub key_prefix: String,
    /// Entries kept in the stream, across all topics (exact trimming, at least 1).
    pub max_len: usize,
    /// Entries older than this (by Redis's clock) are trimmed, on append and by a sweep
    /// every second.
    pub max_age: Duration,
    /// Longest wait for any one Redis call, after which it fails with
    /// [`LogError::Unavailable`](herald_bus::LogError::Unavailable). An append whose
    /// reply is lost is settled for up to three times this more (see
    /// [`RedisLog`](crate::RedisLog#failures)).
    pub call_timeout: Duration,
}

/// Default [`RedisOptions::url`]: the local Redis.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
/// Default [`RedisOptions::key_prefix`].
pub const DEFAULT_KEY_PREFIX: &str = "herald";
/// Default [`RedisOptions::max_len`].
pub const DEFAULT_MAX_LEN: usize = 100_000;
/// Default [`RedisOptions::max_age`]: one hour, as the in-memory log's
/// [`Retention`](herald_bus::Retention).
pub const DEFAULT_MAX_AGE: Duration = herald_bus::Retention::DEFAULT_MAX_AGE;
/// Default [`RedisOptions::call_timeout`]: two seconds.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisOptions {
    /// The defaults, with Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    pub(crate) fn keys(&self) -> Keys {
        let p = &self.key_prefix;
        Keys {
            log: format!("{p}:log"),
            seq: format!("{p}:seq"),
            epoch: format!("{p}:epoch"),
            topics: format!("{p}:topics"),
            attempts: format!("{p}:attempt:"),
        }
    }
}

impl Default for RedisOptions {
    /// Local Redis, prefix `herald`, 100,000 entries, one hour, two-second calls.
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            max_len: DEFAULT_MAX_LEN,
            max_age: DEFAULT_MAX_AGE,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

/// The log's keys, in the order the scripts expect them (`KEYS[1..4]`).
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) log: String,
    pub(crate) seq: String,
    pub(crate) epoch: String,
    pub(crate) topics: String,
    /// The prefix of the attempt keys, `{prefix}:attempt:`.
    attempts: String,
}

impl Keys {
    pub(crate) fn all(&self) -> [&str; 4] {
        [&self.log, &self.seq, &self.epoch, &self.topics]
    }

    /// The attempt key of a new append: `{prefix}:attempt:<random id>`.
    pub(crate) fn new_attempt(&self) -> String {
        format!("{}{}", self.attempts, uuid::Uuid::new_v4().simple())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_prefix() {
        let keys = RedisOptions {
            key_prefix: "{h}".into(),
            ..RedisOptions::default()
        }
        .keys();
        assert_eq!(
            keys.all(),
            ["{h}:log", "{h}:seq", "{h}:epoch", "{h}:topics"]
        );
        let attempt = keys.new_attempt();
        assert!(attempt.starts_with("{h}:attempt:"), "{attempt}");
        assert_eq!(attempt.len(), "{h}:attempt:".len() + 32);
        assert_ne!(attempt, keys.new_attempt());
    }
}
