//! herald-postgres: PostgreSQL changes into a Herald [`Bus`](herald_bus::Bus).
//!
//! A [`PgSource`] is an *ingress*: it reads changes from PostgreSQL and calls
//! [`Bus::publish`](herald_bus::Bus::publish); it is not a log. Two modes:
//!
//! - **Notify** ([`Mode::Notify`]): `LISTEN` on channels that triggers `NOTIFY` with
//!   `{"schema","table","op","key","row","at"}`. Low latency, nothing to store. A change
//!   that happens while Herald is disconnected is gone: after a reconnect the source
//!   publishes a `herald.reset` event
//!   (`{"reason":"source_reconnected","missed_since":"<id>"}`, built by
//!   [`herald_bus::control`]) on the topics it feeds, so clients refetch. A row that does not fit the 8,000-byte `NOTIFY` limit
//!   arrives as its key with `"truncated": true`.
//! - **Outbox** ([`Mode::Outbox`]): changes are rows of an outbox table written in the
//!   application's own transaction (by the application, or by an installed trigger).
//!   The source reads them in commit order (a deferred trigger numbers the writing
//!   transactions as they commit) from a position it records in PostgreSQL, so nothing
//!   is lost across Herald or PostgreSQL restarts, and rows may be large. Delivery is at
//!   least once only across a crash between publishing and recording the position; a
//!   graceful [`PgSourceHandle::stop`], a lost connection or a killed backend cause no
//!   duplicate.
//!
//! Either way a [`Mapping`] turns a change into an event: a topic [`Template`] such as
//! `db.{table}.{op}`, an optional event-type template, and an optional user column that
//! makes the event user-scoped. Changes that cannot be mapped are counted in
//! [`SourceStatus::bad_payloads`] and skipped; they never stop a source. A source
//! reconnects by itself, with backoff, and its [`SourceStatus`] can be read at any time.
//!
//! [`install_sql`] and [`uninstall_sql`] produce idempotent SQL for the triggers and the
//! outbox ([`install`] and [`uninstall`] run it). The guide from `CREATE TABLE` to a
//! browser is `docs/postgres.md`.
//!
//! # Layout
//!
//! - `source`: [`PgSource`], its builder, [`Mode`] and [`PgSourceHandle`]; the
//!   reconnect loop, with `source/notify.rs` and `source/outbox.rs` for the two modes.
//! - `mapping`, `template`: [`Mapping`], [`DataShape`] and [`Template`]: change to draft.
//! - `change`: a change as the triggers describe it, read from its JSON payload.
//! - `outbox`: [`Outbox`], the outbox table and how it is read.
//! - `install`: [`InstallOptions`], [`install_sql`], [`uninstall_sql`].
//! - `ident`: [`Ident`] and [`TableName`], the only names that reach SQL text.
//! - `status`: [`SourceStatus`] and [`SourceMonitor`].
//! - `error`: [`Error`] and [`MapError`].
//!
//! # Example
//!
//! ```
//! use herald_bus::{Audience, Bus};
//! use herald_postgres::{
//!     Ident, InstallOptions, Mapping, Mode, PgSource, TableName, install_sql,
//! };
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // SQL for `herald pg install --table shop.orders --mode notify --print`.
//! let orders = TableName::parse("shop.orders")?;
//! let sql = install_sql(&InstallOptions::notify(orders.clone()));
//! assert!(sql.contains("pg_notify(TG_ARGV[0], msg)"));
//!
//! // Rows of `shop.orders` become `db.orders.<op>` events for the row's user only.
//! let mapping = Mapping::new("db.{table}.{op}")?
//!     .with_event("{op}")?
//!     .with_user_column("user_id")
//!     .with_tables([orders]);
//! let draft = mapping.to_draft(json!({
//!     "table": "orders", "op": "insert", "key": 7, "row": {"id": 7, "user_id": 42}
//! }))?;
//! assert_eq!(draft.topic().as_str(), "db.orders.insert");
//! assert!(matches!(draft.audience(), Audience::User(u) if u.as_str() == "42"));
//!
//! // The source runs in the background until its handle is dropped or stopped.
//! let bus = Bus::new();
//! let handle = PgSource::builder("postgres://postgres@127.0.0.1:5432/test")
//!     .name("orders")
//!     .mode(Mode::notify([Ident::new("herald")?]))
//!     .mapping(mapping)
//!     .spawn(&bus)?;
//! assert_eq!(handle.status().mode, "notify");
//! handle.stop().await;
//! # Ok(())
//! # }
//! ```

mod change;
mod error;
mod ident;
mod install;
mod mapping;
mod outbox;
mod source;
mod status;
mod template;

pub use error::{Error, MapError};
pub use ident::{Ident, MAX_IDENT_LEN, TableName};
pub use install::{InstallOptions, install, install_sql, uninstall, uninstall_sql};
pub use mapping::{DataShape, Mapping};
pub use outbox::Outbox;
pub use source::{Mode, PgSource, PgSourceBuilder, PgSourceHandle};
pub use status::{SourceMonitor, SourceStatus};
pub use template::Template;
/// The PostgreSQL client this crate uses, for [`install`] and [`connect`].
pub use tokio_postgres;

/// Connects to `url` without TLS and drives the connection in a background task until
/// the client is dropped: a client for [`install`] and [`uninstall`].
///
/// # Errors
///
/// [`Error::Url`] when the URL cannot be parsed; [`Error::Postgres`] when the server
/// cannot be reached or refuses the login.
///
/// # Panics
///
/// Outside a Tokio runtime.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, Error> {
    let config: tokio_postgres::Config = url.parse().map_err(Error::Url)?;
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "install connection ended");
        }
    });
    Ok(client)
}
