//! What a [`Subscription`](crate::Subscription) yields: [`Item`] and [`Event`],
//! and how an SSE event becomes one.

use std::time::Duration;

use herald_sse::{CONNECTED, RESET};
use serde::Deserialize;

/// One thing a subscription saw, in stream order.
///
/// Herald's control events (`herald.connected`, `herald.reset`) come as their
/// own variants, never as an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// A stream opened (first, and again after every reconnect); events
    /// scoped to this `connection` id reach this stream only.
    Connected {
        /// The id from `herald.connected`.
        connection: String,
    },
    /// A published event.
    Event(Event),
    /// Events were lost: past retention, or the id resumed from is unknown to
    /// the server. The events that follow have no further hole; refetch
    /// state, then keep consuming (docs/api.md, resume).
    Reset {
        /// Why: `retention`, `unknown_id`, or `source_reconnected` (a PostgreSQL
        /// source lost notifications while it was disconnected).
        reason: String,
        /// The last event id the client had; events after it were missed.
        missed_since: String,
    },
    /// The stream dropped or could not be opened; the subscription
    /// reconnects by itself after `retry_in`, resuming after the last event
    /// seen. For logging: nothing needs to be done.
    Disconnected {
        /// Why, for humans.
        reason: String,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
}

/// A published event as a subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// The id the bus assigned; a reconnect resumes after it.
    pub id: String,
    /// The event type (SSE `event:`), `message` when the publisher set none.
    pub event_type: String,
    /// The data: a JSON string published as the raw string, anything else as
    /// compact JSON.
    pub data: String,
    /// The topic it was published to, once the server sends it; Herald's
    /// streams do not carry it yet, so this is `None` for now.
    pub topic: Option<String>,
}

impl Event {
    /// The data parsed as JSON (for an event whose data is not a plain string).
    ///
    /// # Errors
    ///
    /// When the data is not JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.data)
    }
}

#[derive(Deserialize)]
struct ConnectedData {
    connection: String,
}

#[derive(Deserialize)]
struct ResetData {
    reason: String,
    missed_since: String,
}

/// The item for a parsed SSE event; `None` for a control event whose data
/// does not parse (a newer server's, say), which is skipped.
pub(crate) fn from_sse(event: herald_sse::Event) -> Option<Item> {
    match event.event_type.as_str() {
        CONNECTED => serde_json::from_str::<ConnectedData>(&event.data)
            .ok()
            .map(|c| Item::Connected {
                connection: c.connection,
            }),
        RESET => serde_json::from_str::<ResetData>(&event.data)
            .ok()
            .map(|r| Item::Reset {
                reason: r.reason,
                missed_since: r.missed_since,
            }),
        _ => Some(Item::Event(Event {
            id: event.last_event_id,
            event_type: event.event_type,
            data: event.data,
            topic: None,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(event_type: &str, data: &str, id: &str) -> herald_sse::Event {
        herald_sse::Event {
            event_type: event_type.into(),
            data: data.into(),
            last_event_id: id.into(),
        }
    }

    #[test]
    fn control_events_become_their_own_items() {
        assert_eq!(
            from_sse(sse(CONNECTED, r#"{"connection":"c1"}"#, "")),
            Some(Item::Connected {
                connection: "c1".into()
            })
        );
        assert_eq!(
            from_sse(sse(
                RESET,
                r#"{"reason":"retention","missed_since":"e-1"}"#,
                ""
            )),
            Some(Item::Reset {
                reason: "retention".into(),
                missed_since: "e-1".into()
            })
        );
        assert_eq!(from_sse(sse(RESET, "not json", "")), None);
    }

    #[test]
    fn other_events_keep_id_type_and_data() {
        let Some(Item::Event(event)) = from_sse(sse("created", r#"{"id":7}"#, "e-2")) else {
            panic!("expected an event")
        };
        assert_eq!(
            (event.id.as_str(), event.event_type.as_str()),
            ("e-2", "created")
        );
        assert_eq!(event.json::<serde_json::Value>().expect("json")["id"], 7);
    }
}
