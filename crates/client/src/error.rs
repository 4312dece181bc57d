//! The crate's [`Error`]: what went wrong talking to a Herald server.

use std::fmt;

/// Everything that can go wrong in a publish or a subscription.
///
/// [`Unreachable`](Error::Unreachable) means no server answered; a
/// [`Refused`](Error::Refused) one answered with an error status, and keeps the
/// `code` and `message` of its JSON error body (Herald's
/// `{"error": {"code", "message"}}`).
///
/// # Examples
///
/// ```
/// use herald_client::Error;
///
/// let err = Error::refused(403, r#"{"error":{"code":"forbidden_topic","message":"not yours"}}"#);
/// assert_eq!(err.status(), Some(403));
/// assert_eq!(err.code(), Some("forbidden_topic"));
/// assert_eq!(err.to_string(), "refused with 403: not yours (forbidden_topic)");
/// assert!(!err.is_unreachable());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL given to the client is not an `http://` or `https://` URL.
    #[error("invalid base url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// No connection could be made (refused, unresolvable, or the connect
    /// timeout passed).
    #[error("cannot reach {url}")]
    Unreachable {
        /// The URL of the request.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a non-success status.
    #[error("refused with {status}: {message}{}", Code(code))]
    Refused {
        /// The HTTP status code.
        status: u16,
        /// The error `code` of Herald's JSON error body, if it had one.
        code: Option<String>,
        /// The error `message` of the body, or the body itself.
        message: String,
    },
    /// The connection failed after it was made: reset, timed out, or closed
    /// inside a response.
    #[error("request failed")]
    Transport(#[source] reqwest::Error),
    /// The server answered 2xx with a body this client does not understand.
    #[error("unexpected answer: {0}")]
    UnexpectedAnswer(String),
}

/// Formats an optional error code as ` (code)`.
struct Code<'a>(&'a Option<String>);

impl fmt::Display for Code<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(code) => write!(f, " ({code})"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// A [`Refused`](Error::Refused) error from a status and the response body:
    /// the `code` and `message` of a Herald JSON error body, or the body itself
    /// as the message.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_client::Error;
    ///
    /// let err = Error::refused(502, "bad gateway");
    /// assert_eq!((err.code(), err.to_string().as_str()), (None, "refused with 502: bad gateway"));
    /// ```
    pub fn refused(status: u16, body: &str) -> Self {
        let json = serde_json::from_str::<serde_json::Value>(body).ok();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|v| v["error"][name].as_str())
                .map(str::to_owned)
        };
        Error::Refused {
            status,
            code: field("code"),
            message: field("message").unwrap_or_else(|| body.trim().to_owned()),
        }
    }

    /// Classifies an error of the HTTP client sending a request to `url`.
    pub(crate) fn sending(url: &str, source: reqwest::Error) -> Self {
        if source.is_connect() {
            Error::Unreachable {
                url: url.to_owned(),
                source,
            }
        } else {
            Error::Transport(source)
        }
    }

    /// Whether no server could be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use herald_client::{Client, Draft};
    ///
    /// // Port 9 on loopback (discard) is closed on any sane machine.
    /// let client = Client::new("http://127.0.0.1:9").expect("valid url");
    /// let err = client.publish(&Draft::new("t", "x")).await.unwrap_err();
    /// assert!(err.is_unreachable());
    /// # }
    /// ```
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }

    /// The HTTP status of a [`Refused`](Error::Refused) error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The Herald error code of a [`Refused`](Error::Refused) error, e.g.
    /// `invalid_event` or `forbidden_topic`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Refused { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_keeps_code_and_message_of_a_json_body() {
        let err = Error::refused(
            400,
            r#"{"error":{"code":"invalid_event","message":"unknown field `evnet`"}}"#,
        );
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.code(), Some("invalid_event"));
        let Error::Refused { message, .. } = &err else {
            panic!("expected refused, got {err:?}")
        };
        assert_eq!(message, "unknown field `evnet`");
    }

    #[test]
    fn refused_with_a_plain_body_uses_it_as_the_message() {
        let err = Error::refused(503, "  down for maintenance\n");
        assert_eq!(err.code(), None);
        assert_eq!(err.to_string(), "refused with 503: down for maintenance");
    }
}
