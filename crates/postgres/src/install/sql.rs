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
/// Name of the deferred row trigger on an outbox that records each writing transaction
/// in the commits table at its commit.
pub(super) const COMMIT_TRIGGER: &str = "herald_commit";

/// The first key of an outbox's commit lock, `pg_advisory_xact_lock(COMMIT_LOCK_CLASS,
/// <outbox oid>)`: "hera" in ASCII, so the lock is recognisable in `pg_locks`. The
/// two-key form never collides with one-key (`bigint`) advisory locks.
pub(super) const COMMIT_LOCK_CLASS: i32 = 0x6865_7261;

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

/// The commit function, run by a deferred trigger for each outbox row at its
/// transaction's commit. The first call of a transaction takes the outbox's commit lock
/// and inserts the transaction into the commits table named by `TG_ARGV[0]`, which draws
/// its `seq`; a transaction-local setting, keyed by the outbox's oid, makes the other
/// rows' calls cheap.
///
/// Why this gives commit order: the lock is held until the transaction has committed and
/// become visible, so `seq`s are drawn in commit order, and a reader that sees `seq` M
/// sees every smaller `seq` that will ever commit. The setting and the insert are both
/// undone by a rollback to a savepoint, where PostgreSQL also fires the trigger again.
/// The conflict target is `txid` alone: a clash on `seq` (a sequence set back by hand)
/// must fail the commit, not silently leave the transaction's rows unpublished.
pub(super) fn commit_function(name: &str) -> String {
    format!(
        r#"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql AS $herald$
DECLARE
  done text;
  tx xid8;
BEGIN
  done := 'herald.commit_' || TG_RELID::text;
  tx := pg_current_xact_id();
  IF current_setting(done, true) IS DISTINCT FROM tx::text THEN
    PERFORM pg_advisory_xact_lock({COMMIT_LOCK_CLASS}, TG_RELID::int4);
    EXECUTE format('INSERT INTO %s (txid) VALUES ($1) ON CONFLICT (txid) DO NOTHING',
      TG_ARGV[0]::regclass) USING tx;
    PERFORM set_config(done, tx::text, true);
  END IF;
  RETURN NULL;
END
$herald$;
"#
    )
}

/// `DROP TRIGGER IF EXISTS` then `CREATE [CONSTRAINT] TRIGGER`: idempotent on every
/// version that has `xid8` (13+), unlike `CREATE OR REPLACE TRIGGER` (14+, and never
/// for constraint triggers).
pub(super) fn trigger(
    name: &str,
    on: &TableName,
    when: When,
    function: &str,
    args: &[String],
) -> String {
    let args: Vec<String> = args.iter().map(|a| literal(a)).collect();
    let (kind, events) = match when {
        When::EachChange => (
            "TRIGGER",
            "AFTER INSERT OR UPDATE OR DELETE ON {on}\n  FOR EACH ROW",
        ),
        When::InsertStatement => ("TRIGGER", "AFTER INSERT ON {on}\n  FOR EACH STATEMENT"),
        When::InsertAtCommit => (
            "CONSTRAINT TRIGGER",
            "AFTER INSERT ON {on}\n  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW",
        ),
    };
    let events = events.replace("{on}", &on.to_sql());
    format!(
        "DROP TRIGGER IF EXISTS {name} ON {on};\nCREATE {kind} {name} {events} \
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
    /// For each row inserted, at the end of the transaction (deferred).
    InsertAtCommit,
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

/// The outbox table, its pruning index, its position table, and its commits table with
/// the sequence that numbers commits (`CACHE 1`: with a cache, values would not be drawn
/// in order across sessions).
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
  seq bigint NOT NULL,
  id bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE IF NOT EXISTS {sequence} AS bigint CACHE 1;
CREATE TABLE IF NOT EXISTS {commits} (
  txid xid8 PRIMARY KEY,
  seq bigint NOT NULL UNIQUE DEFAULT nextval({sequence_name}::regclass)
);
ALTER SEQUENCE {sequence} OWNED BY {commits}.seq;
"#,
        table = outbox.table().to_sql(),
        index = outbox.created_at_index().to_sql(),
        position = outbox.position_table().to_sql(),
        sequence = outbox.commit_sequence().to_sql(),
        sequence_name = literal(&outbox.commit_sequence().to_sql()),
        commits = outbox.commits_table().to_sql(),
    )
}
