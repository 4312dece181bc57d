//! Events: [`Draft`] (what a publisher hands in) and [`Event`] (what the log made of it,
//! with an id), plus their validated parts [`EventName`] and [`Data`].

use std::{
    fmt,
    str::FromStr,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    Audience, ConnectionId, EventId, Topic, UserId,
    error::{NameError, excerpt},
};

/// An event type (the SSE `event:` field): 1–64 of `A-Z a-z 0-9 _ . : -`.
///
/// CR, LF and NUL can never be part of it, so it cannot inject SSE fields.
///
/// ```
/// use herald_bus::EventName;
///
/// assert_eq!(EventName::new("order.created")?.as_str(), "order.created");
/// assert!(EventName::new("x\nid: 1").is_err());
/// # Ok::<(), herald_bus::NameError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventName(Arc<str>);

impl EventName {
    /// Validates `name` as an event type.
    ///
    /// # Errors
    ///
    /// [`NameError::EventName`] when it is empty, longer than 64, or has another character.
    pub fn new(name: &str) -> Result<Self, NameError> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if !ok {
            return Err(NameError::EventName {
                name: excerpt(name),
            });
        }
        Ok(Self(Arc::from(name)))
    }

    /// The type as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl FromStr for EventName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// An event's payload: a JSON value, kept as the text that goes on the wire.
///
/// A JSON string is kept as the raw string; any other value as compact JSON (as NestJS's
/// `MessageEvent` does). Keeping the wire text means the size check and the encoding do
/// not serialise the value again.
///
/// ```
/// use herald_bus::Data;
/// use serde_json::json;
///
/// assert_eq!(Data::from(json!("hello")).as_str(), "hello");
/// assert_eq!(Data::from(json!({"id": 7, "ok": true})).as_str(), r#"{"id":7,"ok":true}"#);
/// assert_eq!(Data::from(json!({"id": 7})).to_json(), json!({"id": 7}));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Data {
    text: Box<str>,
    /// Whether `text` is a JSON string's contents rather than JSON text.
    is_string: bool,
}

impl Data {
    /// A plain-text payload (a JSON string).
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into().into_boxed_str(),
            is_string: true,
        }
    }

    /// The text that goes on the wire.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The payload as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        if self.is_string {
            serde_json::Value::String(self.text.to_string())
        } else {
            serde_json::from_str(&self.text).expect("non-string data is always valid JSON text")
        }
    }
}

impl From<serde_json::Value> for Data {
    fn from(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::String(s) => Self::text(s),
            other => Self {
                text: other.to_string().into_boxed_str(),
                is_string: false,
            },
        }
    }
}

impl From<&str> for Data {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<String> for Data {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_string {
            s.serialize_str(&self.text)
        } else {
            let raw: &RawValue =
                serde_json::from_str(&self.text).map_err(serde::ser::Error::custom)?;
            raw.serialize(s)
        }
    }
}

/// Reads JSON *text* (`serde_json::from_str`, `from_slice`, `from_reader`): the value is
/// taken as written and only its layout is compacted, without building a JSON tree.
/// Other deserializers (`serde_json::from_value`) are refused; build those with
/// [`Data::from`] a `serde_json::Value`.
impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Box<RawValue>>::deserialize(d)?;
        let text = raw.get();
        if text.starts_with('"') {
            return serde_json::from_str::<String>(text)
                .map(Self::text)
                .map_err(serde::de::Error::custom);
        }
        Ok(Self {
            text: compact(text).into_boxed_str(),
            is_string: false,
        })
    }
}

/// Valid JSON text without the whitespace between tokens.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        out.push(c);
    }
    out
}

/// An event before publishing: the log gives it an id.
///
/// Its JSON form is the body of `POST /publish`:
/// `{"topic", "data", "event"?, "retry"?, "user"?, "connection"?}`; unknown fields are
/// refused, so a typo such as `evnet` does not pass silently.
///
/// ```
/// use herald_bus::{Audience, Draft};
///
/// let draft: Draft = serde_json::from_str(
///     r#"{"topic": "orders.created", "data": {"id": 7}, "event": "created", "user": "42"}"#,
/// )?;
/// assert_eq!(draft.topic().as_str(), "orders.created");
/// assert!(matches!(draft.audience(), Audience::User(u) if u.as_str() == "42"));
///
/// let typo = serde_json::from_str::<Draft>(r#"{"topic": "a", "data": 1, "evnet": "x"}"#);
/// assert!(typo.unwrap_err().to_string().contains("unknown field `evnet`"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "wire::Draft", into = "wire::Draft")]
pub struct Draft {
    topic: Topic,
    data: Data,
    name: Option<EventName>,
    retry: Option<u64>,
    audience: Audience,
}

impl Draft {
    /// An event for everyone on `topic`, with no type and no retry hint.
    pub fn new(topic: Topic, data: impl Into<Data>) -> Self {
        Self {
            topic,
            data: data.into(),
            name: None,
            retry: None,
            audience: Audience::Everyone,
        }
    }

    /// Sets the event type (SSE `event:` field).
    pub fn with_name(mut self, name: EventName) -> Self {
        self.name = Some(name);
        self
    }

    /// Sets the reconnection delay hint in milliseconds (SSE `retry:` field).
    pub fn with_retry(mut self, ms: u64) -> Self {
        self.retry = Some(ms);
        self
    }

    /// Sets who may receive the event.
    pub fn with_audience(mut self, audience: Audience) -> Self {
        self.audience = audience;
        self
    }

    /// The topic it is published to.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The payload.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// Who may receive it.
    pub fn audience(&self) -> &Audience {
        &self.audience
    }

    /// Bytes counted against the bus's event size limit: data, topic and type.
    pub fn size(&self) -> usize {
        self.data.text.len()
            + self.topic.as_str().len()
            + self.name.as_ref().map_or(0, |n| n.0.len())
    }

    /// Turns the draft into an event with `id`, published at `time_ms` (Unix milliseconds).
    ///
    /// Called by [`Log`](crate::Log) implementations when they append.
    pub fn into_event(self, id: EventId, time_ms: u64) -> Event {
        Event {
            id,
            time_ms,
            draft: self,
            frame: OnceLock::new(),
        }
    }
}

/// A published event: a [`Draft`] with its id and publication time.
///
/// Events are shared as `Arc<Event>` between the log and every receiver.
pub struct Event {
    id: EventId,
    time_ms: u64,
    draft: Draft,
    frame: OnceLock<Bytes>,
}

impl Event {
    /// Its id, unique and ordered in bus order.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// When the log appended it, in Unix milliseconds.
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// The topic it was published to.
    pub fn topic(&self) -> &Topic {
        &self.draft.topic
    }

    /// The payload.
    pub fn data(&self) -> &Data {
        &self.draft.data
    }

    /// The event type, if any.
    pub fn name(&self) -> Option<&EventName> {
        self.draft.name.as_ref()
    }

    /// The reconnection delay hint in milliseconds, if any.
    pub fn retry(&self) -> Option<u64> {
        self.draft.retry
    }

    /// Who may receive it.
    pub fn audience(&self) -> &Audience {
        &self.draft.audience
    }

    /// The draft it was made from.
    pub fn draft(&self) -> &Draft {
        &self.draft
    }

    /// This event's encoded wire frame, computed by `encode` on first use and shared by
    /// every later caller.
    ///
    /// A transport calls this so an event sent to ten thousand subscribers is encoded
    /// once. Every caller must pass the same encoding.
    pub fn frame(&self, encode: impl FnOnce(&Event) -> Bytes) -> Bytes {
        self.frame.get_or_init(|| encode(self)).clone()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id)
            .field("topic", &self.draft.topic)
            .field("name", &self.draft.name)
            .field("data", &self.draft.data)
            .field("audience", &self.draft.audience)
            .finish_non_exhaustive()
    }
}

/// The JSON shape of a draft, kept apart so validation happens in one `TryFrom`.
mod wire {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Draft {
        topic: String,
        data: Data,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection: Option<String>,
    }

    impl TryFrom<Draft> for super::Draft {
        type Error = String;

        fn try_from(w: Draft) -> Result<Self, String> {
            let audience = match (w.user, w.connection) {
                (Some(_), Some(_)) => {
                    return Err("give `user` or `connection`, not both".to_owned());
                }
                (Some(u), None) => Audience::User(UserId::new(&u).map_err(|e| e.to_string())?),
                (None, Some(c)) => Audience::Connection(
                    c.parse::<ConnectionId>()
                        .map_err(|_| format!("connection {:?} is not a UUID", excerpt(&c)))?,
                ),
                (None, None) => Audience::Everyone,
            };
            Ok(Self {
                topic: Topic::new(&w.topic).map_err(|e| format!("topic: {e}"))?,
                data: w.data,
                name: w
                    .event
                    .as_deref()
                    .map(EventName::new)
                    .transpose()
                    .map_err(|e| e.to_string())?,
                retry: w.retry,
                audience,
            })
        }
    }

    impl From<super::Draft> for Draft {
        fn from(d: super::Draft) -> Self {
            let (user, connection) = match d.audience {
                Audience::Everyone => (None, None),
                Audience::User(u) => (Some(u.as_str().to_owned()), None),
                Audience::Connection(c) => (None, Some(c.to_string())),
            };
            Self {
                topic: d.topic.as_str().to_owned(),
                data: d.data,
                event: d.name.map(|n| n.as_str().to_owned()),
                retry: d.retry,
                user,
                connection,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_names_follow_the_contract() {
        assert!(EventName::new(&"a".repeat(64)).is_ok());
        for bad in ["", " ", "a b", "a\r", "a\n", "a\0", "é", &"a".repeat(65)] {
            assert!(EventName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn draft_json_round_trips() {
        let text = r#"{"topic":"a.b","data":{"x":[1,2]},"event":"t","retry":500,"user":"u1"}"#;
        let draft: Draft = serde_json::from_str(text).unwrap();
        assert_eq!(draft.data().as_str(), r#"{"x":[1,2]}"#);
        assert_eq!(serde_json::to_string(&draft).unwrap(), text);
        let string_data: Draft =
            serde_json::from_str(r#"{"topic":"a","data":"line1\nline2"}"#).unwrap();
        assert_eq!(string_data.data().as_str(), "line1\nline2");
        assert_eq!(
            serde_json::to_value(&string_data).unwrap(),
            json!({"topic": "a", "data": "line1\nline2"})
        );
    }

    #[test]
    fn draft_json_errors_name_the_problem() {
        let err = |text: &str| serde_json::from_str::<Draft>(text).unwrap_err().to_string();
        assert!(err(r#"{"topic":"a..b","data":1}"#).contains("topic: segment 2"));
        assert!(err(r#"{"topic":"a","data":1,"event":"x\ny"}"#).contains("event type"));
        assert!(err(r#"{"topic":"a","data":1,"user":"u","connection":"c"}"#).contains("not both"));
        assert!(err(r#"{"topic":"a","data":1,"connection":"nope"}"#).contains("not a UUID"));
        assert!(err(r#"{"topic":"a","data":1,"id":"1"}"#).contains("unknown field `id`"));
        assert!(err(r#"{"topic":"a"}"#).contains("missing field `data`"));
    }

    #[test]
    fn compact_json_whatever_the_input_layout() {
        let draft: Draft =
            serde_json::from_str("{\"topic\":\"a\",\"data\": { \"k\" :  [ 1 , 2 ] } }").unwrap();
        assert_eq!(draft.data().as_str(), r#"{"k":[1,2]}"#);
        assert_eq!(draft.size(), r#"{"k":[1,2]}"#.len() + 1);
        // Whitespace and escaped quotes inside strings stay as written.
        let text = "{ \"a b\" : \"x \\\" y\\\\\" ,\n\t\"n\": [1e2, -0.5] }";
        let data: Data = serde_json::from_str(text).unwrap();
        assert_eq!(data.as_str(), r#"{"a b":"x \" y\\","n":[1e2,-0.5]}"#);
        assert_eq!(
            data.to_json(),
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
        let string: Data = serde_json::from_str(r#""line\nnext \u00e9""#).unwrap();
        assert_eq!(string.as_str(), "line\nnext é");
    }

    #[test]
    fn data_keeps_numbers_as_written() {
        let data: Data = serde_json::from_str("123456789012345678901234567890").unwrap();
        assert_eq!(data.as_str(), "123456789012345678901234567890");
    }

    #[test]
    fn frame_is_encoded_once() {
        let event = Draft::new(Topic::new("a").unwrap(), "x").into_event(EventId::new(1, 1), 0);
        let mut calls = 0;
        let first = event.frame(|_| {
            calls += 1;
            Bytes::from_static(b"frame")
        });
        let second = event.frame(|_| unreachable!("encoded twice"));
        assert_eq!(
            (first, second, calls),
            (
                Bytes::from_static(b"frame"),
                Bytes::from_static(b"frame"),
                1
            )
        );
    }
}
