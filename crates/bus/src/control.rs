//! Control events: the events Herald itself sends on a stream, beside what publishers
//! publish.
//!
//! This module owns their names, the reserved `herald.` prefix and the JSON bodies they
//! carry, so that every crate that sends one (the SSE stream, the PostgreSQL source) or
//! reads one (clients, load generators, tests) agrees on the exact bytes:
//!
//! - [`CONNECTED`], the first event of every stream, with data
//!   `{"connection":"<uuid>"}` ([`connected_data`]);
//! - [`RESET`], the notice that events may be missing, with data
//!   `{"reason":"…","missed_since":"<id>"}` ([`reset_data`], [`reset_draft`]).
//!
//! Every event type that starts with [`RESERVED_PREFIX`] belongs to Herald
//! ([`is_reserved`]), so a client can trust that such a frame came from the server.
//!
//! ```
//! use herald_bus::{ConnectionId, Reset, ResetReason, control};
//!
//! let reset = Reset { reason: ResetReason::Retention, missed_since: "ab-7".into() };
//! assert_eq!(control::reset_data(&reset), r#"{"reason":"retention","missed_since":"ab-7"}"#);
//! assert!(control::is_reserved(control::RESET));
//! assert!(!control::is_reserved("order.created"));
//!
//! let connection = ConnectionId::random();
//! assert_eq!(control::connected_data(connection), format!(r#"{{"connection":"{connection}"}}"#));
//! ```

use serde::Serialize;

use crate::{ConnectionId, Data, Draft, EventName, Reset, Topic};

/// The prefix of every event type Herald reserves for itself.
pub const RESERVED_PREFIX: &str = "herald.";

/// Event type of the first event of a stream, which names the connection.
pub const CONNECTED: &str = "herald.connected";

/// Event type of the notice that events may be missing before the next one.
pub const RESET: &str = "herald.reset";

/// Whether `event_type` is one of Herald's own (it starts with [`RESERVED_PREFIX`]).
pub fn is_reserved(event_type: &str) -> bool {
    event_type.starts_with(RESERVED_PREFIX)
}

/// The data of a [`CONNECTED`] event: `{"connection":"<uuid>"}`.
pub fn connected_data(connection: ConnectionId) -> String {
    #[derive(Serialize)]
    struct Connected {
        connection: String,
    }
    let body = Connected {
        connection: connection.to_string(),
    };
    serde_json::to_string(&body).expect("a string always serialises")
}

/// The data of a [`RESET`] event: `{"reason":"…","missed_since":"<id>"}`.
pub fn reset_data(reset: &Reset) -> String {
    #[derive(Serialize)]
    struct Notice<'a> {
        reason: &'a str,
        missed_since: &'a str,
    }
    let notice = Notice {
        reason: reset.reason.as_str(),
        missed_since: &reset.missed_since,
    };
    serde_json::to_string(&notice).expect("two strings always serialise")
}

/// A [`RESET`] event to publish on `topic`, for an ingress that lost changes (such as a
/// PostgreSQL source after a reconnect): every subscriber of the topic learns of the
/// loss in the stream itself.
///
/// ```
/// use herald_bus::{EventId, Reset, ResetReason, Topic, control};
///
/// let reset = Reset { reason: ResetReason::SourceReconnected, missed_since: "ab-7".into() };
/// let event = control::reset_draft(Topic::new("db.orders.insert")?, &reset)
///     .into_event(EventId::new(1, 8), 0);
/// assert_eq!(event.name().map(|n| n.as_str()), Some(control::RESET));
/// assert_eq!(event.data().as_str(), control::reset_data(&reset));
/// assert_eq!(event.data().to_json()["reason"], "source_reconnected");
/// # Ok::<(), herald_bus::NameError>(())
/// ```
pub fn reset_draft(topic: Topic, reset: &Reset) -> Draft {
    let name = EventName::new(RESET).expect("the reset event type is a valid event name");
    // Read back as JSON text, so the data is the object (not a string) with its fields in
    // the order written.
    let data: Data =
        serde_json::from_str(&reset_data(reset)).expect("the reset body is valid JSON");
    Draft::new(topic, data).with_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResetReason;

    #[test]
    fn control_event_types_are_valid_and_reserved() {
        for name in [CONNECTED, RESET] {
            assert!(is_reserved(name), "{name}");
            assert_eq!(EventName::new(name).unwrap().as_str(), name);
        }
        assert!(!is_reserved("herald"), "the prefix includes the dot");
        assert!(!is_reserved("heraldic.event"));
    }

    #[test]
    fn bodies_are_json_objects_with_the_documented_fields() {
        let reset = Reset {
            reason: ResetReason::UnknownId,
            missed_since: "x\"y".into(),
        };
        let value: serde_json::Value = serde_json::from_str(&reset_data(&reset)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"reason": "unknown_id", "missed_since": "x\"y"})
        );
        let connection = ConnectionId::random();
        let value: serde_json::Value = serde_json::from_str(&connected_data(connection)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"connection": connection.to_string()})
        );
    }
}
