//! herald-testkit: test support shared by Herald's crates.
//!
//! # Layout
//!
//! - [`conformance`]: the suite every [`Log`](herald_bus::Log) implementation runs, one
//!   test per rule through [`conformance_tests!`].
//! - [`server`]: runs the real `herald` binary ([`Server`](server::Server)) on
//!   `127.0.0.1:0` and waits until it is healthy.
//! - [`sse`]: [`SseClient`](sse::SseClient), an SSE reader over raw TCP that
//!   parses with [`herald_sse::Parser`] and keeps the exact wire bytes.
//! - [`http`]: one-shot HTTP/1.1 requests over raw TCP ([`get`](http::get),
//!   [`post_json`](http::post_json), [`send_raw`](http::send_raw)) for
//!   well-formed and deliberately malformed input.
//! - [`wire`]: the response-head and chunked-body decoding those clients share.
//! - [`services`]: skip-or-fail for tests that need PostgreSQL or Redis.
//! - [`proxy`]: a TCP proxy whose connections a test can cut, like a network drop.
//! - [`redis`]: a private `redis-server` a test may kill, restart or cut off.
//! - [`postgres`]: a private schema per test, dropped when the test ends.

pub mod conformance;
pub mod http;
pub mod postgres;
pub mod proxy;
pub mod redis;
pub mod server;
pub mod services;
pub mod sse;
pub mod wire;
