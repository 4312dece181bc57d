//! Helpers shared by the end-to-end tests: the binary under test, servers running it,
//! metrics and event data.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file compiles this module into its own crate and uses part of it"
)]

use std::time::Duration;

use herald_testkit::server::{Server, ServerBuilder};

pub mod client;
pub mod pg;

/// The `herald` binary under test: the one cargo builds for this package's integration
/// tests, so it is never stale.
pub const HERALD: &str = env!("CARGO_BIN_EXE_herald");

/// A [`Server`] builder that runs [`HERALD`].
pub fn herald() -> ServerBuilder {
    Server::builder(HERALD)
}

/// Starts [`HERALD`] with default settings.
pub async fn start() -> Server {
    herald().spawn().await
}

/// How long any single expected thing may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// The value of an unlabelled metric in `/metrics`.
pub async fn metric(server: &Server, name: &str) -> f64 {
    read_metric(server.get("/metrics").await, name)
}

/// The value of an unlabelled metric, read with a bearer token (admin-only stats).
pub async fn metric_as(server: &Server, token: &str, name: &str) -> f64 {
    let auth = format!("Bearer {token}");
    read_metric(
        herald_testkit::http::get(server.addr(), "/metrics", &[("Authorization", &auth)]).await,
        name,
    )
}

fn read_metric(res: herald_testkit::http::Response, name: &str) -> f64 {
    res.assert_status(200);
    let text = res.text().into_owned();
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("metric {name} not found in\n{text}"))
}

/// Waits until `name` reads `value`, failing after 5 s.
pub async fn wait_metric(server: &Server, name: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = metric(server, name).await;
        if now == value {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} is {now}, expected {value}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Data of the events, in order.
pub fn data(events: &[herald_sse::Event]) -> Vec<String> {
    events.iter().map(|e| e.data.clone()).collect()
}
