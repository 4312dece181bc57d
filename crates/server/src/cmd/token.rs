//! `herald token`: mints a development token (HS256) from the configured secret.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Args;

use crate::{
    auth::{TokenRequest, mint},
    config::{self, Config},
};

#[derive(Debug, Args)]
pub(super) struct TokenArgs {
    /// The user (`sub` claim).
    #[arg(long)]
    sub: String,
    /// Selectors the holder may subscribe to.
    #[arg(long, num_args = 1..)]
    subscribe: Vec<String>,
    /// Selectors the holder may publish to.
    #[arg(long, num_args = 1..)]
    publish: Vec<String>,
    /// Allow `/metrics` and `/stats` when they are admin-only.
    #[arg(long)]
    admin: bool,
    /// Lifetime: seconds, or a number with `s`, `m`, `h` or `d` (`90s`, `15m`, `1h`).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    /// Configuration file holding `auth.hs256_secret` (`HERALD_AUTH__HS256_SECRET` works too).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not like 90s, 15m, 1h or 2d"))?;
    let unit_secs: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long a lifetime"))
}

pub(super) fn run(args: TokenArgs) -> ExitCode {
    match token(args) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => super::failed(&e),
    }
}

fn token(args: TokenArgs) -> anyhow::Result<String> {
    let config = Config::load(args.config.as_deref(), config::herald_env())?;
    let secret = config.auth.hs256_secret.ok_or_else(|| {
        anyhow::anyhow!("no auth.hs256_secret in the configuration or HERALD_AUTH__HS256_SECRET")
    })?;
    let request = TokenRequest {
        sub: args.sub,
        subscribe: args.subscribe,
        publish: args.publish,
        admin: args.admin,
        ttl: args.ttl,
    };
    mint(&secret, &request)
}
