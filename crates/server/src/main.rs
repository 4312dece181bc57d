//! `herald`: the Herald server and its command-line client.
//!
//! # Layout
//!
//! - `cli`: the commands and flags (clap).
//! - `config`: defaults, TOML file, `HERALD_*` environment, flags.
//! - `serve`: the HTTP server, routes, graceful shutdown.
//! - `app`: shared state: bus, metrics, connection accounting, shutdown flag.
//! - `events` (`GET /events`), `publish` (`POST /publish`), `ops` (`/healthz`,
//!   `/readyz`, `/metrics`, `/stats`): the HTTP API.
//! - `auth`: who the caller is and what they may do (none or jwt mode), and `herald token`.
//! - `rate`: publish rate limits.
//! - `error`: the JSON error shape and the one place errors become responses.
//! - `metrics`: Prometheus metrics.
//! - `query`: query-string decoding.
//! - `client`: `herald publish` and `herald subscribe`.
//! - `sources`: the running PostgreSQL sources (ingress into the bus); their settings
//!   are in `config/sources.rs`, their metrics in `metrics/sources.rs`.
//! - `pg`: `herald pg install` and `herald pg uninstall`.

mod app;
mod auth;
mod cli;
mod client;
mod config;
mod console;
mod error;
mod events;
mod metrics;
mod ops;
mod pg;
mod publish;
mod query;
mod rate;
mod serve;
mod sources;

use std::{io::IsTerminal as _, process::ExitCode};

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // PostgreSQL notices ("… does not exist, skipping") are not news.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Serve(args) => match serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("herald: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Publish(args) => client::publish(args).await,
        Command::Subscribe(args) => client::subscribe(args).await,
        Command::Pg(args) => pg::run(args.command).await,
        Command::Token(args) => match token(args) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("herald: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn token(args: cli::TokenArgs) -> anyhow::Result<String> {
    let config = config::Config::load(args.config.as_deref(), config::herald_env())?;
    let secret = config.auth.hs256_secret.ok_or_else(|| {
        anyhow::anyhow!("no auth.hs256_secret in the configuration or HERALD_AUTH__HS256_SECRET")
    })?;
    let request = auth::TokenRequest {
        sub: args.sub,
        subscribe: args.subscribe,
        publish: args.publish,
        admin: args.admin,
        ttl: args.ttl,
    };
    auth::mint(&secret, &request)
}

async fn serve(args: cli::ServeArgs) -> anyhow::Result<()> {
    let mut config = config::Config::load(args.config.as_deref(), config::herald_env())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    serve::serve(config).await
}
