//! `herald`: the Herald server and its command-line client. This file only wires: it
//! reads the command line, sets up logging and runs the command.
//!
//! # Layout
//!
//! - `cmd`: the commands and their flags (`serve`, `publish`, `subscribe`, `token`, `pg`).
//! - `serve`: the transport: listener, connections, graceful shutdown.
//! - `api`: the HTTP API: the route table and one module per endpoint family (events,
//!   publish, ops, console), all opened by one request filter.
//! - `app`: the parts of a running server (bus, auth, limits, metrics, sources).
//! - `auth`: who the caller is and what they may do (none or jwt mode), and `herald token`.
//! - `limits`: connections in total and per user, publish rate.
//! - `metrics`: Prometheus metrics.
//! - `sources`: the running PostgreSQL sources (ingress into the bus).
//! - `config`: defaults, TOML file, `HERALD_*` environment, flags.
//! - `error`: every error code ([`error::ErrorCode`]), the JSON error shape, and the one
//!   place errors become responses.
//! - `query`: query-string decoding.
//!
//! Dependencies point one way: `cmd` → `serve` → `api` → `app` → the policy modules
//! (`auth`, `limits`, `metrics`, `sources`) → `error`, `query`, `config`.

mod api;
mod app;
mod auth;
mod cmd;
mod config;
mod error;
mod limits;
mod metrics;
mod query;
mod serve;
mod sources;

use std::{io::IsTerminal as _, process::ExitCode};

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // PostgreSQL notices ("… does not exist, skipping") are not news.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    cli.run().await
}
