//! `herald serve`: loads the configuration and runs the server.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Args;

use crate::config::{self, Config};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on, overriding the configuration (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

pub(super) async fn run(args: ServeArgs) -> ExitCode {
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::failed(&e),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), config::herald_env())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    crate::serve::serve(config).await
}
