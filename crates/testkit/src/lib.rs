//! herald-testkit: test support shared by Herald's crates.
//!
//! # Layout
//!
//! - [`conformance`]: the suite every [`Log`](herald_bus::Log) implementation runs.

pub mod conformance;
