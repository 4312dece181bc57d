//! The publish rate limit: a token bucket per publisher (per token in jwt mode, per client
//! address otherwise), kept in a concurrent map.

use std::{
    hash::{BuildHasher, Hash},
    time::Duration,
};

use dashmap::DashMap;
use tokio::time::Instant;

use crate::error::{ApiError, ErrorCode};

/// Past this many publishers tracked, buckets that have refilled are forgotten.
const PRUNE_ABOVE: usize = 100_000;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: DashMap<u64, Bucket>,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_sec` events per second with bursts of `burst`; `per_sec == 0` never limits.
    pub(crate) fn new(per_sec: f64, burst: u32) -> Self {
        Self {
            per_sec,
            burst: f64::from(burst),
            buckets: DashMap::new(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Takes `events` from `publisher`'s bucket.
    ///
    /// # Errors
    ///
    /// `429 rate_limited` with `Retry-After` when the bucket is short, `413` when
    /// `events` exceeds the burst (it could never pass).
    pub(crate) fn take(&self, publisher: impl Hash, events: usize) -> Result<(), ApiError> {
        if self.per_sec == 0.0 {
            return Ok(());
        }
        let wanted = events as f64;
        if wanted > self.burst {
            return Err(ApiError::new(
                ErrorCode::BatchOverBurst,
                format!(
                    "a batch of {events} events is over the publish burst of {}",
                    self.burst
                ),
            ));
        }
        let now = Instant::now();
        if self.buckets.len() > PRUNE_ABOVE {
            self.buckets
                .retain(|_, b| self.refilled(*b, now) < self.burst);
        }
        let key = self.hasher.hash_one(publisher);
        let mut bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens < wanted {
            let wait = Duration::from_secs_f64((wanted - tokens) / self.per_sec);
            *bucket = Bucket { tokens, at: now };
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!("publish rate limit of {} events/s reached", self.per_sec),
            )
            .retry_after(wait));
        }
        *bucket = Bucket {
            tokens: tokens - wanted,
            at: now,
        };
        Ok(())
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_sec).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_refills_per_publisher() {
        let limiter = RateLimiter::new(10.0, 5);
        for _ in 0..5 {
            limiter.take("a", 1).unwrap();
        }
        let err = limiter.take("a", 1).unwrap_err();
        assert_eq!(err.code, ErrorCode::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_millis(100)));
        limiter.take("b", 5).unwrap();
        tokio::time::advance(Duration::from_millis(300)).await;
        limiter.take("a", 3).unwrap();
        assert!(limiter.take("a", 1).is_err());
        assert_eq!(
            limiter.take("c", 6).unwrap_err().code,
            ErrorCode::BatchOverBurst
        );
        RateLimiter::new(0.0, 1).take("x", 1_000).unwrap();
    }
}
