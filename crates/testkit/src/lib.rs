//! herald-testkit: test support shared by Herald's crates.
//!
//! # Layout
//!
//! - [`conformance`]: the suite every [`Log`](herald_bus::Log) implementation runs, one
//!   test per rule through [`conformance_tests!`].
//! - [`server`]: runs the real `herald` binary ([`Server`](server::Server)) on
//!   `127.0.0.1:0` and waits until it is healthy.
//! - [`sse`]: [`SseClient`](sse::SseClient), an SSE reader (reqwest, then
//!   [`herald_sse::Parser`]) that keeps the exact body bytes.
//! - [`http`]: one-shot requests: well-formed ones through reqwest
//!   ([`get`](http::get), [`post_json`](http::post_json),
//!   [`request`](http::request)), and [`send_raw`](http::send_raw), bytes
//!   written as given with the answer read by hyper.
//! - [`services`]: skip-or-fail for tests that need PostgreSQL or Redis.
//! - [`canned`]: the server side of a client's test: accept, read the
//!   request head, answer canned bytes.
//! - [`proxy`]: a TCP proxy whose connections a test can cut, like a network drop.
//! - [`redis`]: a private `redis-server` a test may kill, restart or cut off.
//! - [`postgres`]: a private schema per test, dropped when the test ends.

pub mod canned;
pub mod conformance;
pub mod http;
pub mod postgres;
pub mod proxy;
pub mod redis;
pub mod server;
pub mod services;
pub mod sse;
