//! The crate's error types: one per operation a caller may need to branch on.

use std::error::Error as StdError;

/// A topic name, selector, event name or user id that is not valid.
///
/// Messages name the offending part, so they can go back to an HTTP client as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The name is longer than its limit.
    #[error("name is {len} bytes long, the limit is 255")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Two dots in a row, or a dot at either end.
    #[error("segment {index} of {name:?} is empty")]
    EmptySegment {
        /// The whole name.
        name: String,
        /// 1-based position of the empty segment.
        index: usize,
    },
    /// A segment has a character outside `A-Z a-z 0-9 _ : -`.
    #[error(
        "segment {segment:?} of {name:?} has the character {ch:?}, allowed are A-Z a-z 0-9 _ : -"
    )]
    BadChar {
        /// The whole name.
        name: String,
        /// The offending segment.
        segment: String,
        /// The first character that is not allowed.
        ch: char,
    },
    /// `>` somewhere other than the last segment of a selector.
    #[error("segment {index} of {name:?} is `>`, which may only be the last segment")]
    TailNotLast {
        /// The whole selector.
        name: String,
        /// 1-based position of the misplaced `>`.
        index: usize,
    },
    /// An event type outside `[A-Za-z0-9_.:-]{1,64}`.
    #[error("event type {name:?} is not 1-64 characters of A-Z a-z 0-9 _ . : -")]
    EventName {
        /// The rejected type (cut to 80 characters).
        name: String,
    },
    /// A user id that is empty, too long, or has control characters.
    #[error("user id {id:?} is not 1-255 bytes without control characters")]
    UserId {
        /// The rejected id (cut to 80 characters).
        id: String,
    },
}

/// Cuts untrusted input echoed in an error to a readable length.
pub(crate) fn excerpt(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Why an [`EventId`](crate::EventId) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event id {id:?} is not of the form <epoch hex>-<offset>")]
pub struct IdError {
    /// The rejected text (cut to 80 characters).
    pub id: String,
}

/// A failure of the [`Log`](crate::Log) behind a bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The log's storage cannot be reached (a shared log's server is down or timed out).
    /// For an append: nothing was stored.
    #[error("the event log is unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
    /// An append was sent but its outcome could not be learnt in time: the events may or
    /// may not be stored (and delivered). Retrying may publish them twice.
    #[error("the event log did not confirm the append in time; it may or may not be stored")]
    OutcomeUnknown(#[source] Box<dyn StdError + Send + Sync>),
    /// The log was closed.
    #[error("the event log is closed")]
    Closed,
}

impl LogError {
    /// Wraps any error as [`LogError::Unavailable`].
    pub fn unavailable(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Unavailable(source.into())
    }
}

/// Why a publish was refused. Nothing of a refused publish is stored or delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// An event's encoded size is over the bus's limit.
    #[error("event {index} is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Position of the event in its batch (0 for a single publish).
        index: usize,
        /// Its size in bytes (data, topic and type).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// An empty batch.
    #[error("a batch needs at least one event")]
    EmptyBatch,
    /// The log could not store the events.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl PublishError {
    /// Whether trying again later is safe and may succeed: the log was unavailable and
    /// stored nothing. Not after [`LogError::OutcomeUnknown`], where a retry may publish
    /// twice.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Log(LogError::Unavailable(_)))
    }

    /// Whether the events may have been published although this error was returned.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::Log(LogError::OutcomeUnknown(_)))
    }
}
