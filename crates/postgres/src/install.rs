//! The trigger installer: idempotent SQL that makes a table's changes reach Herald, by
//! `NOTIFY` or through an outbox, and the SQL that removes it.

mod sql;

use sql::When;

use tokio_postgres::Client;

use crate::{Error, Ident, Outbox, TableName};

/// What to install: a notify trigger on a table, or an outbox (with or without a trigger
/// that copies a table's changes into it).
///
/// # Examples
///
/// ```
/// use herald_postgres::{Ident, InstallOptions, TableName, install_sql, uninstall_sql};
///
/// let options = InstallOptions::notify(TableName::parse("shop.orders")?)
///     .with_channel(Ident::new("orders_changes")?);
/// let sql = install_sql(&options);
/// assert!(sql.contains(r#"CREATE TRIGGER herald_notify AFTER INSERT OR UPDATE OR DELETE ON "shop"."orders""#));
/// assert!(sql.contains(r#"FOR EACH ROW EXECUTE FUNCTION "shop"."herald_notify"('orders_changes', 'id')"#));
/// assert!(uninstall_sql(&options).contains(r#"DROP TRIGGER IF EXISTS herald_notify ON "shop"."orders""#));
/// # Ok::<(), herald_postgres::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    target: Target,
    key: Vec<Ident>,
    purge: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Notify {
        table: TableName,
        channel: Ident,
    },
    Outbox {
        table: Option<TableName>,
        outbox: Outbox,
    },
}

impl InstallOptions {
    /// The default notify channel: `herald`.
    pub const DEFAULT_CHANNEL: &'static str = "herald";

    /// A row trigger on `table` that sends each change on the channel `herald`.
    pub fn notify(table: TableName) -> Self {
        Self::with_target(Target::Notify {
            table,
            channel: Ident::new(Self::DEFAULT_CHANNEL).expect("a valid name"),
        })
    }

    /// The outbox [`Outbox::default`] (`public.herald_outbox`), and a row trigger on
    /// `table` that copies each change into it, in the writing transaction.
    pub fn outbox(table: TableName) -> Self {
        Self::with_target(Target::Outbox {
            table: Some(table),
            outbox: Outbox::default(),
        })
    }

    /// Only the outbox, for applications that insert into it themselves.
    pub fn outbox_only(outbox: Outbox) -> Self {
        Self::with_target(Target::Outbox {
            table: None,
            outbox,
        })
    }

    fn with_target(target: Target) -> Self {
        Self {
            target,
            key: vec![Ident::new("id").expect("a valid name")],
            purge: false,
        }
    }

    /// Sets the channel: the one notified in notify mode, the outbox's wake-up channel in
    /// outbox mode.
    pub fn with_channel(mut self, channel: Ident) -> Self {
        match &mut self.target {
            Target::Notify { channel: c, .. } => *c = channel,
            Target::Outbox { outbox, .. } => *outbox = outbox.clone().with_channel(channel),
        }
        self
    }

    /// Sets the outbox (outbox mode; ignored in notify mode).
    pub fn with_outbox(mut self, outbox: Outbox) -> Self {
        if let Target::Outbox { outbox: o, .. } = &mut self.target {
            *o = outbox;
        }
        self
    }

    /// Sets the key columns (default `id`): one column's value becomes the change's
    /// `key`; several become an object of them. Put a user column here to keep
    /// user-scoped events working when a notification is truncated.
    pub fn with_key(mut self, columns: impl IntoIterator<Item = Ident>) -> Self {
        self.key = columns.into_iter().collect();
        self
    }

    /// Outbox mode: whether uninstalling also drops the outbox and its commits and
    /// position tables, with any rows not yet published (default: keep them).
    pub fn with_purge(mut self, purge: bool) -> Self {
        self.purge = purge;
        self
    }

    fn trigger_args(&self, first: String) -> Vec<String> {
        std::iter::once(first)
            .chain(self.key.iter().map(|k| k.as_str().to_owned()))
            .collect()
    }
}

/// SQL that installs what `options` describe, in one transaction. Running it again
/// changes nothing (`CREATE OR REPLACE FUNCTION`, `CREATE TABLE IF NOT EXISTS`,
/// `DROP TRIGGER IF EXISTS` before `CREATE TRIGGER`). Needs PostgreSQL 13 or newer.
///
/// Functions go in the schema of the table they serve (`herald_notify`,
/// `herald_outbox_capture`, `herald_outbox_wake`, `herald_outbox_commit`); triggers are
/// named `herald_notify`, `herald_outbox`, `herald_wake` and `herald_commit` (a deferred
/// constraint trigger on the outbox that numbers its writing transactions in commit
/// order, see [`Outbox::commits_table`]).
pub fn install_sql(options: &InstallOptions) -> String {
    let mut out = String::from("BEGIN;\n");
    out.push_str(sql::LOCK);
    match &options.target {
        Target::Notify { table, channel } => {
            let function = sql::function(table, "herald_notify");
            out.push_str(&sql::notify_function(&function));
            out.push_str(&sql::trigger(
                sql::NOTIFY_TRIGGER,
                table,
                When::EachChange,
                &function,
                &options.trigger_args(channel.as_str().to_owned()),
            ));
        }
        Target::Outbox { table, outbox } => {
            out.push_str(&sql::outbox_tables(outbox));
            let wake = sql::function(outbox.table(), "herald_outbox_wake");
            out.push_str(&sql::wake_function(&wake));
            out.push_str(&sql::trigger(
                sql::WAKE_TRIGGER,
                outbox.table(),
                When::InsertStatement,
                &wake,
                &[outbox.channel().as_str().to_owned()],
            ));
            let commit = sql::function(outbox.table(), "herald_outbox_commit");
            out.push_str(&sql::commit_function(&commit));
            out.push_str(&sql::trigger(
                sql::COMMIT_TRIGGER,
                outbox.table(),
                When::InsertAtCommit,
                &commit,
                &[outbox.commits_table().to_sql()],
            ));
            if let Some(table) = table {
                let capture = sql::function(table, "herald_outbox_capture");
                out.push_str(&sql::capture_function(&capture));
                out.push_str(&sql::trigger(
                    sql::CAPTURE_TRIGGER,
                    table,
                    When::EachChange,
                    &capture,
                    &options.trigger_args(outbox.table().to_sql()),
                ));
            }
        }
    }
    out.push_str("COMMIT;\n");
    out
}

/// SQL that removes what [`install_sql`] installed for `options`, in one transaction:
/// the trigger, and its function once no other table's trigger uses it. The outbox (with
/// its own triggers), its commits and its positions stay unless
/// [`InstallOptions::with_purge`] is set. Running it again, or on a database without the
/// objects, changes nothing.
pub fn uninstall_sql(options: &InstallOptions) -> String {
    let mut out = String::from("BEGIN;\n");
    out.push_str(sql::LOCK);
    match &options.target {
        Target::Notify { table, .. } => {
            out.push_str(&format!(
                "DROP TRIGGER IF EXISTS {} ON {};\n",
                sql::NOTIFY_TRIGGER,
                table.to_sql()
            ));
            out.push_str(&sql::drop_function_if_unused(&sql::function(
                table,
                "herald_notify",
            )));
        }
        Target::Outbox { table, outbox } => {
            if let Some(table) = table {
                out.push_str(&format!(
                    "DROP TRIGGER IF EXISTS {} ON {};\n",
                    sql::CAPTURE_TRIGGER,
                    table.to_sql()
                ));
                out.push_str(&sql::drop_function_if_unused(&sql::function(
                    table,
                    "herald_outbox_capture",
                )));
            }
            if options.purge {
                // The outbox's triggers go with it; the sequence with the commits table
                // (it is owned by `seq`), and by name in case it was left unowned.
                for table in [
                    outbox.table(),
                    &outbox.position_table(),
                    &outbox.commits_table(),
                ] {
                    out.push_str(&format!("DROP TABLE IF EXISTS {};\n", table.to_sql()));
                }
                out.push_str(&format!(
                    "DROP SEQUENCE IF EXISTS {};\n",
                    outbox.commit_sequence().to_sql()
                ));
                for function in ["herald_outbox_wake", "herald_outbox_commit"] {
                    out.push_str(&sql::drop_function_if_unused(&sql::function(
                        outbox.table(),
                        function,
                    )));
                }
            }
        }
    }
    out.push_str("COMMIT;\n");
    out
}

/// Runs [`install_sql`] on `client`.
///
/// # Errors
///
/// [`Error::Postgres`] when PostgreSQL refuses it (no such table, no privilege, a
/// version before 13); nothing is installed then.
pub async fn install(client: &Client, options: &InstallOptions) -> Result<(), Error> {
    run(client, &install_sql(options)).await
}

/// Runs [`uninstall_sql`] on `client`.
///
/// # Errors
///
/// [`Error::Postgres`] when PostgreSQL refuses it; nothing is removed then.
pub async fn uninstall(client: &Client, options: &InstallOptions) -> Result<(), Error> {
    run(client, &uninstall_sql(options)).await
}

async fn run(client: &Client, script: &str) -> Result<(), Error> {
    if let Err(err) = client.batch_execute(script).await {
        // A failed statement leaves the session inside the aborted transaction.
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(Error::Postgres(err));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> TableName {
        TableName::parse(name).unwrap()
    }

    #[test]
    fn notify_sql_is_idempotent_and_quoted() {
        let sql = install_sql(&InstallOptions::notify(table("orders")));
        assert!(sql.starts_with("BEGIN;\n") && sql.ends_with("COMMIT;\n"));
        assert!(sql.contains(r#"CREATE OR REPLACE FUNCTION "herald_notify"() RETURNS trigger"#));
        assert!(
            sql.contains("DROP TRIGGER IF EXISTS herald_notify ON \"orders\";\nCREATE TRIGGER")
        );
        assert!(sql.contains(r#"EXECUTE FUNCTION "herald_notify"('herald', 'id');"#));
        assert!(sql.contains("octet_length(msg) >= 8000"));
    }

    #[test]
    fn outbox_sql_creates_tables_and_the_three_triggers() {
        let outbox = Outbox::new(table("s.box")).unwrap();
        let options = InstallOptions::outbox(table("app.orders"))
            .with_outbox(outbox)
            .with_key([Ident::new("id").unwrap(), Ident::new("user_id").unwrap()]);
        let sql = install_sql(&options);
        assert!(sql.contains(r#"CREATE TABLE IF NOT EXISTS "s"."box" ("#));
        assert!(sql.contains("txid xid8 NOT NULL DEFAULT pg_current_xact_id()"));
        assert!(sql.contains(r#"CREATE TABLE IF NOT EXISTS "s"."box_position" ("#));
        assert!(sql.contains(r#"CREATE INDEX IF NOT EXISTS "box_created_at" ON "s"."box""#));
        assert!(sql.contains(
            "CREATE TRIGGER herald_wake AFTER INSERT ON \"s\".\"box\"\n  FOR EACH STATEMENT EXECUTE FUNCTION \"s\".\"herald_outbox_wake\"('box');"
        ));
        assert!(sql.contains(
            r#"EXECUTE FUNCTION "app"."herald_outbox_capture"('"s"."box"', 'id', 'user_id');"#
        ));
        assert!(
            sql.contains(
                r#"CREATE SEQUENCE IF NOT EXISTS "s"."box_commit_seq" AS bigint CACHE 1;"#
            )
        );
        assert!(sql.contains(r#"CREATE TABLE IF NOT EXISTS "s"."box_commits" ("#));
        assert!(sql.contains(r#"DEFAULT nextval('"s"."box_commit_seq"'::regclass)"#));
        assert!(sql.contains("  seq bigint NOT NULL,\n  id bigint NOT NULL,"));
        assert!(sql.contains(
            "DROP TRIGGER IF EXISTS herald_commit ON \"s\".\"box\";\nCREATE CONSTRAINT TRIGGER herald_commit AFTER INSERT ON \"s\".\"box\"\n  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION \"s\".\"herald_outbox_commit\"('\"s\".\"box_commits\"');"
        ));
        assert!(sql.contains("pg_advisory_xact_lock(1751478881, TG_RELID::int4)"));
        let only = install_sql(&InstallOptions::outbox_only(Outbox::default()));
        assert!(!only.contains("herald_outbox_capture"));
    }

    #[test]
    fn uninstall_keeps_the_outbox_unless_purged() {
        let options = InstallOptions::outbox(table("orders"));
        let keep = uninstall_sql(&options);
        assert!(keep.contains("DROP TRIGGER IF EXISTS herald_outbox ON \"orders\""));
        assert!(keep.contains(r#"to_regprocedure('"herald_outbox_capture"()')"#));
        assert!(!keep.contains("DROP TABLE"));
        let purge = uninstall_sql(&options.with_purge(true));
        assert!(purge.contains(r#"DROP TABLE IF EXISTS "public"."herald_outbox";"#));
        assert!(purge.contains(r#"DROP TABLE IF EXISTS "public"."herald_outbox_position";"#));
        assert!(purge.contains(r#"DROP TABLE IF EXISTS "public"."herald_outbox_commits";"#));
        assert!(purge.contains(r#"DROP SEQUENCE IF EXISTS "public"."herald_outbox_commit_seq";"#));
        assert!(purge.contains(r#"to_regprocedure('"public"."herald_outbox_commit"()')"#));
    }
}
