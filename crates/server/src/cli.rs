//! Command-line interface: `herald serve | publish | subscribe | token | pg`.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

/// Herald: an event bus with Server-Sent Events fan-out.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server (in-memory log by default; no external service needed).
    Serve(ServeArgs),
    /// Publish one event; prints its id.
    Publish(PublishArgs),
    /// Subscribe and print events; reconnects and resumes by itself.
    Subscribe(SubscribeArgs),
    /// Mint a development token (HS256) from the configured secret.
    Token(TokenArgs),
    /// Install or remove what makes a PostgreSQL table's changes reach a source.
    Pg(PgArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PgArgs {
    #[command(subcommand)]
    pub(crate) command: PgCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PgCommand {
    /// Install, idempotently, the trigger function and trigger and, in outbox mode, the
    /// outbox table.
    Install(PgTarget),
    /// Remove what `install` created; an outbox keeps its rows unless `--purge`.
    Uninstall(PgUninstallArgs),
}

/// How a table's changes reach Herald.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PgMode {
    /// A trigger sends each change with `NOTIFY`.
    Notify,
    /// A trigger writes each change to an outbox table, in the same transaction.
    Outbox,
}

#[derive(Debug, Args)]
pub(crate) struct PgTarget {
    /// Database URL, `postgres://user[:password]@host:port/database`; not needed with
    /// `--print`.
    #[arg(
        long,
        env = "HERALD_PG_URL",
        hide_env_values = true,
        required_unless_present = "print"
    )]
    pub(crate) url: Option<String>,
    /// The table whose changes to send (`table` or `schema.table`); in outbox mode
    /// without it, only the outbox is installed, for an application that writes it.
    #[arg(long, value_parser = parse_table)]
    pub(crate) table: Option<herald_postgres::TableName>,
    #[arg(long, value_enum, default_value = "notify")]
    pub(crate) mode: PgMode,
    /// The channel: notified in notify mode (default `herald`), the outbox's wake-up
    /// channel in outbox mode (default the outbox table's name).
    #[arg(long, value_parser = parse_ident)]
    pub(crate) channel: Option<herald_postgres::Ident>,
    /// Outbox mode: the outbox table (default `public.herald_outbox`).
    #[arg(long, value_parser = parse_outbox)]
    pub(crate) outbox: Option<herald_postgres::Outbox>,
    /// Key columns, comma-separated (default `id`): the change's `key`. Add the user
    /// column to keep user-scoped events working for rows too large for `NOTIFY`.
    #[arg(long, value_delimiter = ',', value_parser = parse_ident)]
    pub(crate) key: Vec<herald_postgres::Ident>,
    /// Print the SQL instead of running it (for review or a migration file).
    #[arg(long)]
    pub(crate) print: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PgUninstallArgs {
    #[command(flatten)]
    pub(crate) target: PgTarget,
    /// Outbox mode: also drop the outbox and its positions, with rows not yet published.
    #[arg(long)]
    pub(crate) purge: bool,
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

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The user (`sub` claim).
    #[arg(long)]
    pub(crate) sub: String,
    /// Selectors the holder may subscribe to.
    #[arg(long, num_args = 1..)]
    pub(crate) subscribe: Vec<String>,
    /// Selectors the holder may publish to.
    #[arg(long, num_args = 1..)]
    pub(crate) publish: Vec<String>,
    /// Allow `/metrics` and `/stats` when they are admin-only.
    #[arg(long)]
    pub(crate) admin: bool,
    /// Lifetime: seconds, or a number with `s`, `m`, `h` or `d` (`90s`, `15m`, `1h`).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub(crate) ttl: std::time::Duration,
    /// Configuration file holding `auth.hs256_secret` (`HERALD_AUTH__HS256_SECRET` works too).
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
}

fn parse_ttl(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not like 90s, 15m, 1h or 2d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on, overriding the configuration (port 0 picks a free port).
    #[arg(long)]
    pub(crate) listen: Option<SocketAddr>,
}

/// Where the server is and how to authenticate.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Base URL of the server.
    #[arg(long, env = "HERALD_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,
    /// Bearer token (jwt mode).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// Topic, e.g. `orders.created`.
    pub(crate) topic: String,
    /// Data: JSON if it parses as JSON, otherwise a plain string.
    pub(crate) data: String,
    /// Event type (SSE `event:`).
    #[arg(long)]
    pub(crate) event: Option<String>,
    /// Deliver only to this user's subscribers.
    #[arg(long, conflicts_with = "connection")]
    pub(crate) user: Option<String>,
    /// Deliver only to this connection.
    #[arg(long)]
    pub(crate) connection: Option<String>,
    /// Reconnection delay hint for clients, in milliseconds (SSE `retry:`).
    #[arg(long)]
    pub(crate) retry: Option<u64>,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SubscribeArgs {
    /// Selectors: topics, or patterns with `*` (one segment) and a final `>` (the rest).
    #[arg(required = true)]
    pub(crate) selectors: Vec<String>,
    /// Start after this event id (what a reconnecting browser sends).
    #[arg(long)]
    pub(crate) last_event_id: Option<String>,
    /// Subscribe as this user (auth mode `none` only; with jwt the token says who).
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Exit after this many events.
    #[arg(long)]
    pub(crate) count: Option<u64>,
    /// Print each event as a JSON line instead of `id event data`.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}
