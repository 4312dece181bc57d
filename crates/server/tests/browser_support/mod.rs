//! Support for the browser tests: headless Chromium over WebDriver ([`Browser`]), a
//! static site for pages Herald does not serve ([`Site`]), and the probe page whose
//! EventSources record what they receive ([`Probe`]).

#![allow(
    dead_code,
    unreachable_pub,
    reason = "browser.rs uses part of this module, whose `pub` items are its interface to that file"
)]

mod site;
mod webdriver;

use std::{future::Future, time::Duration};

use serde::Deserialize;
use serde_json::{Value, json};

pub use site::Site;
pub use webdriver::Browser;

/// The longest one browser test may run, browser start included; a hang fails the test
/// and still cleans up (dropping the future drops the browser).
pub const TEST_LIMIT: Duration = Duration::from_secs(45);

/// How long any single thing a page should do may take.
pub const PAGE_WAIT: Duration = Duration::from_secs(10);

/// The probe page, served at `/probe.html` by [`probe_site`].
pub const PROBE_HTML: &str = include_str!("probe.html");

/// Runs a browser test body within [`TEST_LIMIT`].
///
/// # Panics
///
/// When the body takes longer.
pub async fn bounded(body: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, body)
        .await
        .unwrap_or_else(|_| panic!("browser test took longer than {TEST_LIMIT:?}"));
}

/// A site serving the probe page at `/probe.html`.
pub async fn probe_site() -> Site {
    Site::serve(vec![(
        "/probe.html",
        "text/html; charset=utf-8",
        PROBE_HTML.as_bytes().to_vec(),
    )])
    .await
}

/// `[cors]` allowing `origin`, for a Herald that pages on `origin` talk to.
pub fn cors_for(origin: &str) -> String {
    format!("[cors]\nallowed_origins = [\"{origin}\"]\n")
}

/// What one of the probe page's EventSources has seen so far.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamView {
    /// Events dispatched to `onmessage` or to a registered listener, in order.
    pub events: Vec<PageEvent>,
    /// `open` events: the first connection and every reconnection.
    pub opens: u32,
    /// The `readyState` after each `error` event (0 reconnecting, 2 closed).
    pub errors: Vec<u8>,
    /// The EventSource's `readyState` now.
    pub ready_state: u8,
    /// The connection id from `herald.connected`, once it came.
    pub connection: Option<String>,
}

/// One event as the page received it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PageEvent {
    /// `onmessage` or `listener`.
    pub via: String,
    /// The event type (`message` for unnamed events).
    #[serde(rename = "type")]
    pub kind: String,
    /// `lastEventId`.
    pub id: String,
    /// `data`.
    pub data: String,
}

/// The probe page in the current tab of a [`Browser`].
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a>(pub &'a Browser);

impl Probe<'_> {
    /// Opens stream `name` on `url`, with listeners for `types` besides `onmessage`.
    pub async fn open(&self, name: &str, url: &str, with_credentials: bool, types: &[&str]) {
        self.0
            .eval(
                "probe.open(arguments[0], arguments[1], arguments[2], arguments[3])",
                json!([name, url, with_credentials, types]),
            )
            .await;
    }

    /// What stream `name` has seen.
    pub async fn view(&self, name: &str) -> StreamView {
        let value = self
            .0
            .eval("return probe.view(arguments[0])", json!([name]))
            .await;
        serde_json::from_value(value).expect("the probe's view")
    }

    /// Waits for `herald.connected` on stream `name` and returns the connection id.
    ///
    /// # Panics
    ///
    /// When it does not come within [`PAGE_WAIT`].
    pub async fn connected(&self, name: &str) -> String {
        let id = self
            .0
            .wait_for(
                &format!("herald.connected on {name}"),
                "return probe.view(arguments[0]).connection",
                json!([name]),
                PAGE_WAIT,
            )
            .await;
        id.as_str().expect("a connection id").to_owned()
    }

    /// Waits until stream `name` holds at least `n` events and returns its view.
    ///
    /// # Panics
    ///
    /// When they do not arrive within `timeout`; the message shows what did.
    pub async fn wait_events(&self, name: &str, n: usize, timeout: Duration) -> StreamView {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let view = self.view(name).await;
            if view.events.len() >= n {
                return view;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stream {name}: {} of {n} events after {timeout:?}: {view:#?}",
                view.events.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until stream `name`'s EventSource is closed for good (`readyState` 2).
    pub async fn closed(&self, name: &str) -> StreamView {
        self.0
            .wait_for(
                &format!("{name} to close"),
                "return probe.view(arguments[0]).readyState === 2",
                json!([name]),
                PAGE_WAIT,
            )
            .await;
        self.view(name).await
    }
}

/// The events' data, in order.
pub fn data(events: &[PageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

/// The events' ids, in order.
pub fn ids(events: &[PageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

/// `value` as a string, for script results.
pub fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}
