//! `herald pg install` and `herald pg uninstall`: the SQL that makes a table's changes
//! reach a PostgreSQL source (from `herald-postgres`), printed or run.
//!
//! Exit codes, as for the other commands: 0 done; 1 PostgreSQL refused the SQL; 2 a
//! usage error (flags that do not fit together); 3 PostgreSQL could not be reached.

use std::{process::ExitCode, time::Duration};

use clap::{Args, Subcommand};
use herald_postgres::{Error, InstallOptions};

use super::{REFUSED, UNREACHABLE, USAGE};

#[derive(Debug, Args)]
pub(super) struct PgArgs {
    #[command(subcommand)]
    command: PgCommand,
}

#[derive(Debug, Subcommand)]
pub(super) enum PgCommand {
    /// Install, idempotently, the trigger function and trigger and, in outbox mode, the
    /// outbox table.
    Install(PgTarget),
    /// Remove what `install` created; an outbox keeps its rows unless `--purge`.
    Uninstall(PgUninstallArgs),
}

/// How a table's changes reach Herald.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum PgMode {
    /// A trigger sends each change with `NOTIFY`.
    Notify,
    /// A trigger writes each change to an outbox table, in the same transaction.
    Outbox,
}

#[derive(Debug, Args)]
pub(super) struct PgTarget {
    /// Database URL, `postgres://user[:password]@host:port/database`; not needed with
    /// `--print`.
    #[arg(
        long,
        env = "HERALD_PG_URL",
        hide_env_values = true,
        required_unless_present = "print"
    )]
    url: Option<String>,
    /// The table whose changes to send (`table` or `schema.table`); in outbox mode
    /// without it, only the outbox is installed, for an application that writes it.
    #[arg(long, value_parser = parse_table)]
    table: Option<herald_postgres::TableName>,
    #[arg(long, value_enum, default_value = "notify")]
    mode: PgMode,
    /// The channel: notified in notify mode (default `herald`), the outbox's wake-up
    /// channel in outbox mode (default the outbox table's name).
    #[arg(long, value_parser = parse_ident)]
    channel: Option<herald_postgres::Ident>,
    /// Outbox mode: the outbox table (default `public.herald_outbox`).
    #[arg(long, value_parser = parse_outbox)]
    outbox: Option<herald_postgres::Outbox>,
    /// Key columns, comma-separated (default `id`): the change's `key`. Add the user
    /// column to keep user-scoped events working for rows too large for `NOTIFY`.
    #[arg(long, value_delimiter = ',', value_parser = parse_ident)]
    key: Vec<herald_postgres::Ident>,
    /// Print the SQL instead of running it (for review or a migration file).
    #[arg(long)]
    print: bool,
}

#[derive(Debug, Args)]
pub(super) struct PgUninstallArgs {
    #[command(flatten)]
    target: PgTarget,
    /// Outbox mode: also drop the outbox and its positions, with rows not yet published.
    #[arg(long)]
    purge: bool,
}

fn parse_table(text: &str) -> Result<herald_postgres::TableName, String> {
    herald_postgres::TableName::parse(text).map_err(|e| e.to_string())
}

fn parse_ident(text: &str) -> Result<herald_postgres::Ident, String> {
    herald_postgres::Ident::new(text).map_err(|e| e.to_string())
}

fn parse_outbox(text: &str) -> Result<herald_postgres::Outbox, String> {
    herald_postgres::TableName::parse(text)
        .and_then(herald_postgres::Outbox::new)
        .map_err(|e| e.to_string())
}

/// How long connecting may take: an unreachable host must not hang a deploy script.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn run(args: PgArgs) -> ExitCode {
    let (target, purge, install) = match args.command {
        PgCommand::Install(target) => (target, false, true),
        PgCommand::Uninstall(args) => (args.target, args.purge, false),
    };
    let options = match options(&target, purge) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("herald: {message}");
            return ExitCode::from(USAGE);
        }
    };
    let sql = if install {
        herald_postgres::install_sql(&options)
    } else {
        herald_postgres::uninstall_sql(&options)
    };
    if target.print {
        print!("{sql}");
        return ExitCode::SUCCESS;
    }
    let Some(url) = &target.url else {
        // clap requires --url unless --print.
        eprintln!("herald: --url (or HERALD_PG_URL) is required to run the SQL");
        return ExitCode::from(USAGE);
    };
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, herald_postgres::connect(url));
    let client = match connect.await {
        Err(_) => {
            eprintln!(
                "herald: cannot connect to PostgreSQL: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            );
            return ExitCode::from(UNREACHABLE);
        }
        Ok(Ok(client)) => client,
        Ok(Err(err @ Error::Url(_))) => {
            eprintln!("herald: {}", describe(&err));
            return ExitCode::from(USAGE);
        }
        Ok(Err(err)) => {
            eprintln!("herald: cannot connect to PostgreSQL: {}", describe(&err));
            return ExitCode::from(UNREACHABLE);
        }
    };
    let (result, done) = if install {
        let result = herald_postgres::install(&client, &options).await;
        (result, "installed")
    } else {
        let result = herald_postgres::uninstall(&client, &options).await;
        (result, "uninstalled")
    };
    match result {
        Ok(()) => {
            println!("{done}: {}", summary(&target, install, purge));
            ExitCode::SUCCESS
        }
        Err(err) => {
            let verb = if install { "install" } else { "uninstall" };
            eprintln!("herald: {verb} failed, nothing changed: {}", describe(&err));
            ExitCode::from(REFUSED)
        }
    }
}

/// The installer's options, or why the flags do not fit together.
fn options(target: &PgTarget, purge: bool) -> Result<InstallOptions, String> {
    let mut options = match (target.mode, &target.table) {
        (PgMode::Notify, None) => return Err("--mode notify needs --table".to_owned()),
        (PgMode::Notify, Some(table)) => {
            if target.outbox.is_some() || purge {
                return Err("--outbox and --purge are for --mode outbox".to_owned());
            }
            InstallOptions::notify(table.clone())
        }
        (PgMode::Outbox, table) => {
            let outbox = target.outbox.clone().unwrap_or_default();
            match table {
                Some(table) => InstallOptions::outbox(table.clone()).with_outbox(outbox),
                None if !target.key.is_empty() => {
                    return Err("--key needs --table: only a table's trigger has keys".to_owned());
                }
                None => InstallOptions::outbox_only(outbox),
            }
        }
    };
    // After the outbox: setting the outbox resets its channel.
    if let Some(channel) = &target.channel {
        options = options.with_channel(channel.clone());
    }
    if !target.key.is_empty() {
        options = options.with_key(target.key.iter().cloned());
    }
    Ok(options.with_purge(purge))
}

/// What was done, in one line.
fn summary(target: &PgTarget, install: bool, purge: bool) -> String {
    let outbox = target.outbox.clone().unwrap_or_default();
    let table = target.table.as_ref().map(ToString::to_string);
    let channel = |default: &str| {
        target
            .channel
            .as_ref()
            .map_or_else(|| default.to_owned(), ToString::to_string)
    };
    match (target.mode, install) {
        (PgMode::Notify, true) => format!(
            "notify trigger on {}, channel {}",
            table.unwrap_or_default(),
            channel(InstallOptions::DEFAULT_CHANNEL)
        ),
        (PgMode::Notify, false) => format!("notify trigger on {}", table.unwrap_or_default()),
        (PgMode::Outbox, true) => {
            let into = table.map_or_else(String::new, |t| format!("outbox trigger on {t}, into "));
            format!(
                "{into}outbox {} (wake-up channel {})",
                outbox.table(),
                channel(outbox.channel().as_str())
            )
        }
        (PgMode::Outbox, false) => {
            let trigger = table.map_or_else(String::new, |t| format!("outbox trigger on {t}; "));
            let fate = if purge {
                "dropped"
            } else {
                "kept (--purge drops it)"
            };
            format!("{trigger}outbox {} {fate}", outbox.table())
        }
    }
}

/// `err` on one line: PostgreSQL's own message when it refused, else the causes.
fn describe(err: &Error) -> String {
    let top: &(dyn std::error::Error + 'static) = match err {
        Error::Postgres(pg) => match pg.as_db_error() {
            Some(db) => {
                let mut text = format!("{}: {}", db.severity(), db.message());
                if let Some(hint) = db.hint() {
                    text.push_str(&format!(" (hint: {hint})"));
                }
                return text;
            }
            // "postgres request failed" says nothing the cause does not.
            None => pg,
        },
        other => other,
    };
    let mut text = top.to_string();
    let mut source = top.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// `herald pg` alone, as the command line parses it.
    #[derive(Debug, clap::Parser)]
    struct Pg {
        #[command(flatten)]
        args: PgArgs,
    }

    fn target(args: &[&str]) -> (PgTarget, bool) {
        let pg = Pg::try_parse_from(["pg"].iter().chain(args)).expect("parses");
        match pg.args.command {
            PgCommand::Install(target) => (target, false),
            PgCommand::Uninstall(args) => (args.target, args.purge),
        }
    }

    fn sql(args: &[&str]) -> Result<String, String> {
        let (target, purge) = target(args);
        let options = options(&target, purge)?;
        Ok(herald_postgres::install_sql(&options))
    }

    #[test]
    fn flags_become_installer_options() {
        let notify = sql(&[
            "install",
            "--print",
            "--table",
            "s.t",
            "--channel",
            "c",
            "--key",
            "id,user_id",
        ])
        .unwrap();
        assert!(
            notify.contains(r#"EXECUTE FUNCTION "s"."herald_notify"('c', 'id', 'user_id')"#),
            "{notify}"
        );
        let outbox = sql(&[
            "install",
            "--print",
            "--mode",
            "outbox",
            "--table",
            "t",
            "--outbox",
            "s.box",
            "--channel",
            "wake",
        ])
        .unwrap();
        assert!(
            outbox.contains(r#"CREATE TABLE IF NOT EXISTS "s"."box" ("#),
            "{outbox}"
        );
        assert!(
            outbox.contains(r#""s"."herald_outbox_wake"('wake')"#),
            "{outbox}"
        );
        let only = sql(&["install", "--print", "--mode", "outbox"]).unwrap();
        assert!(!only.contains("herald_outbox_capture"), "{only}");
    }

    #[test]
    fn flags_that_do_not_fit_are_usage_errors() {
        assert_eq!(
            sql(&["install", "--print"]).unwrap_err(),
            "--mode notify needs --table"
        );
        assert!(sql(&["install", "--print", "--table", "t", "--outbox", "o"]).is_err());
        assert!(sql(&["uninstall", "--print", "--table", "t", "--purge"]).is_err());
        assert!(sql(&["install", "--print", "--mode", "outbox", "--key", "id"]).is_err());
        for bad in [
            &["pg", "install", "--print", "--table", "a;b"][..],
            &[
                "pg", "install", "--print", "--table", "t", "--mode", "listen",
            ],
        ] {
            assert!(Pg::try_parse_from(bad.iter().copied()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn summaries_say_what_was_done() {
        let (t, purge) = target(&[
            "uninstall",
            "--print",
            "--mode",
            "outbox",
            "--table",
            "t",
            "--purge",
        ]);
        assert_eq!(
            summary(&t, false, purge),
            "outbox trigger on t; outbox public.herald_outbox dropped"
        );
        let (t, _) = target(&["install", "--print", "--mode", "outbox", "--channel", "w"]);
        assert_eq!(
            summary(&t, true, false),
            "outbox public.herald_outbox (wake-up channel w)"
        );
        let (t, _) = target(&["install", "--print", "--table", "s.t"]);
        assert_eq!(
            summary(&t, true, false),
            "notify trigger on s.t, channel herald"
        );
    }
}
