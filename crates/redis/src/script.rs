//! The Lua scripts that keep the log consistent, and the decoding of what Redis returns.
//!
//! Every write (and every read, which must see the epoch and the entries of one life) is
//! one script, so it runs atomically on Redis. `redis::Script` sends it by hash
//! (`EVALSHA`) and loads it again when Redis lost it (after a restart).

use std::sync::Arc;

use herald_bus::{Draft, Event, EventId, Topic};
use redis::Value;

use crate::error::Error;

macro_rules! script {
    ($file:literal) => {
        concat!(include_str!("lua/common.lua"), include_str!($file))
    };
}

/// The compiled scripts, loaded once per log.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) append: redis::Script,
    pub(crate) read: redis::Script,
    pub(crate) trim: redis::Script,
    pub(crate) settle: redis::Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            append: redis::Script::new(script!("lua/append.lua")),
            read: redis::Script::new(script!("lua/read.lua")),
            trim: redis::Script::new(script!("lua/trim.lua")),
            settle: redis::Script::new(include_str!("lua/settle.lua")),
        }
    }
}

/// One stream entry as stored: offset, append time, topic and the draft's JSON.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) offset: u64,
    time_ms: u64,
    topic: Vec<u8>,
    draft: Vec<u8>,
}

impl Entry {
    #[cfg(test)]
    pub(crate) fn new(offset: u64, time_ms: u64, topic: &str, draft: Vec<u8>) -> Self {
        Self {
            offset,
            time_ms,
            topic: topic.as_bytes().to_vec(),
            draft,
        }
    }

    /// The entry's topic, if it is a valid one.
    pub(crate) fn topic(&self) -> Option<Topic> {
        std::str::from_utf8(&self.topic)
            .ok()
            .and_then(|t| Topic::new(t).ok())
    }

    /// The event, with the epoch of the life it was read in.
    ///
    /// # Errors
    ///
    /// When the stored draft is not a valid one.
    pub(crate) fn into_event(self, epoch: u64) -> Result<Arc<Event>, serde_json::Error> {
        let draft: Draft = serde_json::from_slice(&self.draft)?;
        Ok(Arc::new(draft.into_event(
            EventId::new(epoch, self.offset),
            self.time_ms,
        )))
    }
}

/// The offset of a stream id `<offset>-<seq>`.
pub(crate) fn offset_of(id: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(id).ok()?;
    text.split_once('-')?.0.parse().ok()
}

/// The stream id that holds `offset`.
pub(crate) fn stream_id(offset: u64) -> String {
    format!("{offset}-1")
}

/// What an append's attempt key holds (see `lua/append.lua` and `lua/settle.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The append ran and stored its events.
    Appended(Stored),
    /// The append was fenced off before it ran: it stored nothing and never will.
    Cancelled,
    /// The append script started but never recorded its outcome: it failed half-way.
    Pending,
}

/// Where an append stored its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) epoch: u64,
    /// The offset of the first event; the others follow it.
    pub(crate) first: u64,
    /// How many events it stored.
    pub(crate) count: u64,
    /// The append time, Redis's clock (ms).
    pub(crate) time_ms: u64,
}

/// Decodes the reply of the append or settle script: the attempt key's value,
/// `appended:<epoch>:<first>:<count>:<time ms>`, `cancelled` or `pending`.
pub(crate) fn attempt(op: &'static str, value: Value) -> Result<Attempt, Error> {
    let raw = bytes(op, value)?;
    let wrong = || {
        Error::reply(
            op,
            format!(
                "attempt {:?} is not an outcome",
                String::from_utf8_lossy(&raw)
            ),
        )
    };
    let text = std::str::from_utf8(&raw).map_err(|_| wrong())?;
    match text {
        "cancelled" => return Ok(Attempt::Cancelled),
        "pending" => return Ok(Attempt::Pending),
        _ => {}
    }
    let mut parts = text
        .strip_prefix("appended:")
        .ok_or_else(wrong)?
        .split(':')
        .map(str::parse::<u64>);
    let mut next = || parts.next().and_then(Result::ok).ok_or_else(wrong);
    let stored = Stored {
        epoch: next()?,
        first: next()?,
        count: next()?,
        time_ms: next()?,
    };
    if parts.next().is_some() {
        return Err(wrong());
    }
    Ok(Attempt::Appended(stored))
}

/// What the read script returns.
#[derive(Debug)]
pub(crate) struct ReadReply {
    pub(crate) epoch: u64,
    pub(crate) head: u64,
    pub(crate) oldest: u64,
    pub(crate) entries: Vec<Entry>,
}

/// Decodes the reply of the read script.
pub(crate) fn read_reply(value: Value) -> Result<ReadReply, Error> {
    let op = "read";
    let mut items = array(op, value)?.into_iter();
    let mut next = || items.next().ok_or_else(|| Error::reply(op, "too short"));
    Ok(ReadReply {
        epoch: epoch(op, next()?)?,
        head: int(op, next()?)?,
        oldest: int(op, next()?)?,
        entries: entries(op, next()?)?,
    })
}

/// Decodes an `XREAD` reply for one stream (nil when it timed out).
pub(crate) fn xread_reply(value: Value) -> Result<Vec<Entry>, Error> {
    let op = "tail";
    let streams = match value {
        Value::Nil => return Ok(Vec::new()),
        // RESP3 answers a map of stream key to entries, RESP2 an array of pairs.
        Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
        other => array(op, other)?
            .into_iter()
            .map(|pair| {
                let mut pair = array(op, pair)?;
                pair.pop()
                    .ok_or_else(|| Error::reply(op, "empty stream reply"))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut out = Vec::new();
    for stream in streams {
        out.extend(entries(op, stream)?);
    }
    Ok(out)
}

/// Decodes the epoch: a decimal string, or nil when the log has none yet.
pub(crate) fn epoch_of(op: &'static str, value: Value) -> Result<Option<u64>, Error> {
    match value {
        Value::Nil => Ok(None),
        other => epoch(op, other).map(Some),
    }
}

fn entries(op: &'static str, value: Value) -> Result<Vec<Entry>, Error> {
    array(op, value)?
        .into_iter()
        .map(|entry| {
            let mut parts = array(op, entry)?.into_iter();
            let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
                return Err(Error::reply(op, "an entry without id or fields"));
            };
            let id = bytes(op, id)?;
            let offset = offset_of(&id).ok_or_else(|| {
                Error::reply(op, format!("stream id {:?}", String::from_utf8_lossy(&id)))
            })?;
            let (mut time_ms, mut topic, mut draft) = (0, Vec::new(), Vec::new());
            let mut fields = array(op, fields)?.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                match bytes(op, name)?.as_slice() {
                    b"d" => draft = bytes(op, value)?,
                    b"t" => time_ms = int(op, value)?,
                    b"p" => topic = bytes(op, value)?,
                    _ => {}
                }
            }
            Ok(Entry {
                offset,
                time_ms,
                topic,
                draft,
            })
        })
        .collect()
}

fn array(op: &'static str, value: Value) -> Result<Vec<Value>, Error> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(Error::reply(
            op,
            format!("expected an array, got {other:?}"),
        )),
    }
}

fn bytes(op: &'static str, value: Value) -> Result<Vec<u8>, Error> {
    match value {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        other => Err(Error::reply(
            op,
            format!("expected a string, got {other:?}"),
        )),
    }
}

fn int(op: &'static str, value: Value) -> Result<u64, Error> {
    let wrong = |v: &dyn std::fmt::Debug| Error::reply(op, format!("expected a count, got {v:?}"));
    match value {
        Value::Int(i) => u64::try_from(i).map_err(|_| wrong(&i)),
        Value::BulkString(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| wrong(&String::from_utf8_lossy(&b))),
        other => Err(wrong(&other)),
    }
}

fn epoch(op: &'static str, value: Value) -> Result<u64, Error> {
    let text = bytes(op, value)?;
    std::str::from_utf8(&text)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| {
            Error::reply(
                op,
                format!("epoch {:?} is not a number", String::from_utf8_lossy(&text)),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, draft: &str, t: &str, p: &str) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(vec![
                bulk("d"),
                bulk(draft),
                bulk("t"),
                bulk(t),
                bulk("p"),
                bulk(p),
            ]),
        ])
    }

    #[test]
    fn stream_ids_carry_the_offset() {
        assert_eq!(stream_id(42), "42-1");
        assert_eq!(offset_of(stream_id(42).as_bytes()), Some(42));
        assert_eq!(offset_of(b"x-1"), None);
        assert_eq!(offset_of(b"7"), None);
    }

    #[test]
    fn read_replies_decode_to_events() {
        let reply = read_reply(Value::Array(vec![
            bulk("18446744073709551615"),
            Value::Int(9),
            Value::Int(8),
            Value::Array(vec![entry(
                "8-1",
                r#"{"topic":"a.b","data":1}"#,
                "1700",
                "a.b",
            )]),
        ]))
        .unwrap();
        assert_eq!((reply.epoch, reply.head, reply.oldest), (u64::MAX, 9, 8));
        let entry = reply.entries.into_iter().next().unwrap();
        assert_eq!(entry.topic().unwrap().as_str(), "a.b");
        let event = entry.into_event(7).unwrap();
        assert_eq!(
            (event.id(), event.time_ms(), event.data().as_str()),
            (EventId::new(7, 8), 1700, "1")
        );
    }

    #[test]
    fn xread_replies_of_both_protocols_decode() {
        let entries = || Value::Array(vec![entry("3-1", "{}", "1", "t")]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("k"), entries()])]);
        let resp3 = Value::Map(vec![(bulk("k"), entries())]);
        for reply in [resp2, resp3] {
            let got = xread_reply(reply).unwrap();
            assert_eq!(got.iter().map(|e| e.offset).collect::<Vec<_>>(), [3]);
        }
        assert!(xread_reply(Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn attempts_decode() {
        assert_eq!(
            attempt("append", bulk("appended:18446744073709551615:8:2:1700")).unwrap(),
            Attempt::Appended(Stored {
                epoch: u64::MAX,
                first: 8,
                count: 2,
                time_ms: 1700,
            })
        );
        assert_eq!(
            attempt("settle", bulk("cancelled")).unwrap(),
            Attempt::Cancelled
        );
        assert_eq!(
            attempt("settle", bulk("pending")).unwrap(),
            Attempt::Pending
        );
    }

    #[test]
    fn foreign_values_are_reported() {
        for foreign in [
            "appended:x:1:1:1",
            "appended:1:1:1",
            "appended:1:1:1:1:1",
            "done",
        ] {
            let err = attempt("append", bulk(foreign)).unwrap_err();
            assert!(err.to_string().contains("is not an outcome"), "{err}");
        }
        assert!(attempt("settle", Value::Nil).is_err());
        assert!(read_reply(Value::Okay).is_err());
        assert!(epoch_of("tail", Value::Nil).unwrap().is_none());
    }
}
