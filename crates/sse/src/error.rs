//! The crate's error type.
//!
//! Two families share one enum: the encoder refuses field values that would
//! let a caller inject extra fields ([`Error::InvalidId`],
//! [`Error::InvalidEventType`]), and the [`Parser`](crate::Parser) refuses
//! input that would make it buffer more than its limit
//! ([`Error::LineTooLong`], [`Error::EventTooLarge`]).

/// Everything that can go wrong while encoding or parsing an event stream.
///
/// # Examples
///
/// ```
/// use herald_sse::{Error, Frame};
///
/// let err = Frame::new("hi").id("1\ndata: evil").unwrap_err();
/// assert_eq!(err, Error::InvalidId);
/// assert_eq!(err.to_string(), "event id contains CR, LF or NUL");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An event id given to the encoder contains CR, LF or NUL.
    ///
    /// CR and LF would end the `id:` line early and start a new field; a
    /// browser ignores any `id` containing NUL.
    #[error("event id contains CR, LF or NUL")]
    InvalidId,

    /// An event type given to the encoder contains CR, LF or NUL.
    #[error("event type contains CR, LF or NUL")]
    InvalidEventType,

    /// The parser met a line longer than its limit (in bytes, without the
    /// line end).
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The parser's limit, in bytes.
        limit: usize,
    },

    /// The parser's data buffer for one event grew past its limit (in bytes).
    #[error("event data larger than {limit} bytes")]
    EventTooLarge {
        /// The parser's limit, in bytes.
        limit: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lower_case_without_trailing_punctuation() {
        let all = [
            Error::InvalidId,
            Error::InvalidEventType,
            Error::LineTooLong { limit: 7 },
            Error::EventTooLarge { limit: 7 },
        ];
        for err in all {
            let msg = err.to_string();
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
    }

    #[test]
    fn limits_appear_in_messages() {
        assert_eq!(
            Error::LineTooLong { limit: 42 }.to_string(),
            "line longer than 42 bytes"
        );
        assert_eq!(
            Error::EventTooLarge { limit: 42 }.to_string(),
            "event data larger than 42 bytes"
        );
    }
}
