//! [`Error`]: why a Redis call failed, carried as the source of a
//! [`LogError::Unavailable`] or [`LogError::OutcomeUnknown`].

use std::time::Duration;

use herald_bus::LogError;

/// Why a call to Redis failed.
///
/// The log's methods return [`LogError::Unavailable`] with this as its source, so a
/// caller that needs the detail can downcast it. An append whose reply was lost is
/// settled before it fails (see [`RedisLog`](crate::RedisLog#failures)): when it was
/// fenced off the source is [`Error::Fenced`] (nothing was stored); when even that could
/// not be learnt the append fails with [`LogError::OutcomeUnknown`], whose source is the
/// append's own error.
///
/// # Examples
///
/// ```
/// use herald_bus::LogError;
/// use herald_redis::Error;
///
/// fn advice(error: &LogError) -> &'static str {
///     match error {
///         LogError::Unavailable(source)
///             if matches!(source.downcast_ref(), Some(Error::Fenced { .. })) =>
///         {
///             "Redis was slow: the append was cancelled, nothing was stored; retry"
///         }
///         LogError::Unavailable(_) => "nothing was stored; retry later",
///         LogError::OutcomeUnknown(_) => "it may be stored: check before publishing again",
///         _ => "the log is closed",
///     }
/// }
/// # let _ = advice;
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be used.
    #[error("redis url is not usable")]
    Url(#[source] redis::RedisError),
    /// Redis answered with an error, or the connection failed.
    #[error("redis {op} failed")]
    Redis {
        /// What was being done (`append`, `read`, ...).
        op: &'static str,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// No answer within [`RedisOptions::call_timeout`](crate::RedisOptions::call_timeout).
    #[error("redis {op} got no answer within {after:?}")]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// Redis answered something the log does not understand (keys written by someone
    /// else?).
    #[error("redis {op} gave an unexpected reply: {detail}")]
    Reply {
        /// What was being done.
        op: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// An append whose reply was lost (`source`), fenced off afterwards: it stored nothing
    /// and never will, so publishing again is safe.
    #[error("redis {op} failed and was cancelled; nothing was stored")]
    Fenced {
        /// What was being done (`append`).
        op: &'static str,
        /// Why its reply was lost.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Whether the call may have taken effect although it failed: it timed out, or the
    /// connection broke after the request was sent.
    ///
    /// The log does not answer an append with such an error as it is: it first settles
    /// whether the append ran (see [`RedisLog`](crate::RedisLog#failures)). So this is
    /// true for the source of a [`LogError::OutcomeUnknown`], and for the source of a
    /// failed read or retention call (which changed nothing that matters); it is false for
    /// [`Error::Fenced`], the source of an append that was cancelled.
    pub fn is_outcome_unknown(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Redis { source, .. } => {
                source.is_timeout()
                    || (source.is_connection_dropped() && !source.is_connection_refusal())
            }
            Self::Url(_) | Self::Reply { .. } | Self::Fenced { .. } => false,
        }
    }

    /// Whether the call timed out (for [`Error::Fenced`]: whether the cancelled append
    /// did).
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Redis { source, .. } => source.is_timeout(),
            Self::Fenced { source, .. } => source.is_timeout(),
            Self::Url(_) | Self::Reply { .. } => false,
        }
    }

    pub(crate) fn reply(op: &'static str, detail: impl Into<String>) -> Self {
        Self::Reply {
            op,
            detail: detail.into(),
        }
    }
}

impl From<Error> for LogError {
    fn from(error: Error) -> Self {
        LogError::unavailable(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_leave_the_outcome_unknown() {
        let timeout = Error::Timeout {
            op: "append",
            after: Duration::from_secs(2),
        };
        assert!(timeout.is_outcome_unknown() && timeout.is_timeout());
        assert_eq!(timeout.to_string(), "redis append got no answer within 2s");
        let refused = Error::Redis {
            op: "append",
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        };
        assert!(!refused.is_outcome_unknown());
        let reset = Error::Redis {
            op: "append",
            source: std::io::Error::from(std::io::ErrorKind::ConnectionReset).into(),
        };
        assert!(reset.is_outcome_unknown());
        let fenced = Error::Fenced {
            op: "append",
            source: Box::new(timeout),
        };
        assert!(!fenced.is_outcome_unknown() && fenced.is_timeout());
        assert_eq!(
            fenced.to_string(),
            "redis append failed and was cancelled; nothing was stored"
        );
    }
}
