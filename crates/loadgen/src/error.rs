//! The crate's error type.

use std::io;

/// What can go wrong while generating load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URL, body or topic template is malformed.
    #[error("template {template:?}: {reason}")]
    Template {
        /// The template text.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A command-line value (source-ip range, shard, URL…) is malformed.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which option.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A socket or file operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The server answered a subscription with a status other than 200.
    #[error("status {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The server's response could not be understood.
    #[error("bad response: {0}")]
    Protocol(String),
    /// A publish failed.
    #[error("publish failed: {0}")]
    Publish(String),
    /// Waiting for something took longer than allowed.
    #[error("timed out {0}")]
    Timeout(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A short label used to group connection failures in the report
    /// (`status 429`, `io: Too many open files`…).
    pub(crate) fn kind(&self) -> String {
        match self {
            Self::Status { status, .. } => format!("status {status}"),
            Self::Io { source, .. } => format!("io: {source}"),
            Self::Protocol(_) => "protocol".into(),
            Self::Timeout(_) => "timeout".into(),
            other => other.to_string(),
        }
    }
}
