//! The crate's errors: [`Error`] for configuration and PostgreSQL failures, [`MapError`]
//! for a change that cannot become an event (a "bad payload", counted and skipped).

use std::error::Error as StdError;

use herald_bus::NameError;

/// A configuration that cannot work, or a PostgreSQL request that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A table, schema, column or channel name that Herald refuses to put in SQL.
    #[error("sql name {name:?} is not usable: {reason}")]
    Name {
        /// The rejected name (cut to 80 characters).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A topic or event template that cannot be parsed.
    #[error("template {template:?} is not valid: {reason}")]
    Template {
        /// The rejected template.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection URL cannot be parsed.
    #[error("postgres connection url is not valid")]
    Url(#[source] tokio_postgres::Error),
    /// A source is missing a setting, or has contradictory ones.
    #[error("postgres source: {0}")]
    Config(String),
    /// PostgreSQL refused a request or could not be reached.
    #[error("postgres request failed")]
    Postgres(#[from] tokio_postgres::Error),
}

impl Error {
    pub(crate) fn name(name: &str, reason: &'static str) -> Self {
        Self::Name {
            name: name.chars().take(80).collect(),
            reason,
        }
    }
}

/// Why one change (a notification or an outbox row) could not become an event.
///
/// A source counts these as bad payloads in
/// [`SourceStatus::bad_payloads`](crate::SourceStatus::bad_payloads), logs them and goes
/// on with the next change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The payload is not JSON.
    #[error("payload is not json")]
    NotJson,
    /// A required field is missing or has the wrong type.
    #[error("payload has no {0:?} field of the expected type")]
    MissingField(&'static str),
    /// A template placeholder, or the user column, has no value in this change.
    #[error("{0} has no value in this change")]
    MissingValue(String),
    /// A value is not usable inside a topic or event type (it must be one segment of
    /// `A-Z a-z 0-9 _ : -`, so a row cannot add segments to a topic).
    #[error("{placeholder} is {value:?}, which is not one topic segment of A-Z a-z 0-9 _ : -")]
    BadValue {
        /// The placeholder, such as `{row.user_id}`.
        placeholder: String,
        /// The value (cut to 80 characters).
        value: String,
    },
    /// The rendered topic is not a valid topic.
    #[error("rendered topic is not valid")]
    Topic(#[source] NameError),
    /// The rendered event type is not a valid event type.
    #[error("rendered event type is not valid")]
    EventName(#[source] NameError),
    /// The user column's value is not a valid user id.
    #[error("user column value is not a valid user id")]
    User(#[source] NameError),
}

/// `err` and its causes on one line, for logs.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
