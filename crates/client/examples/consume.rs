//! A service consuming a topic: it prints every order event, resumes after
//! a restart from the id it saved, and refetches its state on a reset.
//!
//! ```text
//! make run                                   # a herald on 127.0.0.1:8080
//! cargo run -p herald-client --example consume -- http://127.0.0.1:8080 'orders.>'
//! curl -d '{"topic":"orders.created","event":"created","data":{"id":7}}' \
//!     http://127.0.0.1:8080/publish
//! ```
//!
//! Set `HERALD_TOKEN` in jwt mode. The last id seen is kept in
//! `consume.last-id`, so a restarted consumer misses nothing the server
//! still retains.

use std::{env, fs, process::ExitCode};

use futures_util::StreamExt;
use herald_client::{Client, Item};

const LAST_ID_FILE: &str = "consume.last-id";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let selectors: Vec<String> = args.collect();
    let selectors = if selectors.is_empty() {
        vec!["orders.>".to_owned()]
    } else {
        selectors
    };

    let mut builder = Client::builder(url);
    if let Ok(token) = env::var("HERALD_TOKEN") {
        builder = builder.token(token);
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(err) => {
            eprintln!("consume: {err}");
            return ExitCode::from(2);
        }
    };

    let mut items = client.subscribe(selectors);
    if let Ok(id) = fs::read_to_string(LAST_ID_FILE) {
        items = items.with_last_event_id(id.trim());
    }
    while let Some(item) = items.next().await {
        match item {
            Ok(Item::Connected { connection }) => eprintln!("connected as {connection}"),
            Ok(Item::Event(event)) => {
                println!("{} {} {}", event.id, event.event_type, event.data);
                // Saved after handling: at worst an event is handled twice
                // after a crash, never skipped.
                if let Err(err) = fs::write(LAST_ID_FILE, &event.id) {
                    eprintln!("consume: cannot save the last id: {err}");
                }
            }
            Ok(Item::Reset {
                reason,
                missed_since,
            }) => {
                eprintln!("missed events after {missed_since} ({reason}): refetching state");
                // A real service reloads its state from the source of truth here.
            }
            Ok(Item::Disconnected { reason, retry_in }) => {
                eprintln!("disconnected ({reason}); retrying in {retry_in:?}");
            }
            Ok(_) => {}
            Err(err) => {
                eprintln!("consume: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
