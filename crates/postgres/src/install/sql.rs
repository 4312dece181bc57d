//! The SQL text of Herald's trigger functions and the statements around them.
//!
//! Every function is generic: the channel or outbox and the key columns come as trigger
//! arguments, so one function serves every table of a schema and reinstalling is a plain
//! `CREATE OR REPLACE`. Only validated, quoted names are formatted into this text.

use crate::{
    Ident, TableName,
    ident::{literal, qualified},
};

/// Name of the row trigger that notifies.
pub(super) const NOTIFY_TRIGGER: &str = "herald_notify";
/// Name of the row trigger that copies changes into an outbox.
pub(super) const CAPTURE_TRIGGER: &str = "herald_outbox";
/// Name of the statement trigger on an outbox that wakes the source.
pub(super) const WAKE_TRIGGER: &str = "herald_wake";

/// Serialises concurrent installs: concurrent `CREATE OR REPLACE FUNCTION` of one
/// function fails with "tuple concurrently updated".
pub(super) const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('herald install'));\n";

/// A function of Herald's in the table's schema (or unqualified, for `search_path`).
pub(super) fn function(table: &TableName, name: &str) -> String {
    qualified(table.schema(), &Ident::new(name).expect("a valid name"))
}

/// The plpgsql lines that set `r` (the row as jsonb; the old row for a delete) and `k`
/// (the key: `TG_ARGV[1]`'s value alone, an object of `TG_ARGV[1..]`, or null).
const ROW_AND_KEY: &str = r#"  IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
  IF TG_NARGS < 2 THEN
    k := 'null'::jsonb;
  ELSIF TG_NARGS = 2 THEN
    k := r -> TG_ARGV[1];
  ELSE
    k := '{}'::jsonb;
    FOR i IN 1 .. TG_NARGS - 1 LOOP
      k := k || jsonb_build_object(TG_ARGV[i], r -> TG_ARGV[i]);
    END LOOP;
  END IF;
"#;

/// The notify trigger function: `pg_notify(TG_ARGV[0], change)`, falling back to the key
/// and `"truncated": true` when the change does not fit NOTIFY's 8,000 bytes, and to no
/// key when even that does not fit, so the business write never fails because of it.
pub(super) fn notify_function(name: &str) -> String {
    format!(
        r#"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql AS $herald$
DECLARE
  r jsonb;
  k jsonb;
  msg text;
BEGIN
{ROW_AND_KEY}  msg := jsonb_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME,
    'op', lower(TG_OP), 'key', k, 'row', r, 'at', clock_timestamp())::text;
  IF octet_length(msg) >= 8000 THEN
    msg := jsonb_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME,
      'op', lower(TG_OP), 'key', k, 'at', clock_timestamp(), 'truncated', true)::text;
  END IF;
  IF octet_length(msg) >= 8000 THEN
    msg := jsonb_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME,
      'op', lower(TG_OP), 'at', clock_timestamp(), 'truncated', true)::text;
  END IF;
  PERFORM pg_notify(TG_ARGV[0], msg);
  RETURN NULL;
END
$herald$;
"#
    )
}

/// The capture trigger function: inserts the change into the outbox named by
/// `TG_ARGV[0]` (cast to `regclass`, so only an existing table can be named).
pub(super) fn capture_function(name: &str) -> String {
    format!(
        r#"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql AS $herald$
DECLARE
  r jsonb;
  k jsonb;
BEGIN
{ROW_AND_KEY}  EXECUTE format('INSERT INTO %s (payload) VALUES ($1)', TG_ARGV[0]::regclass)
    USING jsonb_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME,
      'op', lower(TG_OP), 'key', k, 'row', r, 'at', clock_timestamp());
  RETURN NULL;
END
$herald$;
"#
    )
}

/// The wake function: an empty notification on `TG_ARGV[0]`, sent at commit. PostgreSQL
/// folds identical notifications of one transaction into one.
pub(super) fn wake_function(name: &str) -> String {
    format!(
        r#"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql AS $herald$
BEGIN
  PERFORM pg_notify(TG_ARGV[0], '');
  RETURN NULL;
END
$herald$;
"#
    )
}

/// `DROP TRIGGER IF EXISTS` then `CREATE TRIGGER`: idempotent on every version that has
/// `xid8` (13+), unlike `CREATE OR REPLACE TRIGGER` (14+).
pub(super) fn trigger(
    name: &str,
    on: &TableName,
    when: When,
    function: &str,
    args: &[String],
) -> String {
    let args: Vec<String> = args.iter().map(|a| literal(a)).collect();
    let events = match when {
        When::EachChange => "AFTER INSERT OR UPDATE OR DELETE ON {on}\n  FOR EACH ROW",
        When::InsertStatement => "AFTER INSERT ON {on}\n  FOR EACH STATEMENT",
    }
    .replace("{on}", &on.to_sql());
    format!(
        "DROP TRIGGER IF EXISTS {name} ON {on};\nCREATE TRIGGER {name} {events} \
         EXECUTE FUNCTION {function}({args});\n",
        on = on.to_sql(),
        args = args.join(", "),
    )
}

/// When a trigger fires.
#[derive(Debug, Clone, Copy)]
pub(super) enum When {
    /// After each row inserted, updated or deleted.
    EachChange,
    /// After each `INSERT` statement.
    InsertStatement,
}

/// Drops `function` unless a trigger still uses it (another table's).
pub(super) fn drop_function_if_unused(function: &str) -> String {
    let signature = literal(&format!("{function}()"));
    format!(
        r#"DO $herald$
BEGIN
  IF to_regprocedure({signature}) IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgfoid = to_regprocedure({signature})) THEN
    DROP FUNCTION {function}();
  END IF;
END
$herald$;
"#
    )
}

/// The outbox table, its pruning index, and its position table.
pub(super) fn outbox_tables(outbox: &crate::Outbox) -> String {
    format!(
        r#"CREATE TABLE IF NOT EXISTS {table} (
  id bigserial NOT NULL,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  topic text,
  event text,
  user_id text,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (txid, id)
);
CREATE INDEX IF NOT EXISTS {index} ON {table} (created_at);
CREATE TABLE IF NOT EXISTS {position} (
  source text PRIMARY KEY,
  txid xid8 NOT NULL,
  id bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
"#,
        table = outbox.table().to_sql(),
        index = outbox.created_at_index().to_sql(),
        position = outbox.position_table().to_sql(),
    )
}
