//! [`Draft`]: one event to publish, as the body of `POST /publish` (docs/api.md).

use serde::Serialize;
use serde_json::Value;

/// An event to publish: a topic, JSON data, and the optional fields of
/// `POST /publish`. The server assigns the id.
///
/// # Examples
///
/// ```
/// use herald_client::Draft;
/// use serde_json::json;
///
/// let draft = Draft::new("orders.created", json!({"id": 7})).with_event("created");
/// assert_eq!(
///     serde_json::to_value(&draft)?,
///     json!({"topic": "orders.created", "data": {"id": 7}, "event": "created"}),
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Draft {
    topic: String,
    data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<String>,
}

impl Draft {
    /// An event for everyone subscribed to `topic`. A JSON string goes on the
    /// wire as the raw string, any other value as compact JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use herald_client::Draft;
    ///
    /// assert_eq!(Draft::new("a", "hello").topic(), "a");
    /// ```
    pub fn new(topic: impl Into<String>, data: impl Into<Value>) -> Self {
        Draft {
            topic: topic.into(),
            data: data.into(),
            event: None,
            retry: None,
            user: None,
            connection: None,
        }
    }

    /// Sets the event type (the SSE `event:` field).
    pub fn with_event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// Sets the reconnection delay hint, in milliseconds (the SSE `retry:` field).
    pub fn with_retry(mut self, ms: u64) -> Self {
        self.retry = Some(ms);
        self
    }

    /// Delivers the event only to subscribers authenticated as `user`.
    /// Excludes [`with_connection`](Draft::with_connection); the server
    /// refuses a draft with both.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Delivers the event only to the connection with this id (from
    /// [`Item::Connected`](crate::Item::Connected)).
    pub fn with_connection(mut self, connection: impl Into<String>) -> Self {
        self.connection = Some(connection.into());
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The data.
    pub fn data(&self) -> &Value {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_optional_field_is_serialized_when_set() {
        let draft = Draft::new("t", 1)
            .with_event("e")
            .with_retry(500)
            .with_user("alice")
            .with_connection("c1");
        assert_eq!(
            serde_json::to_value(&draft).expect("serializable"),
            json!({"topic": "t", "data": 1, "event": "e", "retry": 500,
                   "user": "alice", "connection": "c1"})
        );
    }
}
