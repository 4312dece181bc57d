//! The command line: `herald serve | publish | subscribe | token | pg`, one module per
//! command, each owning its flags and what it does.
//!
//! Exit codes, for scripts: 0 done; 1 refused (by the server, or PostgreSQL for `pg`);
//! 2 a usage error; 3 the server or database could not be reached.

mod client;
mod pg;
mod serve;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code: the server (or PostgreSQL) refused the request.
const REFUSED: u8 = 1;
/// Exit code: flags that do not fit together.
const USAGE: u8 = 2;
/// Exit code: the server (or PostgreSQL) could not be reached.
const UNREACHABLE: u8 = 3;

/// Herald: an event bus with Server-Sent Events fan-out.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (in-memory log by default; no external service needed).
    Serve(serve::ServeArgs),
    /// Publish one event; prints its id.
    Publish(client::PublishArgs),
    /// Subscribe and print events; reconnects and resumes by itself.
    Subscribe(client::SubscribeArgs),
    /// Mint a development token (HS256) from the configured secret.
    Token(token::TokenArgs),
    /// Install or remove what makes a PostgreSQL table's changes reach a source.
    Pg(pg::PgArgs),
}

impl Cli {
    /// Runs the command; the exit code says how it went.
    pub(crate) async fn run(self) -> ExitCode {
        match self.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Publish(args) => client::publish(args).await,
            Command::Subscribe(args) => client::subscribe(args).await,
            Command::Token(args) => token::run(args),
            Command::Pg(args) => pg::run(args).await,
        }
    }
}

/// Prints `error` the way every command reports a failure it cannot classify further.
fn failed(error: &anyhow::Error) -> ExitCode {
    eprintln!("herald: {error:#}");
    ExitCode::FAILURE
}
