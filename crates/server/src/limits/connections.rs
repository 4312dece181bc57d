//! Open SSE connections, counted in total and per user, refused past
//! `limits.max_connections` and `limits.max_connections_per_user`.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use dashmap::DashMap;
use herald_bus::UserId;
use prometheus::IntGauge;

use crate::error::{ApiError, ErrorCode};

/// A cheap handle to the connection counts.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLimits {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max: usize,
    max_per_user: usize,
    total: AtomicUsize,
    per_user: DashMap<UserId, usize>,
    /// `herald_connections`, kept equal to `total`.
    gauge: IntGauge,
}

impl ConnectionLimits {
    /// At most `max` connections, `max_per_user` of them per user; `gauge` shows how many
    /// are open.
    pub(crate) fn new(max: usize, max_per_user: usize, gauge: IntGauge) -> Self {
        Self {
            inner: Arc::new(Inner {
                max,
                max_per_user,
                total: AtomicUsize::new(0),
                per_user: DashMap::new(),
                gauge,
            }),
        }
    }

    /// Counts a new connection of `user`, released when the slot drops.
    ///
    /// # Errors
    ///
    /// `429 too_many_connections` or `too_many_user_connections` at a limit.
    pub(crate) fn open(&self, user: Option<&UserId>) -> Result<ConnectionSlot, ApiError> {
        let inner = &self.inner;
        inner
            .total
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < inner.max).then_some(n + 1)
            })
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::TooManyConnections,
                    format!("the server holds its limit of {} connections", inner.max),
                )
            })?;
        if let Some(user) = user {
            let mut count = inner.per_user.entry(user.clone()).or_insert(0);
            if *count >= inner.max_per_user {
                drop(count);
                // A limit of 0 refuses a user it has just put in the map: take them out.
                inner.per_user.remove_if(user, |_, n| *n == 0);
                inner.total.fetch_sub(1, Ordering::SeqCst);
                return Err(ApiError::new(
                    ErrorCode::TooManyUserConnections,
                    format!(
                        "user {user} already holds {} connections",
                        inner.max_per_user
                    ),
                ));
            }
            *count += 1;
        }
        inner.gauge.inc();
        Ok(ConnectionSlot {
            limits: self.clone(),
            user: user.cloned(),
        })
    }
}

/// One open connection, counted while it lives.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    limits: ConnectionLimits,
    user: Option<UserId>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let inner = &self.limits.inner;
        inner.total.fetch_sub(1, Ordering::SeqCst);
        inner.gauge.dec();
        if let Some(user) = &self.user {
            inner.per_user.remove_if_mut(user, |_, count| {
                *count -= 1;
                *count == 0
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_total_and_per_user_free_their_slots() {
        let gauge = IntGauge::new("g", "g").unwrap();
        let limits = ConnectionLimits::new(3, 1, gauge.clone());
        let alice = UserId::new("alice").unwrap();
        let first = limits.open(Some(&alice)).unwrap();
        let err = limits.open(Some(&alice)).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooManyUserConnections);
        let anonymous = [limits.open(None).unwrap(), limits.open(None).unwrap()];
        assert_eq!(gauge.get(), 3);
        let err = limits.open(None).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooManyConnections);
        drop((first, anonymous));
        assert_eq!(gauge.get(), 0);
        assert!(limits.inner.per_user.is_empty());
        limits.open(Some(&alice)).unwrap();
    }

    #[test]
    fn a_per_user_limit_of_zero_keeps_no_count() {
        let limits = ConnectionLimits::new(3, 0, IntGauge::new("g", "g").unwrap());
        let bob = UserId::new("bob").unwrap();
        assert!(limits.open(Some(&bob)).is_err());
        assert!(limits.inner.per_user.is_empty());
        assert_eq!(limits.inner.total.load(Ordering::SeqCst), 0);
    }
}
