//! The limits a caller is held to: open connections in total and per user
//! ([`connections`]), and the publish rate per token or address ([`rate`]).

mod connections;
mod rate;

pub(crate) use connections::{ConnectionLimits, ConnectionSlot};
pub(crate) use rate::RateLimiter;
