//! [`Outbox`]: where an outbox lives (its table, commits and position tables, wake-up
//! channel) and how a source reads it (poll interval, retention).

use std::time::Duration;

use crate::{Error, Ident, TableName};

/// Longest outbox table name: the derived names (`<name>_position`, `<name>_commits`,
/// `<name>_commit_seq`, `<name>_created_at`) must stay within PostgreSQL's 63 bytes.
const MAX_OUTBOX_NAME: usize = 52;

/// An outbox table and how a source reads it.
///
/// The table (created by [`install_sql`](crate::install_sql)) has the columns `id
/// bigserial`, `txid xid8 DEFAULT pg_current_xact_id()`, `topic text`, `event text`,
/// `user_id text`, `payload jsonb NOT NULL` and `created_at timestamptz DEFAULT now()`.
/// Beside it, `<name>_commits` numbers the transactions that wrote to the outbox in the
/// order they committed (a deferred trigger on the outbox records each one at its
/// commit), and `<name>_position` records, per source name, the last row published.
/// Sources read rows in that commit order. A statement trigger on the outbox sends an
/// empty `NOTIFY` on [`Outbox::channel`] at commit, which wakes the source; it also polls
/// every [`Outbox::poll_interval`] in case a notification was missed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use herald_postgres::{Ident, Outbox, TableName};
///
/// let outbox = Outbox::new(TableName::parse("shop.herald_outbox")?)?
///     .with_retention(Duration::from_secs(3600));
/// assert_eq!(outbox.channel().as_str(), "herald_outbox");
/// assert_eq!(outbox.position_table().to_string(), "shop.herald_outbox_position");
/// assert_eq!(outbox.commits_table().to_string(), "shop.herald_outbox_commits");
/// assert_eq!(Outbox::default().table().to_string(), "public.herald_outbox");
/// # Ok::<(), herald_postgres::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbox {
    table: TableName,
    channel: Ident,
    poll_interval: Duration,
    retention: Duration,
}

impl Outbox {
    /// How often a source reads the outbox without being woken: 5 s.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
    /// How long published rows are kept before they are pruned: 24 h.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

    /// The outbox in `table`, woken on a channel named like the table.
    ///
    /// Qualify the name: the trigger that copies a table's changes into the outbox
    /// resolves it with the writing session's `search_path`.
    ///
    /// # Errors
    ///
    /// [`Error::Name`] when the table's name is over 52 bytes, so the derived names
    /// would not fit.
    pub fn new(table: TableName) -> Result<Self, Error> {
        if table.name().as_str().len() > MAX_OUTBOX_NAME {
            return Err(Error::name(
                table.name().as_str(),
                "an outbox name may be at most 52 bytes",
            ));
        }
        Ok(Self {
            channel: table.name().clone(),
            table,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            retention: Self::DEFAULT_RETENTION,
        })
    }

    /// Sets the channel the outbox's trigger notifies and the source listens on.
    pub fn with_channel(mut self, channel: Ident) -> Self {
        self.channel = channel;
        self
    }

    /// Sets how often the source reads without being woken (at least 10 ms).
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.max(Duration::from_millis(10));
        self
    }

    /// Sets how long rows are kept after they are published; older ones are pruned.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The outbox table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The wake-up channel.
    pub fn channel(&self) -> &Ident {
        &self.channel
    }

    /// How often the source reads without being woken.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// How long published rows are kept.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// The table of recorded positions, `<outbox>_position` in the outbox's schema.
    pub fn position_table(&self) -> TableName {
        self.derived("position")
    }

    /// The table of commits, `<outbox>_commits` in the outbox's schema: one row per
    /// transaction that wrote to the outbox, `(txid xid8, seq bigint)`, with `seq`
    /// increasing in commit order.
    pub fn commits_table(&self) -> TableName {
        self.derived("commits")
    }

    /// The sequence that numbers commits, `<outbox>_commit_seq`.
    pub(crate) fn commit_sequence(&self) -> TableName {
        self.derived("commit_seq")
    }

    /// The outbox's index on `created_at`, for pruning.
    pub(crate) fn created_at_index(&self) -> Ident {
        self.derived("created_at").name().clone()
    }

    fn derived(&self, suffix: &str) -> TableName {
        let name = format!("{}_{suffix}", self.table.name());
        self.table
            .sibling(Ident::new(&name).expect("short enough and of valid characters"))
    }
}

impl Default for Outbox {
    /// `public.herald_outbox`, channel `herald_outbox`.
    fn default() -> Self {
        let table = TableName::new(
            Some(Ident::new("public").expect("a valid name")),
            Ident::new("herald_outbox").expect("a valid name"),
        );
        Self::new(table).expect("a short name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_refused_before_derived_names_overflow() {
        let name = |n: usize| TableName::parse(&"o".repeat(n)).unwrap();
        assert!(Outbox::new(name(53)).is_err());
        let longest = Outbox::new(name(52)).unwrap();
        assert_eq!(longest.position_table().name().as_str().len(), 61);
        assert_eq!(longest.commits_table().name().as_str().len(), 60);
        assert_eq!(longest.commit_sequence().name().as_str().len(), 63);
        assert_eq!(longest.created_at_index().as_str().len(), 63);
    }

    #[test]
    fn poll_interval_has_a_floor() {
        let outbox = Outbox::default().with_poll_interval(Duration::ZERO);
        assert_eq!(outbox.poll_interval(), Duration::from_millis(10));
    }
}
