//! The client commands, `herald publish` and `herald subscribe`, on `herald-client`.
//!
//! Exit codes: 0 done; 1 the server refused the request (4xx) or answered something
//! unexpected; 2 a base URL that is not one; 3 the server could not be reached (publish
//! only: subscribe keeps retrying).

use std::{io::Write as _, process::ExitCode, time::Duration};

use clap::Args;
use futures_util::StreamExt as _;
use herald_client::{Client, Draft, Error, Item};
use serde_json::{Value, json};

use super::{REFUSED, UNREACHABLE, USAGE};

/// Where the server is and how to authenticate.
#[derive(Debug, Args)]
pub(super) struct ServerArgs {
    /// Base URL of the server.
    #[arg(long, env = "HERALD_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Bearer token (jwt mode).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct PublishArgs {
    /// Topic, e.g. `orders.created`.
    topic: String,
    /// Data: JSON if it parses as JSON, otherwise a plain string.
    data: String,
    /// Event type (SSE `event:`).
    #[arg(long)]
    event: Option<String>,
    /// Deliver only to this user's subscribers.
    #[arg(long, conflicts_with = "connection")]
    user: Option<String>,
    /// Deliver only to this connection.
    #[arg(long)]
    connection: Option<String>,
    /// Reconnection delay hint for clients, in milliseconds (SSE `retry:`).
    #[arg(long)]
    retry: Option<u64>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
pub(super) struct SubscribeArgs {
    /// Selectors: topics, or patterns with `*` (one segment) and a final `>` (the rest).
    #[arg(required = true)]
    selectors: Vec<String>,
    /// Start after this event id (what a reconnecting browser sends).
    #[arg(long)]
    last_event_id: Option<String>,
    /// Subscribe as this user (auth mode `none` only; with jwt the token says who).
    #[arg(long)]
    user: Option<String>,
    /// Exit after this many events.
    #[arg(long)]
    count: Option<u64>,
    /// Print each event as a JSON line instead of `id event data`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// The client for `server`, or the exit code of a URL that is not one.
fn client(server: &ServerArgs) -> Result<Client, ExitCode> {
    let mut builder = Client::builder(&server.url).connect_timeout(Duration::from_secs(5));
    if let Some(token) = &server.token {
        builder = builder.token(token);
    }
    builder.build().map_err(|e| {
        eprintln!("herald: {e}");
        ExitCode::from(USAGE)
    })
}

/// The exit code for a request that failed with `error`, printed (an unreachable
/// server's error names the URL).
fn failed(error: &Error) -> ExitCode {
    eprintln!("herald: {error}");
    if error.is_unreachable() {
        ExitCode::from(UNREACHABLE)
    } else {
        ExitCode::from(REFUSED)
    }
}

pub(super) async fn publish(args: PublishArgs) -> ExitCode {
    let client = match client(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let data = serde_json::from_str::<Value>(&args.data).unwrap_or(Value::String(args.data));
    let mut draft = Draft::new(args.topic, data);
    if let Some(event) = args.event {
        draft = draft.with_event(event);
    }
    if let Some(user) = args.user {
        draft = draft.with_user(user);
    }
    if let Some(connection) = args.connection {
        draft = draft.with_connection(connection);
    }
    if let Some(ms) = args.retry {
        draft = draft.with_retry(ms);
    }
    match client.publish(&draft).await {
        Ok(id) => {
            println!("{id}");
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e),
    }
}

pub(super) async fn subscribe(args: SubscribeArgs) -> ExitCode {
    let client = match client(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let mut subscription = client.subscribe(&args.selectors);
    if let Some(id) = &args.last_event_id {
        subscription = subscription.with_last_event_id(id);
    }
    if let Some(user) = &args.user {
        subscription = subscription.with_user(user);
    }
    let mut printed = 0u64;
    let mut stdout = std::io::stdout().lock();
    while let Some(item) = subscription.next().await {
        let line = match item {
            Err(e) => return failed(&e),
            Ok(Item::Connected { connection }) => {
                eprintln!("herald: connected: {}", json!({ "connection": connection }));
                continue;
            }
            Ok(Item::Disconnected { reason, retry_in }) => {
                eprintln!(
                    "herald: disconnected ({reason}); reconnecting in {} ms",
                    retry_in.as_millis()
                );
                continue;
            }
            Ok(Item::Event(event)) => line(args.json, &event.id, &event.event_type, &event.data),
            Ok(Item::Reset {
                reason,
                missed_since,
            }) => {
                let data = json!({ "reason": reason, "missed_since": missed_since });
                line(args.json, "", herald_bus::control::RESET, &data.to_string())
            }
            Ok(_) => continue,
        };
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // stdout closed (e.g. piped into `head`): nothing left to do.
            return ExitCode::SUCCESS;
        }
        printed += 1;
        if args.count.is_some_and(|n| printed >= n) {
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}

/// How `subscribe` prints one event: `id type data`, or a JSON line.
fn line(as_json: bool, id: &str, event_type: &str, data: &str) -> String {
    if as_json {
        json!({"id": id, "event": event_type, "data": data}).to_string()
    } else {
        format!("{id} {event_type} {data}")
    }
}
