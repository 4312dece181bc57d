//! The client commands: `herald publish` and `herald subscribe`.
//!
//! Exit codes: 0 done; 1 the server refused the request (4xx) or answered something
//! unexpected; 3 the server could not be reached (publish only: subscribe keeps retrying).

use std::{io::Write as _, process::ExitCode, time::Duration};

use futures_util::StreamExt;
use herald_sse::{Item, Parser};
use serde_json::{Value, json};

use clap::Args;

use super::{REFUSED, UNREACHABLE};

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

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("a plain HTTP client builds")
}

fn url(server: &ServerArgs, path: &str) -> String {
    format!("{}{path}", server.url.trim_end_matches('/'))
}

fn authorize(request: reqwest::RequestBuilder, server: &ServerArgs) -> reqwest::RequestBuilder {
    match &server.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

pub(super) async fn publish(args: PublishArgs) -> ExitCode {
    let data =
        serde_json::from_str::<Value>(&args.data).unwrap_or(Value::String(args.data.clone()));
    let mut body = json!({ "topic": args.topic, "data": data });
    for (key, value) in [
        ("event", args.event.map(Value::from)),
        ("user", args.user.map(Value::from)),
    ] {
        if let Some(v) = value {
            body[key] = v;
        }
    }
    if let Some(c) = args.connection {
        body["connection"] = Value::from(c);
    }
    if let Some(ms) = args.retry {
        body["retry"] = Value::from(ms);
    }
    let request = authorize(
        client().post(url(&args.server, "/publish")).json(&body),
        &args.server,
    );
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herald: cannot reach {}: {e}", args.server.url);
            return ExitCode::from(UNREACHABLE);
        }
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        eprintln!("herald: {status}: {}", error_message(&text));
        return ExitCode::from(REFUSED);
    }
    match serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
    {
        Some(id) => {
            println!("{id}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("herald: unexpected answer: {text}");
            ExitCode::from(REFUSED)
        }
    }
}

/// The `message` of a JSON error body, or the body itself.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

/// Why one connection of `subscribe` ended.
enum Ended {
    /// Printed `--count` events.
    Done,
    /// The server refused; retrying would not help.
    Refused,
    /// The stream or connection ended; reconnect.
    Dropped,
}

pub(super) async fn subscribe(args: SubscribeArgs) -> ExitCode {
    let client = client();
    let mut parser = Parser::new();
    let mut last_id = args.last_event_id.clone().unwrap_or_default();
    let mut printed = 0u64;
    let mut retry = Duration::from_secs(2);
    let mut failures = 0u32;
    loop {
        match connect(
            &client,
            &args,
            &mut parser,
            &last_id,
            &mut printed,
            &mut retry,
        )
        .await
        {
            Ended::Done => return ExitCode::SUCCESS,
            Ended::Refused => return ExitCode::from(REFUSED),
            Ended::Dropped => {}
        }
        // Resume from the last event seen, as a browser's EventSource does.
        if !parser.last_event_id().is_empty() {
            last_id = parser.last_event_id().to_owned();
            failures = 0;
        } else {
            failures = failures.saturating_add(1);
        }
        parser.finish();
        let wait = retry
            .saturating_mul(1 << failures.min(4))
            .min(Duration::from_secs(30));
        eprintln!(
            "herald: disconnected; reconnecting in {} ms",
            wait.as_millis()
        );
        tokio::time::sleep(wait).await;
    }
}

async fn connect(
    client: &reqwest::Client,
    args: &SubscribeArgs,
    parser: &mut Parser,
    last_id: &str,
    printed: &mut u64,
    retry: &mut Duration,
) -> Ended {
    let mut query: Vec<(&str, &str)> = args
        .selectors
        .iter()
        .map(|s| ("topic", s.as_str()))
        .collect();
    if let Some(user) = &args.user {
        query.push(("user", user));
    }
    let mut request = client
        .get(url(&args.server, "/events"))
        .query(&query)
        .header("accept", "text/event-stream");
    if !last_id.is_empty() {
        request = request.header("last-event-id", last_id);
    }
    let response = match authorize(request, &args.server).send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herald: cannot reach {}: {e}", args.server.url);
            return Ended::Dropped;
        }
    };
    let status = response.status();
    if status.is_client_error() {
        let body = response.text().await.unwrap_or_default();
        eprintln!("herald: {status}: {}", error_message(&body));
        return Ended::Refused;
    }
    if !status.is_success() {
        eprintln!("herald: {status}; will retry");
        return Ended::Dropped;
    }
    let mut body = response.bytes_stream();
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            return Ended::Dropped;
        };
        let items = match parser.feed(&chunk) {
            Ok(items) => items,
            Err(e) => {
                eprintln!("herald: bad stream: {e}");
                return Ended::Dropped;
            }
        };
        for item in items {
            match item {
                Item::Retry(ms) => *retry = Duration::from_millis(ms),
                Item::Comment(_) => {}
                Item::Event(event) if event.event_type == herald_sse::CONNECTED => {
                    eprintln!("herald: connected: {}", event.data);
                }
                Item::Event(event) => {
                    let line = if args.json {
                        json!({"id": event.last_event_id, "event": event.event_type, "data": event.data}).to_string()
                    } else {
                        format!(
                            "{} {} {}",
                            event.last_event_id, event.event_type, event.data
                        )
                    };
                    if writeln!(stdout, "{line}")
                        .and_then(|()| stdout.flush())
                        .is_err()
                    {
                        // stdout closed (e.g. piped into `head`): nothing left to do.
                        return Ended::Done;
                    }
                    *printed += 1;
                    if args.count.is_some_and(|n| *printed >= n) {
                        return Ended::Done;
                    }
                }
            }
        }
    }
    Ended::Dropped
}
